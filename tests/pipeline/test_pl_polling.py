"""jobs.wait_for_job against the real emulator: a finished job is noticed near its end, not up to a
whole poll interval later (the freed quota slot is what the next shard waits for)."""

from __future__ import annotations

import json
import time

import boto3

from bedrock_assets.jobs import wait_for_job

ROLE = "arn:aws:iam::123456789012:role/bedrock-batch"
MODEL = "amazon.titan-embed-text-v2:0"


def test_waiter_wakes_at_the_estimated_end_not_at_the_poll_cap(aws_env):
    aws_env.emulator.configure(records_per_second=100)  # 1,200 records: ~12 s in flight
    body = "\n".join(json.dumps({"recordId": f"R{i:010d}", "modelInput": {"inputText": f"row {i}"}}) for i in range(1_200))
    aws_env.s3.put_object(Bucket=aws_env.bucket, Key="in/shard.jsonl", Body=body.encode())
    bedrock = boto3.client("bedrock", region_name="us-east-1")
    arn = bedrock.create_model_invocation_job(
        jobName="polling-test", roleArn=ROLE, modelId=MODEL,
        inputDataConfig={"s3InputDataConfig": {"s3Uri": f"s3://{aws_env.bucket}/in/shard.jsonl"}},
        outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{aws_env.bucket}/out/"}},
    )["jobArn"]
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        time.sleep(seconds)

    outcome = wait_for_job(bedrock, arn, poll_seconds=30.0, log=lambda _: None, sleep=sleep)
    assert outcome.job["status"] == "Completed"
    # Backoff alone polls at 1, 3, 7, 15, 31 s: it would see the 12 s job end at 15 s. With the
    # estimate (rate known from the 1 s and 3 s counts) the 4th pause is cut to the predicted end.
    assert any(p < 2 ** i for i, p in enumerate(pauses)), pauses
    assert sum(pauses) < 14.0, pauses
