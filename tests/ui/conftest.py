"""Fixtures for tests/ui: one emulator + one `dagster dev` per session (start-up is the expensive
part, so both UI tests share it) and one backfill launched through the webserver's GraphQL API.
The machinery lives in ui_support.py."""

from __future__ import annotations

import io
import time
import uuid
from types import SimpleNamespace

import boto3
import polars as pl
import pytest

from ui_support import (
    ARTIFACTS,
    ASSETS,
    BROKEN,
    GOOD,
    POOL_SLOTS,
    ROWS,
    SPECS,
    BACKFILL_STATUS,
    LAUNCH_BACKFILL,
    GraphQL,
    http_json,
    init_dagster_home,
    run_errors,
    start_dagster_dev,
    start_emulator,
    wait_for,
)

FINAL_BACKFILL_STATES = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


def _csv(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_csv(buf)
    return buf.getvalue()


@pytest.fixture(scope="session")
def ui_stack(tmp_path_factory):
    """Emulator (subprocess, its own stats) + a fresh DAGSTER_HOME + `dagster dev`, all on free
    loopback ports; stopped with SIGTERM to each process group at the end, and asserted stopped."""
    work = tmp_path_factory.mktemp("ui")
    ARTIFACTS.mkdir(exist_ok=True)
    # 20 records/s per job: each run keeps Bedrock busy ~15 s (three 100-record jobs, one after
    # the other), so the three runs' jobs overlap and the pool (not luck) keeps them at two.
    emulator, endpoint = start_emulator(work, records_per_second=20)
    dev = None
    try:
        bucket = f"ba-ui-{uuid.uuid4().hex[:12]}"
        env = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "BEDROCK_ASSETS_BUCKET": bucket,
            "BEDROCK_ASSETS_SPECS": str(work / "batches.yaml"),
            "BEDROCK_ASSETS_POLL_SECONDS": "0.3",
        }
        (work / "batches.yaml").write_text(SPECS)
        s3 = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket=bucket)
        for key in GOOD:
            frame = pl.DataFrame({"topic": [f"{key} topic {i}" for i in range(ROWS)]})
            s3.put_object(Bucket=bucket, Key=f"inputs/{key}", Body=_csv(frame))
        broken = pl.DataFrame({"subject": [f"subject {i}" for i in range(ROWS)]})
        s3.put_object(Bucket=bucket, Key=f"inputs/{BROKEN}", Body=_csv(broken))

        home = work / "dagster_home"
        init_dagster_home(home, POOL_SLOTS)
        import dagster as dg  # noqa: PLC0415 - only this fixture needs it; keep collection light

        from bedrock_assets.runner import register_partitions

        with dg.DagsterInstance.from_config(str(home)) as instance:
            register_partitions(instance, [*GOOD, BROKEN])

        dev, base_url = start_dagster_dev(home, env, work)
        yield SimpleNamespace(
            base_url=base_url, gql=GraphQL(base_url), endpoint=endpoint, bucket=bucket, s3=s3,
            home=home, work=work, dev=dev, emulator=emulator,
        )
    finally:
        how = dev.stop() if dev is not None else "terminated"
        emulator_how = emulator.stop()
        if dev is not None:
            # Keep the server log with the screenshots: the first thing to read when a UI test fails.
            (ARTIFACTS / "ui-dagster-dev.log").write_bytes(dev.log_path.read_bytes())
    assert how == "terminated", f"dagster dev ignored SIGTERM and had to be killed:\n{dev.tail()}"
    assert emulator_how == "terminated", "emulator ignored SIGTERM"


@pytest.fixture(scope="session")
def backfill(ui_stack):
    """A backfill of the four assets over 3 good partitions + 1 broken one, launched the way the
    UI's "Materialize selected" dialog does (launchPartitionBackfill), waited on until it ends."""
    http_json(ui_stack.endpoint + "/_emulator/reset-stats", {})
    gql = ui_stack.gql
    started = time.monotonic()
    launched = gql(
        LAUNCH_BACKFILL,
        params={
            "assetSelection": [{"path": [a]} for a in ASSETS],
            "partitionNames": [*GOOD, BROKEN],
            "title": "tests/ui backfill",
            # Each run executes its steps in the run worker instead of one fresh Python process
            # per step: on a 2-core CI machine that is minutes vs. seconds for 4 runs. Pools are
            # still claimed per step from the instance (InstanceConcurrencyContext), so the
            # cross-run limit below is the real one; the multiprocess path is covered by
            # tests/pipeline/test_pl_pool.py.
            "runConfigData": {"execution": {"config": {"in_process": {}}}},
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    def finished():
        assert ui_stack.dev.alive(), f"dagster dev died:\n{ui_stack.dev.tail()}"
        data = gql(BACKFILL_STATUS, id=backfill_id)["partitionBackfillOrError"]
        assert data["__typename"] == "PartitionBackfill", data
        return data if data["status"] in FINAL_BACKFILL_STATES else None

    # The backfill daemon wakes every 30 s: ~30 s to the first runs, ~30 s after the last one
    # ends to the final status; the runs themselves take 30-60 s (90-120 s in all on 2 cores).
    try:
        final = wait_for(finished, 240, f"backfill {backfill_id} finished", interval=2)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n--- dagster dev log ---\n{ui_stack.dev.tail(6000)}") from None
    # Why each failed run failed, for the assertion messages (the temp DAGSTER_HOME is gone later).
    errors = {r["runId"]: run_errors(gql, r["runId"]) for r in final["runs"] if r["status"] != "SUCCESS"}
    return SimpleNamespace(
        id=backfill_id, data=final, seconds=time.monotonic() - started, errors=errors,
        stats=http_json(ui_stack.endpoint + "/_emulator/stats"),
    )
