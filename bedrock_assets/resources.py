"""Dagster resources: Bedrock batch (boto3) and the project's S3 bucket.

Every field may be set in the resource config (Launchpad / run config); a field left unset is read
from its environment variable when the run starts, then falls back to the local default
(`bedrock_assets.settings`). Nothing is read or contacted at import, so `defs` loads with no env.
"""

from __future__ import annotations

from typing import Any, Optional

import boto3
import dagster as dg
from botocore.config import Config
from dagster_aws.s3 import S3Resource
from pydantic import Field

from bedrock_assets import job_options, settings
from bedrock_assets.storage import PartitionLayout


class BedrockBatch(dg.ConfigurableResource):
    """Amazon Bedrock batch inference: CreateModelInvocationJob and friends via boto3."""

    region_name: Optional[str] = Field(default=None, description="AWS region; unset: $AWS_REGION, then us-east-1.")
    endpoint_url: Optional[str] = Field(
        default=None, description="Endpoint override (the local emulator); unset: $AWS_ENDPOINT_URL, then AWS."
    )
    role_arn: Optional[str] = Field(
        default=None, description="Service role Bedrock assumes to read shards and write outputs; unset: $BEDROCK_ROLE_ARN."
    )
    poll_seconds: Optional[float] = Field(
        default=None, description="Longest pause between GetModelInvocationJob polls; unset: $BEDROCK_ASSETS_POLL_SECONDS, then 30."
    )
    job_timeout_hours: int = Field(default=24, description="Default timeoutDurationInHours (24..168) when the spec sets none.")
    max_attempts: int = Field(default=8, description="botocore retry attempts (standard mode) per API call.")
    create_backoff_cap_seconds: Optional[float] = Field(
        default=None,
        description="Longest jittered pause between CreateModelInvocationJob retries on throttling/quota; "
        "unset: $BEDROCK_ASSETS_BACKOFF_CAP_SECONDS, then 60.",
    )

    # Job options for every job of this deployment (job_options.py); a batch's spec fields win.
    output_kms_key_id: Optional[str] = Field(
        default=None,
        description="KMS key for the job outputs (s3EncryptionKeyId): key id, key ARN, alias or alias ARN; a batch's "
        "`output_kms_key_id` wins. Unset: $BEDROCK_ASSETS_OUTPUT_KMS_KEY_ID, else none (the bucket's default encryption).",
    )
    vpc_subnet_ids: Optional[list[str]] = Field(
        default=None,
        description="Subnet ids (1..16) of the jobs' VPC config, with vpc_security_group_ids; a batch's `vpc_config` "
        "wins as a whole. Unset: $BEDROCK_ASSETS_VPC_SUBNET_IDS (comma-separated), else no VPC.",
    )
    vpc_security_group_ids: Optional[list[str]] = Field(
        default=None,
        description="Security group ids (1..5) of the jobs' VPC config, with vpc_subnet_ids. Unset: "
        "$BEDROCK_ASSETS_VPC_SECURITY_GROUP_IDS (comma-separated).",
    )
    job_tags: Optional[dict[str, str]] = Field(
        default=None,
        description="Tags for every job; a batch's `job_tags` are merged over them (the batch wins per key), the "
        "project's bedrock-assets/partition and bedrock-assets/shard are always added. Unset: $BEDROCK_ASSETS_JOB_TAGS "
        "(a JSON object).",
    )

    def job_defaults(self) -> job_options.JobDefaults:
        """The deployment's job options, validated (job_options.JobOptionsError names the field or
        variable at fault). Called when a run starts (jsonl_shards), before any upload or job."""

        def pick(field: str, env: str):
            value = getattr(self, field)
            if value is not None:
                return value, f"BedrockBatch resource config `{field}`"
            return settings.env_text(env), f"${env}"

        return job_options.resolve_defaults(
            kms=pick("output_kms_key_id", settings.ENV_OUTPUT_KMS_KEY_ID),
            subnets=pick("vpc_subnet_ids", settings.ENV_VPC_SUBNET_IDS),
            security_groups=pick("vpc_security_group_ids", settings.ENV_VPC_SECURITY_GROUP_IDS),
            tags=pick("job_tags", settings.ENV_JOB_TAGS),
        )

    def resolved_region(self) -> str:
        return self.region_name or settings.region()

    def resolved_role_arn(self) -> str:
        return self.role_arn or settings.role_arn()

    def resolved_poll_seconds(self) -> float:
        return self.poll_seconds if self.poll_seconds is not None else settings.poll_seconds()

    def resolved_backoff_cap(self) -> float:
        if self.create_backoff_cap_seconds is not None:
            return self.create_backoff_cap_seconds
        return settings.backoff_cap_seconds()

    def _client(self, service: str) -> Any:
        config = Config(retries={"mode": "standard", "max_attempts": self.max_attempts})
        return boto3.session.Session().client(
            service,
            region_name=self.resolved_region(),
            endpoint_url=self.endpoint_url or settings.endpoint_url(),
            config=config,
        )

    def client(self) -> Any:
        """The control-plane client (`bedrock`), where batch jobs live."""
        return self._client("bedrock")

    def runtime_client(self) -> Any:
        """The on-demand client (`bedrock-runtime`): InvokeModel / Converse."""
        return self._client("bedrock-runtime")


class ProjectStorage(dg.ConfigurableResource):
    """The project's S3 bucket: inputs, records, shards, outputs, job records and results."""

    s3: S3Resource
    bucket: Optional[str] = Field(default=None, description="Bucket; unset: $BEDROCK_ASSETS_BUCKET, then bedrock-assets.")

    def resolved_bucket(self) -> str:
        return self.bucket or settings.bucket()

    def client(self) -> Any:
        return self.s3.get_client()

    def layout(self, partition: str) -> PartitionLayout:
        return PartitionLayout(self.resolved_bucket(), partition)

    def polars_options(self) -> dict[str, str]:
        return settings.polars_storage_options()


def default_resources() -> dict[str, Any]:
    return {
        "bedrock": BedrockBatch(),
        "storage": ProjectStorage(s3=S3Resource(max_attempts=5)),
    }
