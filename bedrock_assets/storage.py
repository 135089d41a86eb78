"""Where a partition's data lives in S3, and the few S3 calls the assets make.

One partition = one input; its key is `<batch>/<input name>` and every artifact of it sits under
a prefix named after that key, so a user can browse one partition's whole history in S3.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, Iterator

# Input names become S3 key segments and Bedrock s3Uri segments; Bedrock's s3Uri regex only allows
# `[-!_*'().a-zA-Z0-9]` per segment (docs/bedrock-facts.md §1.1), and Dagster's UI backfill splits keys on commas.
INPUT_NAME = re.compile(r"^[A-Za-z0-9][-_.A-Za-z0-9]{0,120}$")
SUPPORTED_INPUT_SUFFIXES = (".csv", ".parquet", ".jsonl", ".ndjson")
# The answer ledger (docs/ledger.md): shared by every partition of a model, so outside the
# partition folders; the runtime role reads and writes it (deploy/iam).
ANSWERS_PREFIX = "answers/"


class PartitionKeyError(ValueError):
    pass


def split_partition_key(partition: str) -> tuple[str, str]:
    batch, sep, name = partition.partition("/")
    if not sep or not batch or not name:
        raise PartitionKeyError(f"partition key {partition!r} is not `<batch>/<input name>`")
    return batch, name


def check_input_name(name: str) -> str:
    if not INPUT_NAME.match(name):
        raise PartitionKeyError(
            f"input name {name!r} must match {INPUT_NAME.pattern}: it becomes part of S3 keys and "
            "Bedrock s3Uris (no spaces, commas or slashes)"
        )
    return name


@dataclasses.dataclass(frozen=True)
class PartitionLayout:
    """S3 keys of every artifact of one partition."""

    bucket: str
    partition: str

    @property
    def batch(self) -> str:
        return split_partition_key(self.partition)[0]

    @property
    def input_name(self) -> str:
        return split_partition_key(self.partition)[1]

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    @property
    def input_key(self) -> str:
        return f"inputs/{self.partition}"

    @property
    def records_key(self) -> str:
        return f"records/{self.partition}/records.parquet"

    @property
    def shards_prefix(self) -> str:
        return f"shards/{self.partition}/"

    def shard_key(self, shard_name: str) -> str:
        return f"{self.shards_prefix}{shard_name}"

    @property
    def shards_manifest_key(self) -> str:
        return f"{self.shards_prefix}manifest.json"

    @property
    def answers_prefix(self) -> str:
        """The answer ledger of every model (ledger.LedgerFile keys live under it)."""
        return ANSWERS_PREFIX

    @property
    def requests_key(self) -> str:
        # One row per rendered record: record_id, request_digest, shard, sent, cached (ledger.py).
        return f"{self.shards_prefix}requests.parquet"

    def outputs_prefix(self, shard_name: str) -> str:
        # Bedrock writes `<this prefix>/<jobId>/<shard file>.out` (docs/bedrock-facts.md §4).
        return f"outputs/{self.partition}/{shard_name.removesuffix('.jsonl')}/"

    def job_record_key(self, shard_name: str) -> str:
        return f"jobs/{self.partition}/{shard_name.removesuffix('.jsonl')}.json"

    @property
    def jobs_summary_key(self) -> str:
        return f"jobs/{self.partition}/jobs.json"

    @property
    def results_key(self) -> str:
        return f"results/{self.partition}/results.parquet"


def put_json(s3: Any, bucket: str, key: str, doc: Any) -> None:
    body = json.dumps(doc, indent=1, sort_keys=True, default=str).encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")


def get_json(s3: Any, bucket: str, key: str) -> Any | None:
    try:
        obj = s3.get_object(Bucket=bucket, Key=key)
    except s3.exceptions.NoSuchKey:
        return None
    return json.loads(obj["Body"].read())


def list_keys(s3: Any, bucket: str, prefix: str) -> Iterator[dict]:
    """Every object under a prefix (paginated: a prefix can hold more than 1,000 keys)."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except Exception:
        pass
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":  # us-east-1 rejects an explicit LocationConstraint
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
