"""The four partitioned assets: raw_dataset -> jsonl_shards -> batch_job_outputs -> joined_results.

Each asset is thin orchestration over pure functions (records, shards, jobs, results) and writes
its own files to S3 under the partition's prefix (see storage.PartitionLayout), returning only
metadata: the IO manager never holds row data.

Backfill policy: one partition per run (`multi_run(1)`). A partition's run spends hours waiting
on Bedrock, so batching partitions into one run would let one slow or failed input hold up or fail
the others; with one run each, a partial backfill failure leaves the other partitions
materialized, and the `bedrock_batch` pool still caps jobs in flight across all the runs.
"""


import contextlib
import tempfile
import time
import warnings
from pathlib import Path

import botocore.exceptions
import dagster as dg
import polars as pl
import pydantic

from bedrock_assets import (
    attempts, job_options, jobs, ledger, parquet_splice, pricing, providers, records, results, shards,
)
from bedrock_assets.partitions import inputs_partitions
from bedrock_assets.resources import BedrockBatch, ProjectStorage
from bedrock_assets.settings import BEDROCK_POOL
from bedrock_assets.specs import SpecError, get_spec, specs_path
from bedrock_assets.storage import (
    PartitionKeyError,
    get_json,
    input_name_problem,
    list_keys,
    put_json,
    split_partition_key,
    unsupported_type_problem,
)

# `backfill_policy` on assets is marked beta in dagster 1.13; we rely on it deliberately (see the
# module doc), so its warning would only repeat in every step process's log.
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)

GROUP = "bedrock_batch"


def _check(name: str, asset: str, blocking: bool = False) -> dg.AssetCheckSpec:
    # Unpartitioned on purpose. Partitioned checks (preview in 1.13) make a UI backfill plan each
    # check over every partition of the backfill in every run, so the other partitions' results
    # read SKIPPED. The cost: the asset's Checks tab shows the latest evaluation, not per partition
    # (each run's page shows its own). See docs/ui.md.
    return dg.AssetCheckSpec(name, asset=asset, blocking=blocking, description=CHECK_DESCRIPTIONS[name])


# Shown in the UI next to each check (Checks tab, run page); docs/ui.md has the same table.
CHECK_DESCRIPTIONS = {
    "shard_limits_respected": "Every shard is within the model's records-per-job and bytes-per-file limits; "
    "shards under the minimum records per job are listed in on_demand_shards (answered on-demand).",
    "within_budget": "The estimated cost (every record at max_tokens) is within the batch's budget_usd (no budget: "
    "passes). Blocking: when it fails, no Bedrock job is submitted for the partition.",
    "every_row_answered_once": "One result row per input row, and none missing (no output line at all).",
    "error_rate_below_threshold": "Records Bedrock answered with an error / input rows is at most the batch's "
    "max_error_rate (default 0.05).",
    "no_duplicate_answers": "No request answered successfully twice by this partition's attempts, and no output line "
    "for an unknown record.",
    "answers_match_requests": "Every answered row carries the answer to the request its row makes now "
    "(re-rendered under the current spec and digested): a stale or wrong answer cannot pass.",
}
BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)


def _preview_text(name: str, dtype: pl.DataType) -> pl.Expr:
    """A column as display text, for any dtype: lists, arrays and structs as JSON (a plain
    cast to String refuses them), binary as hex, everything else (numbers, decimals, dates,
    datetimes with their zone, booleans, nulls) by polars' own string cast."""
    col = pl.col(name)
    if dtype == pl.String:
        return col
    if dtype == pl.Binary:
        return pl.lit("0x") + col.bin.encode("hex")
    if dtype.is_nested() and not _holds_binary(dtype):
        # json_encode is defined on structs: wrap the value in a one-field struct and cut the
        # wrapper off again (a struct column is encoded as it is).
        if isinstance(dtype, pl.Struct):
            return col.struct.json_encode()
        return pl.struct(col.alias("v")).struct.json_encode().str.strip_prefix('{"v":').str.strip_suffix("}")
    if dtype.is_nested():
        raise TypeError("polars cannot JSON-encode binary inside a list or struct (it panics)")
    return col.cast(pl.String)


def _holds_binary(dtype: pl.DataType) -> bool:
    if isinstance(dtype, pl.Struct):
        return any(_holds_binary(f.dtype) for f in dtype.fields)
    if isinstance(dtype, (pl.List, pl.Array)):
        return _holds_binary(dtype.inner)
    return dtype == pl.Binary


def _preview(df: pl.DataFrame, rows: int = 5, width: int = 80, max_columns: int = 30) -> dg.MetadataValue:
    """A markdown preview with long cells cut, so a 1 kB prompt does not flood the UI, and at most
    `max_columns` columns (a 2,000-column row would not be readable anyway; `columns` lists all).
    Never fails on a column type: one polars cannot render as text is shown by Python's repr."""
    head = df.head(rows).select(df.columns[:max_columns])
    texts = []
    for name, dtype in head.schema.items():
        try:
            texts.append(head.select(_preview_text(name, dtype).str.slice(0, width)).to_series().alias(name))
        except (pl.exceptions.PolarsError, TypeError):  # a type polars cannot render as text
            texts.append(pl.Series(name, [None if v is None else repr(v)[:width] for v in head[name].to_list()], pl.String))
    cols = head.columns
    lines = ["| " + " | ".join(c.replace("|", "\\|") for c in cols) + " |", "|" + "---|" * len(cols)]
    for row in pl.DataFrame(texts).iter_rows() if texts else []:
        cells = ["" if v is None else str(v).replace("|", "\\|").replace("\n", " ") for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    if df.width > max_columns:
        lines.append(f"\n({df.width - max_columns} more columns not shown)")
    return dg.MetadataValue.md("\n".join(lines))


@contextlib.contextmanager
def bad_input_fails_cleanly():
    """Bad input (spec, model, file, row) fails the step with its own message and no retry:
    re-running cannot fix it, and the message already names the file, row and column."""
    try:
        yield
    except (SpecError, providers.ProviderError, pricing.PricingError, records.RecordsError, shards.InputValidationError,
            PartitionKeyError, job_options.JobOptionsError) as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None


def console_url(region: str, job_arn: str) -> str:
    job_id = jobs.job_id_from_arn(job_arn)
    return f"https://{region}.console.aws.amazon.com/bedrock/home?region={region}#/batch-inference/{job_id}"


def _write_records(spec, input_name: str, layout, opts: dict, s3) -> str:
    """Stream the input into records.parquet (ids assigned) without holding it in memory: written
    to a local temporary file in bounded memory, then uploaded. A bad file raises RecordsError
    (file, line, column, fix) before anything is uploaded."""
    records_uri = layout.uri(layout.records_key)
    compression = records.records_compression(records_uri)
    with tempfile.TemporaryDirectory(prefix="bedrock-records-") as tmp:
        local = Path(tmp) / "records.parquet"
        if spec.is_hf:
            records.write_hf_records(
                spec.hf_dataset, input_name, str(local), config=spec.hf_config, max_rows=spec.max_rows,
                id_column=spec.id_column, compression=compression,
            )
            source = f"hf://{spec.hf_dataset}[{input_name}]"
        else:
            source = layout.uri(layout.input_key)
            # The same rule and words as `bedrock-assets add` and the sensor, for a partition
            # added by hand (the UI, the API) with a name neither would have let through.
            problem = input_name_problem(input_name, layout.batch) or unsupported_type_problem(input_name)
            if problem:
                raise records.RecordsError(f"{source}: {problem}")
            kind = records.extension_of(input_name)
            try:
                s3.head_object(Bucket=layout.bucket, Key=layout.input_key)
            except botocore.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    raise records.RecordsError(f"{source}: no such file (was it deleted or renamed after it was registered?)") from None
                raise
            if kind == ".parquet":
                # Read in slices straight from S3 (never downloaded whole); `glob=False` inside
                # takes a name holding `?`, `*` or `[` as it is.
                path = source
            else:
                # CSV and JSONL are read whole anyway: a local copy lets the JSONL type inference
                # and, on a bad file, the diagnosis pass read it again without another download.
                path = str(Path(tmp) / f"input{kind}")
                s3.download_file(layout.bucket, layout.input_key, path)
            records.write_input_records(
                path, local, label=source, kind=kind, storage_options=opts, max_rows=spec.max_rows,
                id_column=spec.id_column, compression=compression,
            )
        s3.upload_file(str(local), layout.bucket, layout.records_key)
    return source


# --------------------------------------------------------------------------------------------
@dg.asset(
    partitions_def=inputs_partitions,
    backfill_policy=BACKFILL,
    group_name=GROUP,
    kinds={"s3", "polars"},
)
def raw_dataset(context: dg.AssetExecutionContext, storage: ProjectStorage) -> dg.MaterializeResult:
    """The input rows of one partition (an S3 file or a Hugging Face split), each with a stable
    `record_id`, stored as Parquet at `records/<partition>/records.parquet`."""
    partition = context.partition_key
    batch, name = split_partition_key(partition)
    layout = storage.layout(partition)
    opts = storage.polars_options()
    records_uri = layout.uri(layout.records_key)
    with bad_input_fails_cleanly():  # a bad file, or duplicate ids, surface here
        spec = get_spec(batch)
        source = _write_records(spec, name, layout, opts, storage.client())
    written = pl.scan_parquet(records_uri, storage_options=opts)
    rows = written.select(pl.len()).collect().item()
    context.log.info(f"{source}: {rows} rows -> {records_uri}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "source": source,
            "records_uri": dg.MetadataValue.path(records_uri),
            "columns": [f"{c}: {t}" for c, t in written.collect_schema().items()],
            "preview": _preview(written.head(5).collect()),
        }
    )


# --------------------------------------------------------------------------------------------
class ShardsConfig(dg.Config):
    """Run configuration of jsonl_shards."""

    fresh_answers: bool = pydantic.Field(
        default=False,
        description="Ask every request again (new jobs), even when the answer ledger already holds its answer. "
        "The batch spec's `fresh_answers` does the same for every run.",
    )


def _ledger_uris(s3, layout, spec) -> list[str]:
    """Every ledger file of the spec's model and invocation type (answers/<model key>/...)."""
    prefix = f"{ledger.ANSWERS_PREFIX}{ledger.model_key(spec.model_id, spec.invocation_type)}/"
    return [layout.uri(o["Key"]) for o in list_keys(s3, layout.bucket, prefix) if o["Key"].endswith(".parquet")]


def _cache_metadata(spec, provider, known: pl.LazyFrame, shard_set: shards.ShardSet) -> dict:
    """Rows, tokens and dollars the cache saved (the cached answers' own token counts at the
    model's batch price)."""
    cached = shard_set.requests.filter(pl.col("cached")).select(ledger.DIGEST).unique()
    if cached.height == 0:
        tokens_in = tokens_out = 0
    else:
        hits = ledger.best_answers(known.join(cached.lazy(), on=ledger.DIGEST, how="semi"))
        out_col = pl.col("output_tokens") if "output_tokens" in known.collect_schema().names() else pl.lit(0)
        tokens_in, tokens_out = hits.select(pl.col("input_tokens").fill_null(0).sum(), out_col.fill_null(0).sum()).collect().row(0)
    saved = pricing.actual_cost(spec.model_id, int(tokens_in or 0), int(tokens_out or 0), "batch")
    return {
        "cache_hit_rows": shard_set.cached,
        "duplicate_request_rows": shard_set.duplicates,
        "cache_saved_input_tokens": int(tokens_in or 0),
        "cache_saved_output_tokens": int(tokens_out or 0),
        "cache_saved_usd": round(saved.usd, 6) if saved.usd is not None else None,
    }


@dg.asset(
    partitions_def=inputs_partitions,
    backfill_policy=BACKFILL,
    group_name=GROUP,
    kinds={"s3", "polars", "bedrock"},
    deps=[raw_dataset],
    check_specs=[
        _check("shard_limits_respected", "jsonl_shards"),
        # Blocking: over budget, nothing downstream runs, so no job is created.
        _check("within_budget", "jsonl_shards", blocking=True),
    ],
)
def jsonl_shards(
    context: dg.AssetExecutionContext, config: ShardsConfig, storage: ProjectStorage, bedrock: BedrockBatch,
) -> dg.MaterializeResult:
    """The partition's records rendered as the model's request bodies, each with its request
    digest (`shards/<partition>/requests.parquet`); the requests the answer ledger does not
    answer yet are split into Bedrock-legal JSONL shards (record and byte limits) under
    `shards/<partition>/`. Every row is validated before anything is uploaded: bad input fails
    here, before any spend."""
    partition = context.partition_key
    batch, _ = split_partition_key(partition)
    with bad_input_fails_cleanly():
        spec = get_spec(batch)
        provider = providers.for_spec(spec)
        # Read (and validate) the price table now: a malformed override file fails here, before
        # any shard is uploaded, instead of at the estimate after the upload.
        prices = pricing.load_prices()
        # The deployment's job options (resource fields / env vars) and their merge with the
        # batch's: a bad KMS id, VPC or tag fails here, before any shard upload or job.
        job_options.for_shard(spec, bedrock.job_defaults(), partition, "shard-00000.jsonl", origin=str(specs_path()))
    layout = storage.layout(partition)
    opts = storage.polars_options()
    source = layout.uri(layout.input_key) if not spec.is_hf else f"hf://{spec.hf_dataset}[{layout.input_name}]"
    table = pl.scan_parquet(layout.uri(layout.records_key), storage_options=opts)
    s3 = storage.client()
    fresh = spec.fresh_answers or config.fresh_answers
    known = ledger.scan_ledger(_ledger_uris(s3, layout, spec), provider, opts)
    answered = ledger.reusable(known, fresh)  # a lazy scan: semi-joined to this input's requests
    with tempfile.TemporaryDirectory(prefix="bedrock-shards-") as tmp:
        # Every row is checked as it is rendered; a bad one raises here (file, row, column) and
        # leaves no shard behind, so nothing is uploaded and no job can exist.
        with bad_input_fails_cleanly():
            shard_set = shards.write_requests(table, spec, provider, tmp, source, answered=answered)
        infos = shard_set.shards
        for info in infos:
            s3.upload_file(str(Path(tmp) / info.name), layout.bucket, layout.shard_key(info.name))
        requests_local = Path(tmp) / "requests.parquet"
        shard_set.requests.write_parquet(requests_local, compression="zstd", compression_level=1)
        s3.upload_file(str(requests_local), layout.bucket, layout.requests_key)
        estimate = pricing.estimate_batch(spec, provider, infos, table=prices)
    cache = _cache_metadata(spec, provider, known, shard_set)
    budget = pricing.check_budget(estimate, spec.budget_usd)
    # A forced fresh run gets jobs of its own: the nonce goes into every job identity.
    nonce = f"-fresh-{context.run_id}" if fresh else ""
    shard_docs = [
        {**info.to_dict(), "key": layout.shard_key(info.name), "uri": layout.uri(layout.shard_key(info.name)), "nonce": nonce}
        for info in infos
    ]
    total = sum(s["records"] for s in shard_docs)
    put_json(
        s3,
        layout.bucket,
        layout.shards_manifest_key,
        {
            "partition": partition, "batch": batch, "model_id": spec.model_id, "records": total, "shards": shard_docs,
            "rendered_records": shard_set.requests.height, "cache": cache, "fresh_answers": fresh,
            "estimate": estimate.to_dict(),
            "budget": {"passed": budget.passed, "message": budget.message, "budget_usd": budget.budget_usd},
        },
    )
    over = [
        s["name"]
        for s in shard_docs
        if not (s["records"] <= spec.max_records_per_job and s["bytes"] <= spec.max_bytes_per_file)
    ]
    on_demand = [s["name"] for s in shard_docs if s["records"] < spec.on_demand_threshold]
    check = dg.AssetCheckResult(
        check_name="shard_limits_respected",
        passed=not over,
        metadata={
            "shards": len(shard_docs),
            "over_limits": over,
            "on_demand_shards": on_demand,  # under the minimum job size: answered on-demand
            "max_records_per_job": spec.max_records_per_job,
            "min_records_per_job": spec.min_records_per_job,
        },
    )
    budget_check = dg.AssetCheckResult(
        check_name="within_budget",
        passed=budget.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=budget.message,
        metadata={"budget_usd": budget.budget_usd, "estimated_usd": budget.estimated_usd},
    )
    context.log.info(
        f"{partition}: {shard_set.requests.height} records, {cache['cache_hit_rows']} answered from the ledger, "
        f"{cache['duplicate_request_rows']} duplicate request(s); {total} to send in {len(shard_docs)} shard(s); {budget.message}"
    )
    return dg.MaterializeResult(
        metadata={
            **estimate.metadata(),
            **cache,
            "fresh_answers": fresh,
            "dagster/row_count": shard_set.requests.height,
            "records_to_send": total,
            "shards": len(shard_docs),
            "bytes": sum(s["bytes"] for s in shard_docs),
            "model_id": spec.model_id,
            "manifest_uri": dg.MetadataValue.path(layout.uri(layout.shards_manifest_key)),
            "requests_uri": dg.MetadataValue.path(layout.uri(layout.requests_key)),
            "shard_table": dg.MetadataValue.md(
                "| shard | records | bytes | digest |\n|---|---|---|---|\n"
                + "\n".join(f"| {s['name']} | {s['records']} | {s['bytes']} | {s['digest'][:12]} |" for s in shard_docs)
            ),
        },
        check_results=[check, budget_check],
    )


# --------------------------------------------------------------------------------------------
@dg.op(ins={"start": dg.In(dg.Nothing)}, out=dg.DynamicOut(dict))
def plan_shard_jobs(context: dg.OpExecutionContext, storage: ProjectStorage):
    """One dynamic output per shard in the partition's shard manifest."""
    layout = storage.layout(context.partition_key)
    manifest = get_json(storage.client(), layout.bucket, layout.shards_manifest_key)
    if not manifest:
        raise dg.Failure(f"no shard manifest at {layout.uri(layout.shards_manifest_key)}; materialize jsonl_shards first")
    budget = manifest.get("budget") or {"passed": True}
    if not budget["passed"]:
        # The blocking check already stops a full run; this also stops a run of this asset alone.
        raise dg.Failure(description=f"not submitting any job: {budget['message']}", allow_retries=False)
    for shard in manifest["shards"]:
        key = shard["name"].removesuffix(".jsonl").replace("-", "_")
        yield dg.DynamicOutput(shard, mapping_key=key)
    if not manifest["shards"]:
        # Everything is answered already (the ledger): one empty item keeps the graph's fan-in,
        # which Dagster would skip with no items at all, so the asset still materializes.
        yield dg.DynamicOutput({"name": None, "records": 0}, mapping_key="nothing_to_send")


@dg.op(pool=BEDROCK_POOL)
def run_shard_job(context: dg.OpExecutionContext, bedrock: BedrockBatch, storage: ProjectStorage, shard: dict) -> dict:
    """Submit (or re-attach to) the shard's Bedrock batch job, wait for it, and see every record
    answered: follow-up jobs for missing/transiently failed records, on-demand calls for a
    remainder below Bedrock's minimum job size. Terminating the run stops the job in flight.

    Holds one `bedrock_batch` pool slot while a job is in flight, so the pool limit is the
    Bedrock quota of submitted + in-progress jobs."""
    partition = context.partition_key
    if shard.get("name") is None:
        return {"shard": None, "records": 0, "attempts": []}
    spec = get_spec(split_partition_key(partition)[0])
    with bad_input_fails_cleanly():  # checked by jsonl_shards already; a config changed since fails here
        options = job_options.for_shard(spec, bedrock.job_defaults(), partition, shard["name"], origin=str(specs_path()))
    layout = storage.layout(partition)
    # This shard's record ids and request digests: its answers go into the ledger under them.
    requests = (
        pl.scan_parquet(layout.uri(layout.requests_key), storage_options=storage.polars_options())
        .filter(pl.col("shard") == shard["name"])
        .select("record_id", ledger.DIGEST)
        .collect()
    )
    run = attempts.ShardRun(
        partition=partition,
        shard=shard,
        spec=spec,
        provider=providers.for_spec(spec),
        layout=layout,
        role_arn=bedrock.resolved_role_arn(),
        poll_seconds=bedrock.resolved_poll_seconds(),
        backoff_cap=bedrock.resolved_backoff_cap(),
        storage_options=storage.polars_options(),
        timeout_hours=spec.timeout_hours or bedrock.job_timeout_hours,
        log=context.log.info,
        warn=context.log.warning,
        requests=requests,
        job_options=options,
    )
    started = time.time()
    try:
        record = attempts.drive_shard(run, bedrock.client(), bedrock.runtime_client(), storage.client())
    except attempts.ShardJobFailed as exc:
        raise dg.Failure(description=str(exc), metadata={"shard": shard["name"]}) from None
    record["waited_seconds"] = round(time.time() - started, 1)
    return record


def _job_rows(shard_jobs: list[dict], region: str) -> str:
    rows = []
    for shard in shard_jobs:
        for a in shard["attempts"]:
            if a["route"] == "batch":
                link = f"[{jobs.job_id_from_arn(a['job_arn'])}]({console_url(region, a['job_arn'])})"
            else:
                link = "on-demand"
            rows.append(
                f"| {shard['shard']} | {a['attempt']} | {link} | {a.get('status')} | {a.get('success_records', a.get('records'))} "
                f"| {a.get('error_records', 0)} | {a.get('input_tokens', '')} | {a.get('output_tokens', '')} "
                f"| {a.get('queued_seconds', '')}{' STUCK' if a.get('stuck') else ''} |"
            )
    header = "| shard | attempt | job | status | ok | errors | input tokens | output tokens | queued s |\n|---|---|---|---|---|---|---|---|---|\n"
    return header + "\n".join(rows)


@dg.op
def summarize_shard_jobs(context: dg.OpExecutionContext, bedrock: BedrockBatch, storage: ProjectStorage, shard_jobs: list[dict]) -> dg.MaterializeResult:
    """Write the partition's job summary and report every job (and follow-up) in the UI."""
    layout = storage.layout(context.partition_key)
    s3 = storage.client()
    shard_jobs = sorted((j for j in shard_jobs if j["shard"] is not None), key=lambda j: j["shard"])
    batch_attempts = [a for shard in shard_jobs for a in shard["attempts"] if a["route"] == "batch"]
    for a in batch_attempts:
        # Bedrock's own totals; embedding manifests may lack outputTokenCount (docs/bedrock-facts.md §4).
        manifest = get_json(s3, layout.bucket, a["output_prefix"] + "manifest.json.out") or {}
        a["input_tokens"] = manifest.get("inputTokenCount", 0)
        a["output_tokens"] = manifest.get("outputTokenCount", 0)
    put_json(s3, layout.bucket, layout.jobs_summary_key, {"partition": context.partition_key, "shards": shard_jobs})
    stuck = [a["job_name"] for a in batch_attempts if a.get("stuck")]
    return dg.MaterializeResult(
        metadata={
            "shards": len(shard_jobs),
            "jobs": len(batch_attempts),
            "jobs_created": sum(1 for a in batch_attempts if a["created_by_this_step"]),
            "follow_up_jobs": sum(1 for a in batch_attempts if a["attempt"] > 1),
            "on_demand_records": sum(a.get("records", 0) for s in shard_jobs for a in s["attempts"] if a["route"] == "on-demand"),
            "stuck_jobs": stuck,
            # Output lines parsed in full instead of answer-only (results.ParseStats): should be 0.
            "slow_path_files": sum(int(a.get("slow_path_files") or 0) for a in batch_attempts),
            "slow_path_lines": sum(int(a.get("slow_path_lines") or 0) for a in batch_attempts),
            "input_tokens": sum(a["input_tokens"] for a in batch_attempts),
            "output_tokens": sum(a["output_tokens"] for a in batch_attempts),
            "job_table": dg.MetadataValue.md(_job_rows(shard_jobs, bedrock.resolved_region())),
            "jobs_uri": dg.MetadataValue.path(layout.uri(layout.jobs_summary_key)),
        }
    )


@dg.graph_asset(
    partitions_def=inputs_partitions,
    backfill_policy=BACKFILL,
    group_name=GROUP,
    kinds={"bedrock", "s3"},
    ins={"jsonl_shards": dg.AssetIn(dagster_type=dg.Nothing)},
)
def batch_job_outputs(jsonl_shards):
    """One Amazon Bedrock batch inference job per shard, submitted exactly once and waited on.
    Outputs land under `outputs/<partition>/<shard>/<jobId>/`; the job list is in
    `jobs/<partition>/jobs.json`."""
    return summarize_shard_jobs(plan_shard_jobs(start=jsonl_shards).map(run_shard_job).collect())


# --------------------------------------------------------------------------------------------
@dg.asset(
    partitions_def=inputs_partitions,
    backfill_policy=BACKFILL,
    group_name=GROUP,
    kinds={"s3", "polars"},
    deps=[batch_job_outputs],
    check_specs=[
        _check("every_row_answered_once", "joined_results"),
        _check("error_rate_below_threshold", "joined_results"),
        _check("no_duplicate_answers", "joined_results"),
        _check("answers_match_requests", "joined_results"),
    ],
)
def joined_results(context: dg.AssetExecutionContext, storage: ProjectStorage) -> dg.MaterializeResult:
    """Every input row with its model answer (or embedding), token counts, and the error for
    records that failed: each row's request (requests.parquet) joined to that request's answer
    in the answer ledger, written to `results/<partition>/results.parquet`. `answered_by` says
    how: `batch`, `on-demand`, or `cache` (the ledger already held the answer)."""
    partition = context.partition_key
    batch, _ = split_partition_key(partition)
    spec = get_spec(batch)
    provider = providers.for_spec(spec)
    layout = storage.layout(partition)
    s3 = storage.client()
    opts = storage.polars_options()
    summary = get_json(s3, layout.bucket, layout.jobs_summary_key)
    if not summary:
        raise dg.Failure(f"no job summary at {layout.uri(layout.jobs_summary_key)}; materialize batch_job_outputs first")
    attempts_run = [a for shard in summary["shards"] for a in shard["attempts"]]
    with tempfile.TemporaryDirectory(prefix="bedrock-results-") as tmp:
        local = Path(tmp) / "results.parquet"
        # The records' encoded columns are copied into results.parquet, which needs them on disk.
        records_local = Path(tmp) / "records.parquet"
        s3.download_file(layout.bucket, layout.records_key, str(records_local))
        requests = pl.read_parquet(layout.uri(layout.requests_key), storage_options=opts)
        ledger_uris = _ledger_uris(s3, layout, spec)
        asked = requests.select(ledger.DIGEST).unique().lazy()
        answers = ledger.best_answers(
            ledger.scan_ledger(ledger_uris, provider, opts).join(asked, on=ledger.DIGEST, how="semi")
        ).collect()
        stats = results.write_answers(
            records_local, requests, answers, provider, local, skip_empty=spec.skip_empty, compression=spec.results_compression,
        )
        raw_rows = sum(parquet_splice.row_counts(records_local))
        preview = pl.read_parquet(local, n_rows=5)
        written = pl.scan_parquet(local)
        # The request each answered row was joined to, against the request its row makes now
        # (records.parquet under the current spec): a stale requests.parquet or a wrong join
        # would show here, not as green checks over wrong answers.
        current = shards.request_digests(pl.scan_parquet(records_local), spec, provider)
        mismatch = (
            written.select("record_id", "request_digest", "status")
            .filter(pl.col("status").is_in([results.STATUS_SUCCEEDED, results.STATUS_FAILED]))
            .join(current.lazy().rename({ledger.DIGEST: "__now"}), on="record_id", how="left")
            .filter(pl.col("__now").is_null() | (pl.col("request_digest") != pl.col("__now")) | pl.col("request_digest").is_null())
            .select("record_id").collect()
        )
        by = dict(written.group_by("answered_by").len().collect().iter_rows())
        s3.upload_file(str(local), layout.bucket, layout.results_key)
    # Paid twice: a request answered successfully more than once by this partition's attempts.
    # (the files this partition's attempts wrote, among those the ledger listing found)
    listed = set(ledger_uris)
    own = [u for u in (layout.uri(a["ledger_key"]) for a in attempts_run if a.get("ledger_key")) if u in listed]
    ok = ledger.scan_ledger(own, provider, opts).filter(pl.col("error_code").is_null() & pl.col("error_message").is_null())
    duplicates = int(ok.select(pl.len() - pl.col(ledger.DIGEST).n_unique()).collect().item()) if own else 0
    orphans = sum(int(a.get("orphans") or 0) for a in attempts_run)
    batch_in = sum(int(a.get("input_tokens") or 0) for a in attempts_run if a["route"] == "batch")
    batch_out = sum(int(a.get("output_tokens") or 0) for a in attempts_run if a["route"] == "batch")
    od_in = sum(int(a.get("input_tokens") or 0) for a in attempts_run if a["route"] == "on-demand")
    od_out = sum(int(a.get("output_tokens") or 0) for a in attempts_run if a["route"] == "on-demand")
    answered = stats.succeeded + stats.failed
    error_rate = stats.failed / raw_rows if raw_rows else 0.0
    checks = [
        dg.AssetCheckResult(
            check_name="every_row_answered_once",
            passed=stats.rows == raw_rows and stats.missing == 0,
            metadata={"input_rows": raw_rows, "result_rows": stats.rows, "missing": stats.missing,
                      "answered": answered, "skipped": stats.skipped},
        ),
        dg.AssetCheckResult(
            check_name="error_rate_below_threshold",
            passed=error_rate <= spec.max_error_rate,
            metadata={"error_rate": round(error_rate, 6), "threshold": spec.max_error_rate, "failed": stats.failed},
        ),
        dg.AssetCheckResult(
            check_name="no_duplicate_answers",
            passed=duplicates == 0 and orphans == 0,
            metadata={"duplicate_answers": duplicates, "orphan_output_lines": orphans},
        ),
        dg.AssetCheckResult(
            check_name="answers_match_requests",
            passed=mismatch.height == 0,
            metadata={"answered_rows": answered, "mismatched_rows": mismatch.height,
                      "mismatched_record_ids": mismatch["record_id"].head(10).to_list()},
        ),
    ]
    context.log.info(f"{partition}: {stats.rows} rows, {stats.succeeded} answered, {stats.failed} errors; by {by}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": stats.rows,
            "succeeded": stats.succeeded,
            "failed": stats.failed,
            "skipped": stats.skipped,
            "missing": stats.missing,
            "answered_by_batch": int(by.get("batch", 0)),
            "answered_by_on_demand": int(by.get("on-demand", 0)),
            "answered_by_cache": int(by.get("cache", 0)),
            "slow_path_files": sum(int(a.get("slow_path_files") or 0) for a in attempts_run),
            "slow_path_lines": sum(int(a.get("slow_path_lines") or 0) for a in attempts_run),
            "input_tokens": batch_in + od_in,
            "output_tokens": batch_out + od_out,
            **pricing.actual_cost_metadata(spec.model_id, batch_in, batch_out, od_in, od_out),
            "results_uri": dg.MetadataValue.path(layout.uri(layout.results_key)),
            "preview": _preview(preview.drop("embedding", strict=False)),
        },
        check_results=checks,
    )


all_assets = [raw_dataset, jsonl_shards, batch_job_outputs, joined_results]
