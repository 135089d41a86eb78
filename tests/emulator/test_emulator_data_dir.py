"""EmulatorConfig.data_dir: S3 objects and Bedrock jobs survive a restart (docs/emulator.md, "Data directory")."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from moto.s3.models import s3_backends

from bedrock_assets.emulator import EmulatorConfig, run_emulator
from bedrock_assets.emulator import cli
from emulator_helpers import REGION, Harness, anthropic_input

REPO = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def emulator(bucket: str, **overrides) -> Iterator[Harness]:
    settings = {"port": 0, "min_records": 5, "max_records": 2000, "seed": 7}
    settings.update(overrides)
    with run_emulator(EmulatorConfig(**settings)) as emu:
        endpoint = dict(endpoint_url=emu.endpoint_url, region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test")
        yield Harness(emu, boto3.client("s3", **endpoint), boto3.client("bedrock", **endpoint),
                      boto3.client("bedrock-runtime", **endpoint), bucket)


def forget_buckets(*names: str) -> None:
    """What a new process starts with: moto's S3 state is process-global, so drop ours by hand."""
    for name in names:
        partition, account = s3_backends.bucket_accounts.pop(name)
        s3_backends[account][partition].buckets.pop(name)


def saved_statuses(data_dir: Path) -> list[str]:
    """Job statuses in the saved index ([] before the first snapshot has finished)."""
    try:
        return [job["status"] for job in json.loads((data_dir / "index.json").read_text(encoding="utf-8"))["jobs"]]
    except FileNotFoundError:
        return []


def test_objects_and_jobs_survive_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    bucket = f"persist-{uuid.uuid4().hex[:12]}"
    odd_key = "dir with space/ünïcode ✓ #1.jsonl"
    big = bytes(range(256)) * (44 * 1024)  # 11 MiB: three parts with a 5 MiB part size
    records = [{"recordId": f"R{i:010d}", "modelInput": anthropic_input(f"q {i}")} for i in range(10)]

    with emulator(bucket, data_dir=str(data_dir)) as h:
        h.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        h.s3.put_object(Bucket=bucket, Key="plain.txt", Body=b"hello", ContentType="text/plain",
                        Metadata={"owner": "tests"})
        h.s3.put_object(Bucket=bucket, Key=odd_key, Body="ünïcode ✓\n".encode())
        h.s3.upload_fileobj(io.BytesIO(big), bucket, "big.bin",
                            Config=TransferConfig(multipart_threshold=5 * 1024**2, multipart_chunksize=5 * 1024**2))
        done_input = h.write_jsonl("in/done/input.jsonl", records)
        slow_input = h.write_jsonl("in/slow/input.jsonl", records)
        done_arn = h.create_job(done_input, name="done-job", clientRequestToken="token-done",
                                tags=[{"key": "k", "value": "v"}])
        h.wait(done_arn)
        # A status change is saved at once, not only at shutdown (a crash keeps finished jobs).
        deadline = time.monotonic() + 5
        while "Completed" not in saved_statuses(data_dir):
            assert time.monotonic() < deadline, "the Completed status was never saved"
            time.sleep(0.05)
        h.emulator.configure(records_per_second=2)  # 10 records take 5 s: still InProgress at shutdown
        slow_arn = h.create_job(slow_input, name="slow-job", clientRequestToken="token-slow")
        h.wait_until(slow_arn, lambda job: job["status"] == "InProgress" and job["processedRecordCount"] > 0)
        before = {key: h.s3.head_object(Bucket=bucket, Key=key) for key in ("plain.txt", odd_key, "big.bin")}
        done_before = h.bedrock.get_model_invocation_job(jobIdentifier=done_arn)
        done_output = h.output(done_arn)

    assert before["big.bin"]["ETag"].endswith('-3"')  # a multipart ETag, which md5(bytes) cannot recreate
    forget_buckets(bucket)
    # 10 records/s: the resumed job stays InProgress for ~1 s, long enough to be seen there.
    with emulator(bucket, data_dir=str(data_dir), records_per_second=10) as h:
        # Checked first, before anything slow. The rule: an InProgress job resumes from its first
        # record and its status never goes back.
        names = {job["jobName"]: job["status"] for job in h.bedrock.list_model_invocation_jobs()["invocationJobSummaries"]}
        assert names == {"done-job": "Completed", "slow-job": "InProgress"}
        assert h.s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read() == big
        assert h.s3.get_object(Bucket=bucket, Key=odd_key)["Body"].read() == "ünïcode ✓\n".encode()
        for key, head in before.items():
            after = h.s3.head_object(Bucket=bucket, Key=key)
            for field in ("ETag", "LastModified", "ContentLength", "ContentType", "Metadata"):
                assert after[field] == head[field], (key, field)
        assert h.output(done_arn) == done_output

        done = h.bedrock.get_model_invocation_job(jobIdentifier=done_arn)
        assert done == {**done_before, "ResponseMetadata": done["ResponseMetadata"]}
        assert (done["status"], done["successRecordCount"], done["clientRequestToken"]) == ("Completed", 10, "token-done")
        assert h.bedrock.list_tags_for_resource(resourceARN=done_arn)["tags"] == [{"key": "k", "value": "v"}]
        slow = h.wait(slow_arn)
        assert (slow["status"], slow["processedRecordCount"], slow["successRecordCount"]) == ("Completed", 10, 10)
        assert sorted(line["recordId"] for line in h.output(slow_arn)) == [r["recordId"] for r in records]
        # Idempotency survives: the same token returns the same job, nothing is created.
        assert h.create_job(done_input, name="other-name", clientRequestToken="token-done") == done_arn
        assert h.create_job(slow_input, name="other-name-2", clientRequestToken="token-slow") == slow_arn
        assert len(h.bedrock.list_model_invocation_jobs(nameContains="-job")["invocationJobSummaries"]) == 2
    forget_buckets(bucket)


@pytest.mark.parametrize("content", ['{"format": "bedrock-assets-emulator-data", "vers', "[]"])
def test_unreadable_index_is_one_clear_line(tmp_path: Path, capsys, content: str) -> None:
    (tmp_path / "index.json").write_text(content)
    assert cli.main(["--port", "0", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert "index.json" in err and "move or delete the data directory" in err


def test_missing_object_file_is_one_clear_line(tmp_path: Path, capsys) -> None:
    bucket = f"persist-{uuid.uuid4().hex[:12]}"
    with emulator(bucket, data_dir=str(tmp_path)) as h:
        h.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        h.s3.put_object(Bucket=bucket, Key="a.txt", Body=b"a")
    forget_buckets(bucket)
    for blob in (tmp_path / "objects").iterdir():
        blob.unlink()
    assert cli.main(["--port", "0", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "index.json" in err
    forget_buckets(bucket)  # restored before the missing file was met


def test_without_data_dir_nothing_is_written(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    bucket = f"mem-{uuid.uuid4().hex[:12]}"
    with emulator(bucket) as h:
        assert h.emulator.data is None
        h.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        uri = h.write_jsonl("in/input.jsonl", [{"recordId": f"R{i:010d}", "modelInput": anthropic_input("x")}
                                               for i in range(5)])
        h.wait(h.create_job(uri))
    assert list(tmp_path.iterdir()) == []
    forget_buckets(bucket)


def test_a_killed_emulator_keeps_what_it_saved_while_running(tmp_path: Path) -> None:
    """SIGKILL (no shutdown snapshot): S3 writes are on disk within SNAPSHOT_SECONDS, finished jobs at once."""
    bucket = f"crash-{uuid.uuid4().hex[:12]}"
    process = subprocess.Popen(
        [sys.executable, "-m", "bedrock_assets.emulator", "--port", "0", "--min-records", "1",
         "--data-dir", str(tmp_path)],
        cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        endpoint = re.search(r"ready on (http://127\.0\.0\.1:\d+)", process.stdout.readline()).group(1)
        clients = dict(endpoint_url=endpoint, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
        s3, bedrock = boto3.client("s3", **clients), boto3.client("bedrock", **clients)
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_object(Bucket=bucket, Key="in/input.jsonl",
                      Body=(json.dumps({"recordId": "R1", "modelInput": anthropic_input("hi")}) + "\n").encode())
        arn = bedrock.create_model_invocation_job(
            jobName="crash-job", roleArn="arn:aws:iam::123456789012:role/r", modelId="anthropic.claude-3-haiku-20240307-v1:0",
            inputDataConfig={"s3InputDataConfig": {"s3Uri": f"s3://{bucket}/in/input.jsonl"}},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{bucket}/out/"}})["jobArn"]
        deadline = time.monotonic() + 10
        while bedrock.get_model_invocation_job(jobIdentifier=arn)["status"] != "Completed":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # The snapshot after the status change runs on its own thread: wait for it, then crash.
        while "Completed" not in saved_statuses(tmp_path):
            assert time.monotonic() < deadline, "the Completed status was never saved"
            time.sleep(0.05)
    finally:
        process.kill()
        process.wait(timeout=10)
    with emulator(bucket, data_dir=str(tmp_path)) as h:
        job = h.bedrock.get_model_invocation_job(jobIdentifier=arn)
        assert (job["status"], job["successRecordCount"]) == ("Completed", 1)
        assert len(h.output(arn)) == 1
    forget_buckets(bucket)
