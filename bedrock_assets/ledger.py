"""The answer ledger: every answer Bedrock gave, keyed by exactly what was asked.

An answer is identified by its **request digest**: XXH3-128 over the request body (`modelInput`,
byte for byte as sent), seeded with the model id as submitted and the invocation type
(`request_seed`). Two rows that send the same bytes to the same model get the same digest; a
changed model, prompt, parameter or input value gives a new one. Everything that reuses earlier
work keys on it: the cache in jsonl_shards, the join in joined_results, the batch jobs' names.

Layout in the project bucket (docs/ledger.md):

    answers/<model key>/<partition>/<shard>-a<attempt>-<job id | on-demand-<digest>>.parquet

One immutable Parquet file per finished job attempt or on-demand batch, written by the shard step
that owns it (so concurrent runs need no lock), with the columns of `ledger_schema`. Readers scan
every file under `answers/<model key>/` (a polars scan: bounded memory at 10M+ answers).

This module is data plane: no Dagster.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl
import pyarrow as pa
import xxhash
from pydantic import BaseModel, ConfigDict

from bedrock_assets.providers import Provider
from bedrock_assets.storage import ANSWERS_PREFIX

DIGEST = "request_digest"
# Per-record error codes worth another try (throttling, 5xx, timeouts). Bedrock writes numbers
# (AWS example: 400) and other producers strings, so both spellings count (docs/ledger.md).
TRANSIENT_CODES = frozenset(
    {"408", "424", "429", "500", "502", "503", "504", "ThrottlingException", "ServiceUnavailableException",
     "InternalServerException", "ModelTimeoutException", "ModelNotReadyException"}
)


class AnsweredBy(str, enum.Enum):
    """How a result row got its answer (`answered_by` in results.parquet)."""

    BATCH = "batch"  # a Bedrock batch job of this materialization (or a follow-up job)
    ON_DEMAND = "on-demand"  # InvokeModel / Converse: a remainder under the minimum job size
    CACHE = "cache"  # the ledger already held an answer to exactly this request


class LedgerFile(BaseModel):
    """What one ledger file holds, for its S3 key and its log line."""

    model_config = ConfigDict(frozen=True)

    model_key: str
    partition: str
    shard: str
    attempt: int
    source: str  # the job id, or `on-demand-<digest of the answered requests>`

    @property
    def key(self) -> str:
        return f"{ANSWERS_PREFIX}{self.model_key}/{self.partition}/{self.shard.removesuffix('.jsonl')}-a{self.attempt}-{self.source}.parquet"


def model_key(model_id: str, invocation_type: str) -> str:
    """The ledger folder of a model: readable, and distinct per model id and invocation type
    (a short hash keeps ids that slug alike apart)."""
    slug = re.sub(r"[^a-z0-9]+", "-", model_id.lower()).strip("-")[:60] or "model"
    tail = xxhash.xxh3_64_hexdigest(f"{model_id}\n{invocation_type}".encode())[:8]
    return f"{slug}-{invocation_type.lower()}-{tail}"


def request_seed(model_id: str, invocation_type: str) -> int:
    """The 64-bit seed that binds a request digest to the model and invocation type: the same
    body sent to another model (or through Converse instead of InvokeModel) is another request."""
    return xxhash.xxh3_64_intdigest(f"bedrock-assets request v1\n{model_id}\n{invocation_type}".encode())


def hex_digests(raw: bytes) -> pl.Series:
    """The 32-character hex form (what the ledger and requests.parquet store) of concatenated
    16-byte digests, without a Python loop."""
    n = len(raw) // 16
    arr = pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), n, [None, pa.py_buffer(raw)])
    return pl.Series(DIGEST, arr.cast(pa.binary())).bin.encode("hex")


def digest_of_body(body: bytes, model_id: str, invocation_type: str) -> str:
    """One request's digest, with the xxhash package (tools and tests; the data plane computes the
    same values in bulk inside polars: shards.request_digest_expr)."""
    return xxhash.xxh3_128_hexdigest(body, request_seed(model_id, invocation_type))


# --- schema ---------------------------------------------------------------------------------


def answer_schema(provider: Provider) -> dict[str, pl.DataType]:
    """The provider's uniform answer columns plus the two error columns (what results.parquet
    shows of an answer)."""
    probe = pl.DataFrame({"mo": pl.Series([None], dtype=provider.output_schema)})
    cols = probe.select(**provider.output_columns(pl.col("mo"))).schema
    return dict(cols) | {"error_code": pl.String(), "error_message": pl.String()}


def ledger_schema(provider: Provider) -> pl.Schema:
    """Columns of every ledger file for this provider, in order."""
    return pl.Schema(
        {DIGEST: pl.String()}
        | answer_schema(provider)
        | {
            "answered_by": pl.String(),  # AnsweredBy.BATCH or ON_DEMAND (never CACHE in the ledger)
            "job_arn": pl.String(),  # null for on-demand
            "attempt": pl.Int32(),
            "partition": pl.String(),  # where the request was first asked
            "answered_at": pl.Datetime("us", "UTC"),
        }
    )


def is_transient(code: pl.Expr) -> pl.Expr:
    return code.cast(pl.String).is_in(list(TRANSIENT_CODES))


def reusable(answers: pl.LazyFrame, fresh: bool = False) -> pl.LazyFrame:
    """Ledger rows that answer their request for good: a success, or a permanent error (the body
    is wrong: asking again gives the same error). Transient errors never count. With `fresh`,
    nothing counts (every request is asked again)."""
    if fresh:
        return answers.filter(pl.lit(False))
    err = pl.col("error_code")
    return answers.filter(err.is_null() & pl.col("error_message").is_null() | err.is_not_null() & ~is_transient(err))


def best_answers(answers: pl.LazyFrame) -> pl.LazyFrame:
    """One ledger row per request digest: a success over a permanent error over a transient
    one, then the newest (a forced fresh answer replaces the old), then a stable order. The
    choice is made on the key columns only; the answers themselves are not sorted."""
    err = pl.col("error_code")
    rank = (
        pl.when(err.is_null() & pl.col("error_message").is_null()).then(0)
        .when(~is_transient(err.fill_null("")))
        .then(1)
        .otherwise(2)
    )
    keyed = answers.with_row_index("__i")
    chosen = (
        keyed.select("__i", DIGEST, rank.alias("__rank"), "answered_at", "job_arn")
        .sort([DIGEST, "__rank", "answered_at", "job_arn", "__i"], descending=[False, False, True, False, False], nulls_last=True)
        .unique(subset=DIGEST, keep="first")
        .select("__i")
    )
    return keyed.join(chosen, on="__i", how="semi").drop("__i")


def empty_ledger(provider: Provider) -> pl.LazyFrame:
    return pl.LazyFrame(schema=ledger_schema(provider))


def scan_ledger(uris: Iterable[str], provider: Provider, storage_options: Mapping[str, str] | None = None) -> pl.LazyFrame:
    """Every row of the given ledger files (an empty frame for none)."""
    uris = sorted(uris)
    if not uris:
        return empty_ledger(provider)
    schema = ledger_schema(provider)
    return pl.scan_parquet(uris, storage_options=dict(storage_options) if storage_options else None).select(
        [pl.col(name).cast(dtype) for name, dtype in schema.items()]
    )


def ledger_rows(
    outputs: pl.DataFrame,
    requests: pl.DataFrame,
    provider: Provider,
    *,
    answered_by: AnsweredBy,
    job_arn: str | None,
    attempt: int,
    partition: str,
    answered_at: dt.datetime | None = None,
) -> tuple[pl.DataFrame, int]:
    """Ledger rows from parsed output lines (`record_id` + answer columns, as results.collect_outputs
    gives them) and the requests they answer (`record_id`, `request_digest`): every line whose
    record id is one of `requests` gets that request's digest. Returns the rows and the number
    of lines that answered no request of `requests` (orphans)."""
    when = answered_at or dt.datetime.now(dt.timezone.utc)
    matched = outputs.join(requests.select("record_id", DIGEST), on="record_id", how="inner")
    orphans = outputs.height - matched.height
    schema = ledger_schema(provider)
    rows = matched.with_columns(
        pl.lit(answered_by.value).alias("answered_by"),
        pl.lit(job_arn, pl.String).alias("job_arn"),
        pl.lit(attempt, pl.Int32).alias("attempt"),
        pl.lit(partition).alias("partition"),
        pl.lit(when).cast(pl.Datetime("us", "UTC")).alias("answered_at"),
    ).select([pl.col(name).cast(dtype) for name, dtype in schema.items()])
    return rows, orphans


# --- compaction -------------------------------------------------------------------------------
COMPACTED = "compacted"


def compact(s3: Any, bucket: str, model_folder: str, *, target_rows: int = 1_000_000,
            storage_options: Mapping[str, str] | None = None, log: Any = print) -> tuple[int, int]:
    """Rewrite the ledger files under `answers/<model_folder>/` into files of about `target_rows`
    rows each (`answers/<model_folder>/compacted/part-<digest>.parquet`), every row kept as it
    is, then delete the files merged. Returns (files before, files after). Readers see every
    answer at every moment: new files are written before old ones are deleted (an answer seen
    twice meanwhile is the same row, and best_answers keeps one). Run it when no run writes to
    this model's folder. Ledger files hold only answer columns, so memory is one part."""
    import tempfile  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    prefix = f"{ANSWERS_PREFIX}{model_folder.strip('/')}/"
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".parquet")]
    if len(keys) <= 1:
        return len(keys), len(keys)
    opts = dict(storage_options) if storage_options else None
    uris = [f"s3://{bucket}/{k}" for k in sorted(keys)]
    frame = pl.scan_parquet(uris, storage_options=opts)
    total = int(frame.select(pl.len()).collect().item())
    written: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bedrock-ledger-compact-") as tmp:
        for start in range(0, total, target_rows):
            part = frame.slice(start, target_rows).collect()
            local = Path(tmp) / "part.parquet"
            part.write_parquet(local, compression="zstd", compression_level=1)
            name = xxhash.xxh3_128_hexdigest(local.read_bytes())
            key = f"{prefix}{COMPACTED}/part-{name}.parquet"
            s3.upload_file(str(local), bucket, key)
            written.append(key)
    merged = [k for k in keys if k not in written]
    for i in range(0, len(merged), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in merged[i : i + 1000]]})
    log(f"{prefix}: {len(keys)} file(s), {total} answer(s) -> {len(written)} file(s)")
    return len(keys), len(written)
