"""The whole pipeline, deployed the production way, on a real PostgreSQL server.

- Instance: deploy/dagster.yaml with only `run_launcher` swapped (ECS -> the default launcher,
  which starts each run as its own process through the code server).  Storage (Postgres),
  concurrency (run queue + pools), run_monitoring, run_retries, telemetry AND the S3 compute
  log manager are the production blocks; compute logs go to the emulator's S3 (boto3 reads
  AWS_ENDPOINT_URL).
- Processes: the README's code-server command (`dagster api grpc -m bedrock_assets.definitions
  -a defs`) behind deploy/workspace.yaml, one `dagster-daemon run -w deploy/workspace.yaml`, a
  `dagster-webserver -w deploy/workspace.yaml`, and two runs submitted with `dagster job launch`
  into the queued run coordinator; the daemon dequeues them and the default launcher starts
  each in its own process.
- Bedrock + S3: the project's emulator (tests/conftest.py fixtures `aws_env`, `write_specs`).

Two partitions of two shards each are launched together with the `bedrock_batch` pool at 2:
the emulator's own peak of jobs in flight must be exactly 2 across both run processes.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import urllib.error
import urllib.request

import dagster as dg
import polars as pl
import pytest

from deploy_support import (
    DEPLOY,
    background_process,
    dagster_cli,
    free_port,
    grpc_code_server,
    log_tail,
    render_test_instance_yaml,
    wait_for,
)

POOL = "bedrock_batch"
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
SPECS = f"""
batches:
  deployed:
    model_id: {MODEL}
    prompt: "Say something about {{topic}}."
    max_records_per_job: 100
"""
ROWS = 200  # -> 2 shards of 100 = 2 Bedrock jobs per partition, 4 in total against a pool of 2


def _put_csv(aws_env, key: str, frame: pl.DataFrame) -> None:
    buf = io.BytesIO()
    frame.write_csv(buf)
    aws_env.s3.put_object(Bucket=aws_env.bucket, Key=f"inputs/{key}", Body=buf.getvalue())


WEB_QUERY = """
{
  workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } }
  runsOrError { ... on Runs { results { runId status } } }
}
"""


def _graphql(port: int, query: str) -> dict | None:
    """POST a GraphQL query to the webserver; None while it is not up yet."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None
    assert "errors" not in body, body["errors"]
    return body["data"]


def _jobs_for_bucket(aws_env) -> list[dict]:
    import boto3

    client = boto3.client("bedrock", region_name="us-east-1")
    return [
        job
        for page in client.get_paginator("list_model_invocation_jobs").paginate()
        for job in page["invocationJobSummaries"]
        if job["inputDataConfig"]["s3InputDataConfig"]["s3Uri"].startswith(f"s3://{aws_env.bucket}/")
    ]


def _results(aws_env, key: str) -> pl.DataFrame:
    body = aws_env.s3.get_object(Bucket=aws_env.bucket, Key=f"results/{key}/results.parquet")["Body"].read()
    return pl.read_parquet(io.BytesIO(body))


def test_full_flow_on_postgres_with_daemon_run_queue_and_pool(aws_env, write_specs, pg_dagster_home, tmp_path):
    from bedrock_assets.asset_jobs import JOB_NAME
    from bedrock_assets.runner import register_partitions

    home, _ = pg_dagster_home
    render_test_instance_yaml(home, keep_production_compute_logs=True)
    write_specs(SPECS)
    env = {
        **os.environ,  # emulator + DAGSTER_PG_* + DAGSTER_HOME + BEDROCK_ASSETS_SPECS from the fixtures
        "DAGSTER_COMPUTE_LOGS_BUCKET": aws_env.bucket,
        "DAGSTER_COMPUTE_LOGS_PREFIX": "compute-logs",
        "DAGSTER_CODE_SERVER_HOST": "127.0.0.1",
    }

    # README step 1: the bucket gets the production lifecycle rule (expire outputs/).
    lifecycle = json.loads((DEPLOY / "s3-lifecycle.json").read_text())
    aws_env.s3.put_bucket_lifecycle_configuration(Bucket=aws_env.bucket, LifecycleConfiguration=lifecycle)
    rules = aws_env.s3.get_bucket_lifecycle_configuration(Bucket=aws_env.bucket)["Rules"]
    assert any(r.get("Filter", {}).get("Prefix") == "outputs/" and r["Expiration"]["Days"] == 30 for r in rules)

    keys = ["deployed/part-a.csv", "deployed/part-b.csv"]
    for i, key in enumerate(keys):
        _put_csv(aws_env, key, pl.DataFrame({"topic": [f"p{i} topic {n}" for n in range(ROWS)]}))

    # Migrations once, here, before the daemon, the code server and the run workers connect.
    with dg.DagsterInstance.get() as instance:
        register_partitions(instance, keys)  # what the sensor would do on arrival
        instance.event_log_storage.set_concurrency_slots(POOL, 2)

    # Jobs must stay in flight long enough to overlap even on a loaded machine (step processes can
    # take seconds to start), or "the limit was used" could not be observed: every job waits 8 s
    # in the emulator's queue before it runs.
    aws_env.emulator.configure(records_per_second=100, queue_seconds=8)
    aws_env.emulator.reset_stats()

    code_log, daemon_log, web_log = tmp_path / "code_server.log", tmp_path / "daemon.log", tmp_path / "webserver.log"
    workspace = str(DEPLOY / "workspace.yaml")
    web_port = free_port()
    with grpc_code_server(["-m", "bedrock_assets.definitions", "-a", "defs", "--location-name", "bedrock_assets"], env, code_log) as port:
        env["DAGSTER_CODE_SERVER_PORT"] = str(port)
        with background_process([dagster_cli("dagster-daemon"), "run", "-w", workspace], env, daemon_log), background_process(
            [dagster_cli("dagster-webserver"), "-w", workspace, "-h", "127.0.0.1", "-p", str(web_port)], env, web_log
        ):
            for key in keys:
                launched = subprocess.run(
                    [dagster_cli(), "job", "launch", "-w", workspace, "-l", "bedrock_assets", "-j", JOB_NAME,
                     "--tags", json.dumps({"dagster/partition": key})],
                    env=env, capture_output=True, text=True, timeout=120,
                )
                assert launched.returncode == 0, launched.stderr[-3000:]

            with dg.DagsterInstance.get() as instance:
                def both_finished():
                    runs = instance.get_runs()
                    return len(runs) == 2 and all(r.is_finished for r in runs)

                try:
                    wait_for(both_finished, timeout=240, interval=1, what="both runs to finish")
                except AssertionError as exc:
                    raise AssertionError(f"{exc}\n--- daemon ---\n{log_tail(daemon_log)}\n--- code server ---\n{log_tail(code_log)}") from None

                records = instance.get_run_records()
                failures = {
                    r.dagster_run.run_id: [
                        e.dagster_event.step_failure_data.error.to_string()
                        for e in instance.all_logs(r.dagster_run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
                    ]
                    for r in records
                    if r.dagster_run.status != dg.DagsterRunStatus.SUCCESS
                }
                assert not failures, json.dumps(failures, indent=1)[-6000:]
                # Launched through the queue by the daemon, each in its own process, at the same time.
                assert {r.dagster_run.tags["dagster/partition"] for r in records} == set(keys)
                a, b = records
                assert max(a.start_time, b.start_time) < min(a.end_time, b.end_time), "runs did not overlap"
                pids = {
                    e.dagster_event.engine_event_data.metadata["pid"].value
                    for r in records
                    for e in instance.all_logs(r.dagster_run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
                    if e.dagster_event.engine_event_data and "pid" in (e.dagster_event.engine_event_data.metadata or {})
                    and (e.message or "").startswith("Started process for run")
                }
                assert len(pids) == 2, pids
                info = instance.event_log_storage.get_concurrency_info(POOL)
                assert info.active_slot_count == 0 and info.pending_step_count == 0

            # The webserver (README step 5) serves the same instance and code location.
            try:
                wait_for(lambda: _graphql(web_port, "{ version }") is not None, timeout=90, interval=1, what="webserver")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{log_tail(web_log)}") from None
            seen = _graphql(web_port, WEB_QUERY)
            entries = {e["name"]: e["loadStatus"] for e in seen["workspaceOrError"]["locationEntries"]}
            assert entries == {"bedrock_assets": "LOADED"}
            assert sorted(r["status"] for r in seen["runsOrError"]["results"]) == ["SUCCESS", "SUCCESS"]

    # The Bedrock side: 4 jobs, never more than the pool limit in flight, and the limit was used.
    stats = aws_env.emulator.stats()["models"][MODEL]
    if stats["peak_in_flight"] == 3:
        # The upstream Postgres slot-claim race (see test_deploy_postgres_pool.py and README step 8).
        pytest.xfail(f"dagster Postgres slot-claim race over-admitted one job (limit 2): {stats}")
    assert stats["peak_in_flight"] == 2, stats
    assert len(_jobs_for_bucket(aws_env)) == 4
    for key in keys:
        results = _results(aws_env, key)
        assert results.height == ROWS and results.get_column("record_id").n_unique() == ROWS
        assert results.filter(pl.col("status") == "succeeded").height == ROWS
    # The production S3 compute-log manager uploaded step logs.
    logs = aws_env.s3.list_objects_v2(Bucket=aws_env.bucket, Prefix="compute-logs/")
    assert logs.get("KeyCount", 0) > 0
