"""Deployment settings: every knob comes from an environment variable with a local default.

Nothing here talks to the network; values are read when called (at run time), never at import.
boto3 itself honours AWS_ENDPOINT_URL, AWS_REGION and the usual credential chain, so the same
code reaches the local emulator or real AWS depending only on the environment.
"""

from __future__ import annotations

import os

ENV_BUCKET = "BEDROCK_ASSETS_BUCKET"
ENV_ROLE_ARN = "BEDROCK_ROLE_ARN"
ENV_REGION = "AWS_REGION"
ENV_ENDPOINT = "AWS_ENDPOINT_URL"
ENV_SPECS = "BEDROCK_ASSETS_SPECS"
ENV_POLL_SECONDS = "BEDROCK_ASSETS_POLL_SECONDS"
ENV_BACKOFF_CAP = "BEDROCK_ASSETS_BACKOFF_CAP_SECONDS"
# Deployment-wide job options (bedrock_assets/job_options.py); a batch's spec fields win over them.
ENV_OUTPUT_KMS_KEY_ID = "BEDROCK_ASSETS_OUTPUT_KMS_KEY_ID"  # a key id, key ARN, alias or alias ARN
ENV_VPC_SUBNET_IDS = "BEDROCK_ASSETS_VPC_SUBNET_IDS"  # comma-separated
ENV_VPC_SECURITY_GROUP_IDS = "BEDROCK_ASSETS_VPC_SECURITY_GROUP_IDS"  # comma-separated
ENV_JOB_TAGS = "BEDROCK_ASSETS_JOB_TAGS"  # a JSON object: {"team": "search"}

DEFAULT_BUCKET = "bedrock-assets"
DEFAULT_REGION = "us-east-1"
# Placeholder role that the emulator accepts. Real AWS needs a real service role (see README).
DEFAULT_ROLE_ARN = "arn:aws:iam::123456789012:role/BedrockBatchInference"
DEFAULT_POLL_SECONDS = 30.0
DEFAULT_BACKOFF_CAP_SECONDS = 60.0
# The pool that limits jobs in flight across every run; its limit = the Bedrock quota.
BEDROCK_POOL = "bedrock_batch"


def bucket() -> str:
    return os.environ.get(ENV_BUCKET) or DEFAULT_BUCKET


def region() -> str:
    return os.environ.get(ENV_REGION) or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def endpoint_url() -> str | None:
    return os.environ.get(ENV_ENDPOINT) or None


def role_arn() -> str:
    return os.environ.get(ENV_ROLE_ARN) or DEFAULT_ROLE_ARN


def poll_seconds() -> float:
    return float(os.environ.get(ENV_POLL_SECONDS) or DEFAULT_POLL_SECONDS)


def backoff_cap_seconds() -> float:
    return float(os.environ.get(ENV_BACKOFF_CAP) or DEFAULT_BACKOFF_CAP_SECONDS)


def env_text(name: str) -> str | None:
    """The variable's text, None when unset or empty (an empty variable means "not set", as for the
    others here). Parsed and validated by job_options.resolve_defaults, which names the variable."""
    return os.environ.get(name) or None


def polars_storage_options() -> dict[str, str]:
    """storage_options for polars' object_store: same endpoint/region/credentials as boto3."""
    import boto3  # local import: keep module import free of botocore start-up cost

    opts: dict[str, str] = {"aws_region": region()}
    endpoint = endpoint_url()
    if endpoint:
        opts["aws_endpoint_url"] = endpoint
        if endpoint.startswith("http://"):
            opts["aws_allow_http"] = "true"
    creds = boto3.Session().get_credentials()
    if creds is not None:
        frozen = creds.get_frozen_credentials()
        opts["aws_access_key_id"] = frozen.access_key
        opts["aws_secret_access_key"] = frozen.secret_key
        if frozen.token:
            opts["aws_session_token"] = frozen.token
    return opts
