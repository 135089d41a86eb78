"""One shard's road to a full answer: the batch job, follow-up jobs, and the on-demand remainder.

Every decision here is derived from Bedrock's state and the job outputs already in S3, never
from local memory, so a step killed at any line and run again replays the same decisions and
re-attaches to the same jobs (never pay twice):

0. a shard with fewer records than `spec.on_demand_below` (default: Bedrock's minimum job size)
   is answered on-demand from the start, without a job;
1. attempt k's job is looked up by its exact name (`...-a<k>`) and created only if absent;
2. a job that ended Failed in an *earlier* run, or Expired (never started), is retried as
   attempt k+1 with the same records; one that Failed in this run fails the step with its message;
3. after a Completed / PartiallyCompleted / Stopped job, records with no output line or with a
   transient error (throttling, 5xx, timeouts) go into attempt k+1 — a follow-up job holding just
   those records, or, when they are fewer than Bedrock's minimum records per job, on-demand
   InvokeModel/Converse calls; permanent errors (a 400: the body is wrong) are not retried;
4. at most `spec.max_record_attempts` attempts per record;
5. every finished attempt's answers (job outputs, or on-demand answers) go into the answer ledger
   under their request digests (ledger.py), one immutable file per attempt: that is where
   joined_results and later runs' cache read them.
"""

from __future__ import annotations

import contextlib
import dataclasses
from concurrent.futures import ThreadPoolExecutor
import json
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import botocore.exceptions
import polars as pl

from bedrock_assets import job_options, jobs, ledger, results, shards
from bedrock_assets.storage import PartitionLayout, list_keys, put_json

Log = Callable[[str], None]


class ShardJobFailed(Exception):
    """A Bedrock job ended Failed in this run: the message is Bedrock's, plus shard and ARN."""


@dataclasses.dataclass
class ShardRun:
    partition: str
    shard: dict  # an entry of shards/<partition>/manifest.json
    spec: Any  # BatchSpec
    provider: Any  # providers.Provider bound to the spec
    layout: PartitionLayout
    role_arn: str
    poll_seconds: float
    backoff_cap: float
    storage_options: dict
    timeout_hours: int = 24
    log: Log = print
    warn: Log = print
    # record_id, request_digest of this shard's records (requests.parquet, jsonl_shards)
    requests: pl.DataFrame | None = None
    # KMS key, VPC and tags of this shard's jobs (job_options.for_shard); None: the project's tags only.
    job_options: job_options.JobOptions | None = None

    @property
    def model_key(self) -> str:
        return ledger.model_key(self.spec.model_id, self.spec.invocation_type)

    @property
    def name(self) -> str:
        return self.shard["name"]


@contextlib.contextmanager
def interrupts_deferred():
    """Hold off SIGINT/SIGTERM while we stop a job: a termination usually arrives as several
    signals (run worker and step), and the second must not cut short the Stop call we owe."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _record_ids_of_lines(path: str | Path) -> pl.LazyFrame:
    """Each line of a shard file with its record id; lines kept byte-for-byte (no re-encoding)."""
    lines = pl.scan_csv(
        path, has_header=False, new_columns=["line"], separator="\x1f", quote_char=None, schema={"line": pl.String}
    )
    # The id is the line's first JSON string; decoding it (not cutting at the next quote) reads ids
    # with escaped quotes or backslashes right, so their answers are found and never asked again.
    token = pl.col("line").str.extract(r'^\{"recordId":("(?:[^"\\]|\\.)*")', 1)
    record_id = pl.concat_str(pl.lit('{"r":'), token, pl.lit("}")).str.json_decode(pl.Struct({"r": pl.String})).struct.field("r")
    return lines.with_columns(record_id.alias("record_id"))


def outstanding(input_file: str, outputs: pl.DataFrame) -> tuple[list[str], int]:
    """Record ids of `input_file` still owed an answer (no line, or a transient error) and the
    number of permanent errors, given the attempt's parsed output lines (results.collect_outputs:
    answers-only decoding, and a line that is not JSON raises OutputParseError naming its file
    and line)."""
    asked = _record_ids_of_lines(input_file).select("record_id")
    outs = outputs.lazy().select("record_id", "error_code")
    # A record answered in any line is done; else its best line decides (transient vs permanent).
    per_record = outs.group_by("record_id").agg(
        pl.col("error_code").is_null().any().alias("ok"),
        pl.col("error_code").cast(pl.String).drop_nulls().first().alias("code"),
    )
    joined = asked.join(per_record, on="record_id", how="left").collect()
    transient = ledger.is_transient(pl.col("code"))
    todo = joined.filter(pl.col("ok").is_null() | (~pl.col("ok") & transient))
    permanent = joined.filter((pl.col("ok") == False) & ~transient).height  # noqa: E712
    return todo.get_column("record_id").sort().to_list(), permanent


def write_subset(input_file: str, record_ids: list[str], dest: Path) -> tuple[int, int, str]:
    """Copy the lines of `record_ids` from a shard file (byte-exact, input order) -> (records, bytes, digest)."""
    wanted = pl.Series("record_id", record_ids, dtype=pl.String)
    _record_ids_of_lines(input_file).filter(pl.col("record_id").is_in(wanted.implode())).select("line").sink_csv(
        dest, include_header=False, quote_style="never"
    )
    data = dest.read_bytes()
    return data.count(b"\n"), len(data), shards.digest_bytes(data)


def _output_uris(s3: Any, layout: PartitionLayout, prefix: str) -> list[str]:
    return [layout.uri(o["Key"]) for o in list_keys(s3, layout.bucket, prefix) if o["Key"].endswith(".out")]


# On-demand calls in flight at once per shard step: enough to finish a sub-minimum remainder in
# seconds, few enough to stay well under the runtime's per-model request quota.
ON_DEMAND_CONCURRENCY = 4
def _split_line(text: str) -> tuple[str, str]:
    """(record id, the modelInput's JSON text exactly as in the shard) of a line we wrote:
    `{"recordId":<string>,"modelInput":<body>}`. Inside the id string every quote is escaped,
    so the first `,"modelInput":` is the key."""
    cut = text.index(shards.MODEL_INPUT_KEY)
    return json.loads(text[:cut] + "}")["recordId"], text[cut + len(shards.MODEL_INPUT_KEY) : text.rindex("}")]


def _invoke_on_demand(runtime: Any, run: ShardRun, record_id: str, body: str, sleep: Callable[[float], None]) -> dict:
    """One record through bedrock-runtime (InvokeModel gets the shard's body bytes unchanged, so
    the answer is to exactly the request its digest names), answered in the batch output line
    format. Throttling is retried with jittered backoff; any other error becomes the record's
    error line (transient codes are asked again by a later attempt or run, never cached)."""
    backoff = jobs.Backoff(cap=run.backoff_cap)
    while True:
        try:
            if run.spec.invocation_type == "Converse":
                out = runtime.converse(modelId=run.spec.model_id, **json.loads(body))
                out.pop("ResponseMetadata", None)
            else:
                response = runtime.invoke_model(
                    modelId=run.spec.model_id, body=body.encode("utf-8"), contentType="application/json",
                    accept="application/json",
                )
                out = json.loads(response["body"].read())
            return {"recordId": record_id, "modelOutput": out}
        except runtime.exceptions.ThrottlingException:
            sleep(backoff.next_delay())
        except runtime.exceptions.ValidationException as exc:
            msg = exc.response.get("Error", {}).get("Message", str(exc))
            return {"recordId": record_id, "error": {"errorCode": 400, "errorMessage": msg}}
        except botocore.exceptions.ClientError as exc:
            err = exc.response.get("Error", {})
            return {"recordId": record_id, "error": {"errorCode": err.get("Code", "ClientError"), "errorMessage": err.get("Message", str(exc))}}


def _write_ledger(s3: Any, run: ShardRun, file: ledger.LedgerFile, outputs: pl.DataFrame, *, answered_by: ledger.AnsweredBy,
                  job_arn: str | None) -> tuple[int, int]:
    """Store one attempt's parsed answers in the ledger under their request digests, once: a
    re-run finds the file and leaves it. Returns (rows stored, orphan lines)."""
    if list(list_keys(s3, run.layout.bucket, file.key)):
        return 0, 0
    requests = run.requests if run.requests is not None else pl.DataFrame(schema={"record_id": pl.String, ledger.DIGEST: pl.String})
    rows, orphans = ledger.ledger_rows(outputs, requests, run.provider, answered_by=answered_by, job_arn=job_arn,
                                       attempt=file.attempt, partition=run.partition)
    with tempfile.TemporaryDirectory(prefix="bedrock-ledger-") as tmp:
        local = Path(tmp) / "answers.parquet"
        rows.write_parquet(local, compression="zstd", compression_level=1)
        s3.upload_file(str(local), run.layout.bucket, file.key)
    run.log(f"{run.name}: {rows.height} answer(s) of attempt {file.attempt} stored in the ledger -> {run.layout.uri(file.key)}")
    return rows.height, orphans


def answer_on_demand(runtime: Any, s3: Any, run: ShardRun, input_file: Path, attempt: int, sleep=time.sleep) -> dict:
    """Answer a small set of records with InvokeModel/Converse and store the answers in the
    ledger, under the digests of exactly these requests: a re-run finds the file and pays
    nothing again, a changed request gets a new file; a crash mid-way repeats at most these
    (fewer than on_demand_below) calls. Returns the attempt's entry for the job record."""
    raw = input_file.read_bytes()
    # JSONL splits on \n only: a body may hold U+2028 and other Unicode line breaks unescaped.
    lines = [_split_line(t) for t in raw.decode("utf-8").split("\n") if t]
    ids = {record_id for record_id, _ in lines}
    asked = run.requests.filter(pl.col("record_id").is_in(list(ids))) if run.requests is not None else None
    digests = sorted(asked[ledger.DIGEST].to_list()) if asked is not None else []
    # Named by exactly what is asked (and by the fresh-run nonce, so a forced fresh run asks again).
    what = "\n".join(digests) if digests else raw.decode("utf-8")
    source = "on-demand-" + shards.digest_bytes(f"{run.shard.get('nonce', '')}\n{what}".encode())[:16]
    file = ledger.LedgerFile(model_key=run.model_key, partition=run.layout.folder, shard=run.name, attempt=attempt, source=source)
    entry = {"attempt": attempt, "route": "on-demand", "records": len(lines), "status": "Completed", "ledger_key": file.key}
    if list(list_keys(s3, run.layout.bucket, file.key)):
        run.log(f"{run.name}: on-demand answers for attempt {attempt} already in the ledger; not calling again")
        return entry
    with ThreadPoolExecutor(max_workers=ON_DEMAND_CONCURRENCY, thread_name_prefix="on-demand") as pool:
        answered = list(pool.map(lambda line: _invoke_on_demand(runtime, run, line[0], line[1], sleep), lines))
    with tempfile.TemporaryDirectory(prefix="bedrock-on-demand-") as tmp:
        out = Path(tmp) / f"{run.name}.out"
        out.write_text("".join(json.dumps(a, ensure_ascii=False, separators=(",", ":")) + "\n" for a in answered), encoding="utf-8")
        outputs = results.collect_outputs([str(out)], run.provider)
    stored, orphans = _write_ledger(s3, run, file, outputs, answered_by=ledger.AnsweredBy.ON_DEMAND, job_arn=None)
    run.log(f"{run.name}: {len(lines)} record(s) answered on demand (attempt {attempt})")
    entry.update(stored=stored, orphans=orphans,
                 input_tokens=int(outputs["input_tokens"].fill_null(0).sum()) if "input_tokens" in outputs.columns else 0,
                 output_tokens=int(outputs["output_tokens"].fill_null(0).sum()) if "output_tokens" in outputs.columns else 0)
    return entry


def drive_shard(run: ShardRun, client: Any, runtime: Any, s3: Any) -> dict:
    """Run the shard to completion (see module doc) and return its job record (also in S3)."""
    layout = run.layout
    base = jobs.JobIdentity(
        run.partition, run.name, run.shard["digest"] + run.shard.get("nonce", ""), model_id=run.spec.model_id,
        invocation_type=run.spec.invocation_type, scope=layout.bucket,
    )
    record: dict[str, Any] = {"shard": run.name, "records": run.shard["records"], "attempts": []}
    work = Path(tempfile.mkdtemp(prefix="bedrock-attempts-"))
    input_uri, input_key = run.shard["uri"], run.shard["key"]
    input_file = work / "a1.jsonl"
    s3.download_file(layout.bucket, input_key, str(input_file))
    input_digest = base.shard_digest
    attempt, failed_retries = 1, 0
    n = run.shard["records"]
    options = run.job_options or job_options.project_only(run.partition, run.name)
    while True:
        if n < run.spec.on_demand_threshold:
            # Under the minimum job size (a small input, or the remainder of a shard): on-demand.
            record["attempts"].append(answer_on_demand(runtime, s3, run, input_file, attempt))
            put_json(s3, layout.bucket, layout.job_record_key(run.name), record)
            break
        identity = dataclasses.replace(base, attempt=attempt)
        entry: dict[str, Any] | None = None
        # One guard from the lookup to the job's end: a run terminated while the job is being
        # created, recorded or waited on must stop it and say so (stop_on_cancel).
        try:
            existing = [j for j in jobs.list_jobs_named(client, identity.job_name) if j["jobName"] == identity.job_name]
            if existing:
                arn, created = existing[0]["jobArn"], False
                status = existing[0].get("status")
                what = "reusing the outputs of completed" if status in jobs.TERMINAL else "re-attaching to existing"
                run.log(f"{run.name}: {what} job {identity.job_name} ({status}); no new job created")
                # Job options are not part of the job's identity (they do not change answers), so a
                # job created before they were changed is reused as it is; say so.
                changed = options.differences(existing[0])
                if changed:
                    run.warn(f"{run.name}: job {identity.job_name} was created with other job options "
                             f"({'; '.join(changed)}); reusing it, since job options do not change answers")
            else:
                arn = jobs.create_job(
                    client, identity, client_request_token=identity.token_for_input(input_digest), log=run.log,
                    model_id=run.spec.model_id, role_arn=run.role_arn, input_uri=input_uri,
                    output_uri=layout.uri(layout.outputs_prefix(run.name)), timeout_hours=run.timeout_hours,
                    invocation_type=run.spec.invocation_type, options=options,
                    backoff=jobs.Backoff(cap=run.backoff_cap),
                )
                jobs.crash_point("after-create")
                created = True
                run.log(f"{run.name}: created job {identity.job_name} (attempt {attempt}) -> {arn}")
            entry = _batch_entry(run, attempt, identity.job_name, arn, created, input_uri)
            # What this step asked for; a re-attached job keeps the options it was created with.
            entry["job_options"] = options.summary()
            record["attempts"].append(entry)
            put_json(s3, layout.bucket, layout.job_record_key(run.name), record)
            outcome = jobs.wait_for_job(
                client, arn, poll_seconds=run.poll_seconds, log=run.log, warn=run.warn,
                stuck_after_seconds=run.spec.stuck_after_minutes * 60,
            )
        except BaseException as exc:
            if not isinstance(exc, Exception):  # run terminated: stop what we started, keep its output
                with interrupts_deferred():
                    stop_on_cancel(run, client, s3, record, entry, identity, attempt, input_uri)
            raise
        job = outcome.job
        entry.update(_job_counts(job), status=job.get("status"), message=job.get("message"),
                     queued_seconds=outcome.scheduled_seconds, stuck=outcome.stuck)
        put_json(s3, layout.bucket, layout.job_record_key(run.name), record)
        status = job.get("status")
        if status == "Failed":
            if created or failed_retries >= 1 or attempt >= run.spec.max_record_attempts:
                raise ShardJobFailed(f"shard {run.name}: Bedrock job {arn} ended Failed: {job.get('message') or 'no message'}")
            failed_retries += 1  # failed in an earlier run: the user re-ran it, so try once more
            attempt += 1
            continue
        if status == "Expired":
            if attempt >= run.spec.max_record_attempts:
                raise ShardJobFailed(f"shard {run.name}: Bedrock job {arn} Expired in the queue {attempt} time(s)")
            run.warn(f"{run.name}: job {identity.job_name} expired before it started; retrying as attempt {attempt + 1}")
            attempt += 1
            continue
        parse = results.ParseStats()
        outputs = results.collect_outputs(_output_uris(s3, layout, entry["output_prefix"]), run.provider,
                                          storage_options=run.storage_options, stats=parse)
        if parse.slow_files:
            # Correct but slower: the answer-only cut did not apply (docs/performance.md).
            run.warn(f"{run.name}: {parse.slow_lines} output line(s) in {len(parse.slow_files)} file(s) took the "
                     "full JSON parse instead of the answer-only cut (slower; see docs/performance.md)")
        entry.update(slow_path_files=len(parse.slow_files), slow_path_lines=parse.slow_lines)
        file = ledger.LedgerFile(model_key=run.model_key, partition=run.layout.folder, shard=run.name, attempt=attempt,
                                 source=jobs.job_id_from_arn(arn))
        stored, orphans = _write_ledger(s3, run, file, outputs, answered_by=ledger.AnsweredBy.BATCH, job_arn=arn)
        todo, permanent = outstanding(str(input_file), outputs)
        entry.update(outstanding_records=len(todo), permanent_errors=permanent, ledger_key=file.key, orphans=orphans)
        put_json(s3, layout.bucket, layout.job_record_key(run.name), record)
        if not todo:
            break
        if attempt >= run.spec.max_record_attempts:
            run.warn(f"{run.name}: {len(todo)} record(s) still unanswered after {attempt} attempt(s); giving up on them")
            break
        attempt += 1
        next_file = work / f"a{attempt}.jsonl"
        n, _, digest = write_subset(str(input_file), todo, next_file)
        input_file, input_digest = next_file, digest
        if n < run.spec.on_demand_threshold:
            continue  # answered on-demand at the top of the loop
        input_key = f"{layout.shards_prefix}retries/{run.name.removesuffix('.jsonl')}/a{attempt}/{run.name}"
        s3.upload_file(str(next_file), layout.bucket, input_key)
        input_uri = layout.uri(input_key)
        run.log(f"{run.name}: {n} record(s) need another try -> follow-up job, attempt {attempt}")
    return record


def _batch_entry(run: ShardRun, attempt: int, job_name: str, arn: str, created: bool, input_uri: str) -> dict:
    return {
        "attempt": attempt, "route": "batch", "job_name": job_name, "job_arn": arn,
        "created_by_this_step": created, "input_uri": input_uri, "status": "Submitted",
        "output_prefix": run.layout.outputs_prefix(run.name) + jobs.job_id_from_arn(arn) + "/",
    }


def stop_on_cancel(run: ShardRun, client: Any, s3: Any, record: dict, entry: dict | None,
                   identity: jobs.JobIdentity, attempt: int, input_uri: str) -> None:
    """The run was terminated while this attempt's job was created, recorded or waited on: stop
    it and record that, in this order:

    1. find the job if the interrupt came before it was recorded (mid-create: Bedrock may have
       accepted it; the lookup is by its exact name);
    2. write `stopped_by_cancellation` to the job record *before* asking Bedrock to stop, so
       anyone who sees the job Stopping or Stopped (the UI, a test, a re-run) finds it marked,
       even if this process is killed while the stop is awaited;
    3. stop it (StopModelInvocationJob, bounded wait) and write its final counts and status.
    """
    layout = run.layout
    if entry is None:
        found = [j for j in jobs.list_jobs_named(client, identity.job_name) if j["jobName"] == identity.job_name]
        if not found:
            return  # nothing was created: nothing to stop
        entry = _batch_entry(run, attempt, identity.job_name, found[0]["jobArn"], True, input_uri)
    if not any(a is entry for a in record["attempts"]):  # interrupted between building and appending it
        record["attempts"].append(entry)
    entry.update(stopped_by_cancellation=True, status="Stopping")
    put_json(s3, layout.bucket, layout.job_record_key(run.name), record)
    job = jobs.stop_job(client, entry["job_arn"], log=run.log)
    entry.update(_job_counts(job), status=job.get("status"))
    put_json(s3, layout.bucket, layout.job_record_key(run.name), record)



def _job_counts(job: dict) -> dict:
    return {
        "total_records": job.get("totalRecordCount"),
        "processed_records": job.get("processedRecordCount"),
        "success_records": job.get("successRecordCount"),
        "error_records": job.get("errorRecordCount"),
        "submit_time": str(job.get("submitTime")),
        "end_time": str(job.get("endTime")),
    }
