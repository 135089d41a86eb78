"""Pointing a process at the session emulator (shared by conftest's `aws_env` and module-scoped
fixtures; a plain module, since `conftest` names several files in this tree)."""

from __future__ import annotations

import pytest


def point_at_emulator(mp: pytest.MonkeyPatch, emulator, bucket: str, **extra: str) -> tuple[dict[str, str], object]:
    """Set the env that points boto3/polars/Dagster (and their subprocesses) at the emulator with
    `bucket` as the project bucket (plus `extra`), unset the AWS session/profile variables that
    would override it, create the bucket; return the env and an S3 client."""
    import boto3

    env = {
        "AWS_ENDPOINT_URL": emulator.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "BEDROCK_ASSETS_BUCKET": bucket,
        "BEDROCK_ASSETS_POLL_SECONDS": "0.3",
        **extra,
    }
    for key, value in env.items():
        mp.setenv(key, value)
    for key in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        mp.delenv(key, raising=False)
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    return env, s3
