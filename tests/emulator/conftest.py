"""Fixtures: a real emulator on a free port with unmodified boto3 clients (see emulator_helpers)."""

from __future__ import annotations

import uuid
from typing import Any, Callable, Iterator

import boto3
import pytest

from bedrock_assets.emulator import EmulatorConfig, run_emulator
from emulator_helpers import REGION, Harness


@pytest.fixture
def make_harness() -> Iterator[Callable[..., Harness]]:
    """Start an emulator with config overrides (port 0, small record minimum by default)."""
    stack: list[Any] = []

    def start(**overrides: Any) -> Harness:
        settings = {"port": 0, "min_records": 5, "max_records": 2000, "seed": 7}
        settings.update(overrides)
        context = run_emulator(EmulatorConfig(**settings))
        emulator = context.__enter__()
        stack.append(context)
        endpoint = dict(endpoint_url=emulator.endpoint_url, region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test")
        s3 = boto3.client("s3", **endpoint)
        bucket = f"emu-{uuid.uuid4().hex[:16]}"
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        return Harness(emulator, s3, boto3.client("bedrock", **endpoint),
                       boto3.client("bedrock-runtime", **endpoint), bucket)

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)


@pytest.fixture
def harness(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness()
