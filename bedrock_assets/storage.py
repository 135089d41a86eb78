"""Where a partition's data lives in S3, and the few S3 calls the assets make.

One partition = one input; its key is `<batch>/<input name>` and every artifact of it sits under
a prefix named after that key, so a user can browse one partition's whole history in S3.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, Iterator

# A name of this form is used as it is in every S3 key of the partition (records/, shards/,
# outputs/, jobs/, answers/, results/): it is a legal Bedrock s3Uri segment (`[-!_*'().a-zA-Z0-9]`,
# docs/bedrock-facts.md §1.1) and polars reads it as a plain path (no glob characters).
INPUT_NAME = re.compile(r"^[A-Za-z0-9][-_.A-Za-z0-9]{0,120}$")
SUPPORTED_INPUT_SUFFIXES = (".csv", ".parquet", ".jsonl", ".ndjson")
# The answer ledger (docs/ledger.md): shared by every partition of a model, so outside the
# partition folders; the runtime role reads and writes it (deploy/iam).
ANSWERS_PREFIX = "answers/"
# S3 keys are at most 1,024 bytes of UTF-8; the input's own key is inputs/<batch>/<name>.
MAX_KEY_BYTES = 1024
# Characters a name may not hold, and why: these break Dagster, not S3. The UI's backfill dialog
# splits partition keys on commas; "..." is Dagster's partition-range syntax; control characters
# (newlines, tabs, NUL) are refused by Dagster in partition keys and cannot be shown in the UI.
_REFUSED_IN_NAME = re.compile(r"[\x00-\x1f\x7f,/]|\.\.\.")
_FOLDER_UNSAFE = re.compile(r"[^-_.A-Za-z0-9]+")


class PartitionKeyError(ValueError):
    pass


def split_partition_key(partition: str) -> tuple[str, str]:
    batch, sep, name = partition.partition("/")
    if not sep or not batch or not name:
        raise PartitionKeyError(f"partition key {partition!r} is not `<batch>/<input name>`")
    return batch, name


def input_name_problem(name: str, batch: str = "") -> str | None:
    """Why `name` cannot be an input name (None when it can). The one rule `bedrock-assets add`,
    the sensor and raw_dataset all apply, so a name is refused everywhere with the same words.

    Spaces, unicode, `#`, `?`, `%`, `+`, parentheses and several dots are fine: the partition key
    keeps the name as it is and the S3 folders of the partition use `input_folder(name)`."""
    if not name or name != name.strip():
        return f"input name {name!r} is empty or starts or ends with whitespace"
    bad = _REFUSED_IN_NAME.search(name)
    if bad:
        what = "'...'" if bad.group() == "..." else repr(bad.group())
        return (f"input name {name!r} contains {what}: names may not contain commas (the Dagster UI splits "
                "partition lists on them), '...' (Dagster's range syntax), '/' or control characters; rename the file")
    if name.startswith("."):
        return f"input name {name!r} starts with '.' (a hidden or temporary file); rename it"
    key_bytes = len(f"inputs/{batch or 'x'}/{name}".encode())
    if key_bytes > MAX_KEY_BYTES:
        return f"input name {name[:40]!r}... is too long: its S3 key would be {key_bytes} bytes (S3 allows {MAX_KEY_BYTES})"
    return None


def unsupported_type_problem(name: str) -> str | None:
    """Why a file name's extension is not an input type (None when it is one)."""
    if name.lower().endswith(SUPPORTED_INPUT_SUFFIXES):
        return None
    return f"input {name!r}: unsupported input type; use one of {', '.join(SUPPORTED_INPUT_SUFFIXES)}"


def check_input_name(name: str, batch: str = "") -> str:
    problem = input_name_problem(name, batch)
    if problem:
        raise PartitionKeyError(problem)
    return name


def input_folder(name: str) -> str:
    """The S3 folder name of an input's artifacts: the name itself when it is already a safe
    segment (every partition made before names were widened keeps its folders), else an ASCII
    form of it plus 10 hex digits of its SHA-256 (so `a b.csv` and `a_b.csv` never share one),
    extension last: `my file (1).csv` -> `my_file_1-<hash>.csv`. Safe for Bedrock s3Uris, polars
    paths and S3 listings; the partition key and the UI keep the original name."""
    if INPUT_NAME.match(name):
        return name
    import hashlib  # noqa: PLC0415
    import unicodedata  # noqa: PLC0415

    stem, dot, ext = name.rpartition(".")
    if not dot or not ext.isalnum() or len(ext) > 10:
        stem, ext = name, ""
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    slug = _FOLDER_UNSAFE.sub("_", ascii_stem).strip("_.-")[:80] or "input"
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{slug}-{digest}" + (f".{ext.lower()}" if ext else "")


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
    def folder(self) -> str:
        """`<batch>/<input_folder(name)>`: the partition's folder under records/, shards/,
        outputs/, jobs/, answers/<model>/ and results/ (= the partition key for safe names)."""
        return f"{self.batch}/{input_folder(self.input_name)}"

    @property
    def input_key(self) -> str:
        # The user's own object, under its own name (read with boto3 or a non-glob polars scan).
        return f"inputs/{self.partition}"

    @property
    def records_key(self) -> str:
        return f"records/{self.folder}/records.parquet"

    @property
    def shards_prefix(self) -> str:
        return f"shards/{self.folder}/"

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
        return f"outputs/{self.folder}/{shard_name.removesuffix('.jsonl')}/"

    def job_record_key(self, shard_name: str) -> str:
        return f"jobs/{self.folder}/{shard_name.removesuffix('.jsonl')}.json"

    @property
    def jobs_summary_key(self) -> str:
        return f"jobs/{self.folder}/jobs.json"

    @property
    def results_key(self) -> str:
        return f"results/{self.folder}/results.parquet"


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
