"""Helpers for the emulator tests: model inputs and a Harness of boto3 clients + job helpers."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import boto3
from botocore.config import Config

from bedrock_assets.emulator import Emulator

REGION = "us-west-2"
ROLE_ARN = "arn:aws:iam::123456789012:role/BedrockBatch"
TERMINAL = {"Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"}

ANTHROPIC = "anthropic.claude-3-haiku-20240307-v1:0"
TITAN_V2 = "amazon.titan-embed-text-v2:0"


def anthropic_input(text: str, max_tokens: int = 200) -> dict[str, Any]:
    return {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
    }


def titan_input(text: str, dimensions: int = 256) -> dict[str, Any]:
    return {"inputText": text, "dimensions": dimensions}


@dataclass
class Harness:
    """One emulator plus boto3 clients built exactly as an application would build them."""

    emulator: Emulator
    s3: Any
    bedrock: Any
    runtime: Any
    bucket: str

    def client(self, service: str, **config: Any) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.emulator.endpoint_url,
            region_name=REGION,
            aws_access_key_id=f"AKIA{uuid.uuid4().hex[:16].upper()}",
            aws_secret_access_key=uuid.uuid4().hex,
            config=Config(**config) if config else None,
        )

    def write_jsonl(self, key: str, records: list[dict[str, Any]] | list[str]) -> str:
        lines = [line if isinstance(line, str) else json.dumps(line) for line in records]
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=("\n".join(lines) + "\n").encode())
        return f"s3://{self.bucket}/{key}"

    def records(self, count: int, make_input: Callable[[int], dict], prefix: str = "R") -> list[dict]:
        return [{"recordId": f"{prefix}{index:010d}", "modelInput": make_input(index)} for index in range(count)]

    def create_job(
        self, input_uri: str, model_id: str = ANTHROPIC, output_prefix: str = "out/",
        name: str | None = None, client: Any = None, **extra: Any,
    ) -> str:
        response = (client or self.bedrock).create_model_invocation_job(
            jobName=name or f"job-{uuid.uuid4().hex[:12]}",
            roleArn=ROLE_ARN,
            modelId=model_id,
            inputDataConfig={"s3InputDataConfig": {"s3Uri": input_uri}},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{self.bucket}/{output_prefix}"}},
            **extra,
        )
        return response["jobArn"]

    def wait(self, job_arn: str, statuses: set[str] = TERMINAL, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.bedrock.get_model_invocation_job(jobIdentifier=job_arn)
            if job["status"] in statuses:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job stuck in {job['status']}: {job}")
            time.sleep(0.03)

    def wait_until(self, job_arn: str, predicate: Callable[[dict], bool], timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            job = self.bedrock.get_model_invocation_job(jobIdentifier=job_arn)
            if predicate(job):
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"condition never met: {job}")
            time.sleep(0.02)

    def output(self, job_arn: str, output_prefix: str = "out/", file_name: str = "input.jsonl.out") -> list[dict]:
        job_id = job_arn.rsplit("/", 1)[1]
        body = self.s3.get_object(Bucket=self.bucket, Key=f"{output_prefix}{job_id}/{file_name}")["Body"].read()
        return [json.loads(line) for line in body.decode().split("\n") if line]  # JSONL: \n only

    def manifest(self, job_arn: str, output_prefix: str = "out/") -> dict[str, Any]:
        job_id = job_arn.rsplit("/", 1)[1]
        body = self.s3.get_object(Bucket=self.bucket, Key=f"{output_prefix}{job_id}/manifest.json.out")["Body"].read()
        return json.loads(body)
