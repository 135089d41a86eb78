"""Admin endpoints over HTTP and the CLI as a separate process (start on a free port, SIGTERM)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest

from bedrock_assets.emulator import EmulatorClient
from emulator_helpers import ANTHROPIC, anthropic_input

REPO = Path(__file__).resolve().parents[2]


def post(url: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body or {}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_admin_endpoints_over_http(make_harness):
    harness = make_harness(max_concurrent_jobs=3, queue_seconds=60)
    base = harness.emulator.endpoint_url + "/_emulator/"
    client = EmulatorClient(harness.emulator.endpoint_url)
    assert client.health() == {"status": "ok"}
    uri = harness.write_jsonl("in/input.jsonl", harness.records(6, lambda i: anthropic_input("x")))
    token_arn = harness.create_job(uri, clientRequestToken="tok")
    harness.create_job(uri, clientRequestToken="tok")
    harness.create_job(uri)

    stats = client.stats()
    model = stats["models"][ANTHROPIC]
    assert model["jobs_created"] == 2 and model["create_replays"] == 1
    assert model["in_flight"] == 2 and model["peak_in_flight"] == 2
    assert stats["totals"]["jobs_created"] == 2
    assert stats["config"]["max_concurrent_jobs"] == 3

    new = client.configure(throttle_rate=1.0, max_concurrent_jobs=5, record_error_codes="429,400")
    assert new["throttle_rate"] == 1.0 and new["record_error_codes"] == [429, 400]
    with pytest.raises(harness.bedrock.exceptions.ThrottlingException):
        harness.client("bedrock", retries={"mode": "standard", "max_attempts": 0}).create_model_invocation_job(
            jobName="throttled", roleArn="arn:aws:iam::123456789012:role/r", modelId=ANTHROPIC,
            inputDataConfig={"s3InputDataConfig": {"s3Uri": uri}},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{harness.bucket}/out/"}})
    assert client.stats()["models"][ANTHROPIC]["create_throttled"] == 1

    status, body = post(base + "config", {"throttle_rate": 3})
    assert status == 400 and "throttle_rate" in body["message"]
    status, body = post(base + "config", {"seed": 3})
    assert status == 400 and "seed" in body["message"]

    client.reset_stats()
    after = client.stats()["models"][ANTHROPIC]
    assert after["jobs_created"] == 0 and after["create_throttled"] == 0
    assert after["peak_in_flight"] == after["in_flight"] == 2
    jobs = json.loads(urllib.request.urlopen(base + "jobs").read())["jobs"]
    assert token_arn in {job["jobArn"] for job in jobs}
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(base + "nope")
    assert caught.value.code == 404


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_cli_subprocess_serves_and_stops_on_signal(stop_signal):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "bedrock_assets.emulator", "--port", "0", "--min-records", "1",
         "--throttle-rate", "0", "--seed", "3", "--seconds-per-hour", "60"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = process.stdout.readline()
        match = re.search(r"ready on (http://127\.0\.0\.1:\d+)", line)
        assert match, line + process.stderr.read() if process.poll() is not None else line
        endpoint = match.group(1)
        client = EmulatorClient(endpoint)
        assert client.health()["status"] == "ok"
        assert client.stats()["config"]["seconds_per_hour"] == 60
        kwargs = dict(endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="AKIASECRETSHOULDNOTLOG", aws_secret_access_key="hush")
        s3 = boto3.client("s3", **kwargs)
        s3.create_bucket(Bucket="cli-bucket")
        s3.put_object(Bucket="cli-bucket", Key="in/input.jsonl",
                      Body=json.dumps({"recordId": "R1", "modelInput": anthropic_input("hi")}).encode())
        bedrock = boto3.client("bedrock", **kwargs)
        arn = bedrock.create_model_invocation_job(
            jobName="cli-job", roleArn="arn:aws:iam::123456789012:role/r", modelId=ANTHROPIC,
            inputDataConfig={"s3InputDataConfig": {"s3Uri": "s3://cli-bucket/in/input.jsonl"}},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": "s3://cli-bucket/out/"}})["jobArn"]
        assert bedrock.get_model_invocation_job(jobIdentifier=arn)["jobArn"] == arn
    finally:
        process.send_signal(stop_signal)
        stdout, stderr = process.communicate(timeout=15)
    assert process.returncode == 0
    assert "stopped" in stdout
    assert "AKIASECRETSHOULDNOTLOG" not in stdout + stderr and "hush" not in stdout + stderr
    assert "CreateModelInvocationJob" in stderr  # operations are logged


def test_console_script_help():
    script = Path(sys.executable).parent / "bedrock-assets"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "bedrock_assets.cli"]
    result = subprocess.run(command + ["emulator", "--help"], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0
    for flag in ("--max-concurrent-jobs", "--records-per-second", "--record-error-codes", "--seconds-per-hour",
                 "--embedding-engine", "--openai-base-url", "--throttle-rate", "--queue-seconds"):
        assert flag in result.stdout


@pytest.mark.parametrize(
    "flags, message",
    [(["--embedding-engine", "minilm"], "pip install"), (["--throttle-rate", "2"], "throttle_rate"),
     (["--record-error-codes", "200"], "record_error_codes")],
    ids=["minilm-without-extra", "bad-rate", "bad-codes"],
)
def test_cli_rejects_bad_settings_clearly(flags, message):
    if flags[0] == "--embedding-engine" and importlib.util.find_spec("sentence_transformers"):
        pytest.skip("the embeddings extra is installed")
    result = subprocess.run([sys.executable, "-m", "bedrock_assets.emulator", "--port", "0", *flags],
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 2
    assert message in result.stderr
