"""`bedrock-assets smoke`: check the emulator's assumptions against your own AWS account.

The emulator (docs/emulator.md, "Assumed behaviours and their sources") copies behaviours of real
Bedrock, some of them unconfirmed by any public source. Nobody on the project can run against
AWS, so this command lets a user do it once, cheaply: one 100-record job (Bedrock's minimum job
size) on a cheap model, built, submitted, polled and parsed by the same code the pipeline uses
(providers + shards.render_lines, storage.PartitionLayout, jobs.create_job / jobs.wait_for_job,
results.collect_outputs / read_manifests), plus a few free calls (Stop on the ended job, Create
with a made-up model id, Get of a made-up job). Every row of the table gets a line in the report:
checked (pass / fail, expected vs observed) or not observable by this run.

It states the maximum cost and what it will create, and starts only after an explicit `yes`
(typed, or `--yes`); without it, it exits 2 having created nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from bedrock_assets import settings
from bedrock_assets.cli_env import UserError

# Cheap models only: the price table has them, the emulator's catalog knows them, and a
# 100-record job on either costs well under a cent.
MODELS = {
    "amazon.titan-embed-text-v2:0": "batches:\n  smoke:\n    model_id: amazon.titan-embed-text-v2:0\n"
                                    "    text_column: text\n    params: {dimensions: 256}\n",
    "amazon.nova-micro-v1:0": "batches:\n  smoke:\n    model_id: amazon.nova-micro-v1:0\n"
                              "    prompt: \"Answer in one word: {text}\"\n    params: {max_tokens: 8}\n",
}
DEFAULT_MODEL = "amazon.titan-embed-text-v2:0"
RECORDS = 100  # Bedrock's minimum records per job (docs/bedrock-facts.md §3): the cheapest job there is
SHARD = "shard-00000.jsonl"
BAD_ID = "smoke-bad-body"
LS_ID = "smoke-u2028"
# A made-up id no catalog knows: Create must refuse it (no job, no cost).
UNKNOWN_MODEL = "amazon.smoke-check-no-such-model-v9:0"
ORDER = ["Submitted", "Validating", "Scheduled", "InProgress", "Completed"]
ENDED_OK = ("Completed", "PartiallyCompleted")
MANIFEST_FIELDS = ("totalRecordCount", "processedRecordCount", "successRecordCount", "errorRecordCount",
                   "inputTokenCount", "outputTokenCount")

# Every row of docs/emulator.md's table (same names; a test keeps the two in step), with what the
# emulator assumes and why this run cannot observe it when it cannot.
ASSUMPTIONS: dict[str, tuple[str, str | None]] = {
    "State sequence": ("statuses seen while polling follow Submitted → Validating → Scheduled → InProgress → Completed/PartiallyCompleted, never backwards", None),
    "Time in Submitted / Validating": ("both states exist (any duration; the emulator uses 0.05 s each)", None),
    "Record counts": ("all 0 (or absent) while Submitted/Validating; total = records sent from Scheduled on; processed never decreases; at the end processed = total, success + error = total", None),
    "Output layout": ("exactly `<output s3Uri>/<jobId>/<input file>.out` and `<output s3Uri>/<jobId>/manifest.json.out`", None),
    "Manifest fields": ("totalRecordCount, processedRecordCount, successRecordCount, errorRecordCount, inputTokenCount, outputTokenCount, equal to Get's counts", None),
    "Output line / error line": ("every line {recordId, modelInput, modelOutput} or {recordId, modelInput, error: {errorCode: <number>, errorMessage}}; the bad-body record is an error line", None),
    "Records without recordId": ("the service names it CALL0000001 (CALL + 7 digits)", None),
    "Partial output while InProgress": ("manifest.json.out only once the job has ended (.out files may appear earlier)", None),
    "Stop on an ended job": ("ValidationException (HTTP 400) whose message contains `State was: <status>`", None),
    "Stop mid-job": ("Stopping → Stopped, processed lines and a manifest kept", "stopping a running job costs money; this run only stops the ended job"),
    "modelId read back": ("base id → arn:aws:bedrock:<region>::foundation-model/<id>", None),
    "EventBridge events": ("one `Batch Inference Job State Change` event per status", "needs an EventBridge rule and a queue; not set up by this run"),
    "Unknown model id": ("CreateModelInvocationJob → ValidationException `The provided model identifier is invalid.`", None),
    "JSONL line splitting": ("a record with an unescaped U+2028 in its text is one record, answered", None),
    "Validating checks": ("a record whose modelInput is not a valid body becomes an error line; the job does not fail", None),
    "Quotas": ("100–50,000 records, 1 GB per file, 20 jobs in flight per model", "probing a limit needs jobs at the limit (cost); this run only shows a 100-record job is accepted"),
    "Idempotency": ("a repeated clientRequestToken returns the original job", None),
    "Error codes on the wire": ("ValidationException 400, ResourceNotFoundException 404 (Get of a job that does not exist)", None),
    "Waiters": ("Airflow-style status-path waiters work", "client-side only (botocore ships no waiter); nothing to observe on AWS"),
    "Default timeout, duplicate names, default `maxResults` / `sortOrder`": ("24 h; ConflictException; 100; Descending", "a duplicate name would create a second job if AWS allowed it (cost); this run passes its timeout explicitly"),
}


@dataclasses.dataclass
class Check:
    behaviour: str
    checked: bool
    expected: str
    observed: str = ""
    passed: bool | None = None  # None: not observable by this run

    @property
    def verdict(self) -> str:
        return "not observable" if not self.checked else ("pass" if self.passed else "FAIL")


# --- the records -----------------------------------------------------------------------------


def spec_for(model_id: str):
    from bedrock_assets.specs import parse_specs

    return parse_specs(MODELS[model_id], origin="smoke")["smoke"]


def build_lines(model_id: str, run_id: str) -> list[str]:
    """RECORDS JSONL lines rendered by the pipeline's own shard code, plus three made to observe
    something: a bad body (error line), an unescaped U+2028 (line splitting), no recordId."""
    import polars as pl

    from bedrock_assets.providers import for_spec
    from bedrock_assets.records import RECORD_ID
    from bedrock_assets.shards import render_lines

    spec = spec_for(model_id)
    n = RECORDS - 2  # + the bad body and the record without recordId
    ids = [f"smoke-{i:03d}" for i in range(n - 1)] + [LS_ID]
    # The run id in the text makes each run's shard (and so its job name and token) new.
    texts = [f"smoke check {run_id} record {i}: the quick brown fox" for i in range(n - 1)]
    texts.append(f"smoke check {run_id}: before\u2028after a line separator")
    lines = render_lines(pl.LazyFrame({RECORD_ID: ids, "text": texts}), spec, for_spec(spec)).collect()["line"].to_list()
    assert "\u2028" in lines[-1], "the U+2028 must reach the file unescaped"  # the point of the record
    body = json.loads(lines[0])["modelInput"]
    # Same body with a wrong type where the text goes: Validating does not look at bodies, the
    # model rejects it, so it must come back as an error line.
    bad = dict(body, inputText=12345) if "inputText" in body else dict(body, messages="not a list")
    lines.append(json.dumps({"recordId": BAD_ID, "modelInput": bad}, separators=(",", ":")))
    lines.append(json.dumps({"modelInput": body}, separators=(",", ":")))  # no recordId at all
    return lines


def max_cost(model_id: str, lines: list[str]):
    """Upper bound of the job's cost: tokens <= UTF-8 bytes of every modelInput (each token is at
    least one byte), every text answer at max_tokens, priced at the on-demand rate (batch is
    billed at most that). Twice that, for the (unexpected) case that the idempotent replay
    created a second job."""
    from bedrock_assets import pricing

    spec = spec_for(model_id)
    in_tokens = sum(len(json.dumps(json.loads(line)["modelInput"], ensure_ascii=False).encode()) for line in lines)
    out_tokens = 0 if "inputText" in json.loads(lines[0])["modelInput"] else len(lines) * int(spec.params["max_tokens"])
    one = pricing.estimate_cost(model_id, in_tokens, out_tokens, "on-demand")
    return one, None if one.usd is None else 2 * one.usd


# --- observing ---------------------------------------------------------------------------------


class WatchedClient:
    """The Bedrock client wait_for_job polls, passed through unchanged; it keeps every Get
    answer and, while InProgress, what the output folder holds (the real client does the work)."""

    def __init__(self, client: Any, on_get: Callable[[dict], None]) -> None:
        self._client, self._on_get = client, on_get

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_model_invocation_job(self, **kwargs: Any) -> dict:
        answer = self._client.get_model_invocation_job(**kwargs)
        self._on_get(answer)
        return answer


def _error(exc: Exception) -> dict:
    response = getattr(exc, "response", {}) or {}
    return {"code": response.get("Error", {}).get("Code", type(exc).__name__),
            "message": response.get("Error", {}).get("Message", str(exc)),
            "http": response.get("ResponseMetadata", {}).get("HTTPStatusCode")}


def observe(model_id: str, run_id: str, lines: list[str], log: Callable[[str], None], obs: dict | None = None) -> dict:
    """Run the job and the free calls; every raw observation goes into `obs` as soon as it is made
    (so a run that stops half-way still reports what it saw); evaluate() judges them."""
    import boto3
    import botocore.exceptions

    from bedrock_assets import jobs, results
    from bedrock_assets.providers import for_spec
    from bedrock_assets.storage import PartitionLayout, list_keys

    s3 = boto3.client("s3", region_name=settings.region())
    client = boto3.client("bedrock", region_name=settings.region())
    layout = PartitionLayout(settings.bucket(), f"smoke/{run_id}")
    data = ("\n".join(lines) + "\n").encode()
    key = layout.shard_key(SHARD)
    s3.put_object(Bucket=layout.bucket, Key=key, Body=data)
    log(f"uploaded {len(lines)} records to {layout.uri(key)}")
    identity = jobs.JobIdentity(layout.partition, SHARD, hashlib.sha256(data).hexdigest(), model_id=model_id, scope=layout.bucket)
    out_prefix = layout.outputs_prefix(SHARD)
    request = dict(model_id=model_id, role_arn=settings.role_arn(), input_uri=layout.uri(key),
                   output_uri=layout.uri(out_prefix), timeout_hours=24, log=log)
    obs = {} if obs is None else obs
    obs.update({"records_sent": len(lines), "bad_id": BAD_ID, "ls_id": LS_ID, "region": settings.region(),
                "model_id": model_id, "polls": [], "keys_while_running": []})
    arn = jobs.create_job(client, identity, **request)
    obs["job_arn"] = arn
    log(f"created job {identity.job_name} -> {arn}")
    # Same name and token again: Bedrock must hand back the same job (the pipeline's "never pay twice").
    try:
        obs["replay_arn"] = jobs.create_job(client, identity, **request)
    except botocore.exceptions.ClientError as exc:
        obs["replay_error"] = _error(exc)
    job_prefix = out_prefix + jobs.job_id_from_arn(arn) + "/"

    def on_get(job: dict) -> None:
        counts = {k: job.get(k) for k in ("totalRecordCount", "processedRecordCount", "successRecordCount", "errorRecordCount")}
        obs["polls"].append({"t": time.time(), "status": job.get("status"), **counts})
        if job.get("status") == "InProgress":
            obs["keys_while_running"].append(sorted(o["Key"] for o in list_keys(s3, layout.bucket, job_prefix)))

    log("waiting for the job: on AWS it may sit queued for minutes to hours (Ctrl-C leaves it running; "
        f"stop it with aws bedrock stop-model-invocation-job --job-identifier {arn})")
    outcome = jobs.wait_for_job(WatchedClient(client, on_get), arn, poll_seconds=settings.poll_seconds(), log=log)
    job = outcome.job
    obs["final"] = {k: job.get(k) for k in ("status", "message", "modelId", "totalRecordCount", "processedRecordCount",
                                            "successRecordCount", "errorRecordCount")}
    obs["output_prefix"] = layout.uri(out_prefix)
    obs["job_id"] = jobs.job_id_from_arn(arn)
    obs["input_file"] = SHARD
    obs["output_keys"] = sorted(o["Key"].removeprefix(out_prefix) for o in list_keys(s3, layout.bucket, out_prefix))
    manifest_key = job_prefix + results.MANIFEST_NAME
    if manifest_key.removeprefix(out_prefix) in obs["output_keys"]:
        raw = s3.get_object(Bucket=layout.bucket, Key=manifest_key)["Body"].read().decode()
        try:  # one JSON object; a pretty-printed one is still an object, which the comparison shows
            obs["manifest"] = json.loads(raw)
        except ValueError:
            obs["manifest"] = {"unparsable": raw[:500]}
        try:  # the pipeline's reader (newline-delimited JSON): a form it cannot read is a finding, not a crash
            totals = results.read_manifests([layout.uri(manifest_key)], storage_options=settings.polars_storage_options())
            obs["manifest_totals"] = dataclasses.asdict(totals)
        except Exception as exc:  # noqa: BLE001 - reported as observed
            obs["manifest_read_error"] = f"{type(exc).__name__}: {exc}"[:500]
    # The raw lines, split on "\n" only (as every reader in the project does), for the line format.
    raw_lines: list[dict] = []
    out_uris = []
    for name in obs["output_keys"]:
        if name.endswith(results.OUTPUT_SUFFIX) and not results.is_manifest(name):
            out_uris.append(layout.uri(out_prefix + name))
            text = s3.get_object(Bucket=layout.bucket, Key=out_prefix + name)["Body"].read().decode()
            for line in text.split("\n"):
                if line.strip():
                    try:
                        doc = json.loads(line)
                    except ValueError:  # e.g. a record cut at a U+2028: kept as a line of another form
                        raw_lines.append({"recordId": None, "keys": ["<not JSON>"], "error": None, "has_output": False})
                        continue
                    raw_lines.append({"recordId": doc.get("recordId"), "keys": sorted(doc),
                                      "error": doc.get("error"), "has_output": doc.get("modelOutput") is not None})
    obs["lines"] = raw_lines
    if out_uris:
        # The shard step's parser: every record must come out of it with an answer or an error.
        try:
            parsed = results.collect_outputs(out_uris, for_spec(spec_for(model_id)), storage_options=settings.polars_storage_options())
        except results.OutputParseError as exc:
            obs["parsed"] = {"error": str(exc)[:500]}
            parsed = None
        if parsed is not None:
            obs["parsed"] = {"rows": parsed.height, "answered": int(parsed["error_code"].is_null().sum()),
                             "errors": int(parsed["error_code"].is_not_null().sum())}
    # Free calls: Stop on the ended job, Create with an unknown model, Get of a job that does not exist.
    try:
        client.stop_model_invocation_job(jobIdentifier=arn)
        obs["stop_ended"] = {"code": None, "message": "accepted", "http": 200}
    except botocore.exceptions.ClientError as exc:
        obs["stop_ended"] = _error(exc)
    try:
        bogus = client.create_model_invocation_job(
            jobName=f"smoke-unknown-{run_id}"[:63], roleArn=settings.role_arn(), modelId=UNKNOWN_MODEL,
            inputDataConfig={"s3InputDataConfig": {"s3Uri": layout.uri(key)}},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": layout.uri(out_prefix)}})
        obs["unknown_model"] = {"code": None, "message": "accepted", "http": 200}
        client.stop_model_invocation_job(jobIdentifier=bogus["jobArn"])  # should never happen: do not let it run
    except botocore.exceptions.ClientError as exc:
        obs["unknown_model"] = _error(exc)
    missing = arn.rsplit("/", 1)[0] + "/zzzzzzzzzzzz"
    try:
        client.get_model_invocation_job(jobIdentifier=missing)
        obs["get_missing"] = {"code": None, "message": "found", "http": 200}
    except botocore.exceptions.ClientError as exc:
        obs["get_missing"] = _error(exc)
    return obs


# --- judging -----------------------------------------------------------------------------------


def _check(name: str, ok: bool, observed: str) -> Check:
    return Check(name, True, ASSUMPTIONS[name][0], observed, bool(ok))


def evaluate(obs: dict) -> list[Check]:
    """Observations -> one Check per row of the table, in the table's order (pure: no AWS)."""
    out: dict[str, Check] = {}
    polls = obs.get("polls", [])
    final = obs.get("final", {})
    statuses = [p["status"] for p in polls]
    seen = [s for i, s in enumerate(statuses) if i == 0 or s != statuses[i - 1]]
    rank = {s: i for i, s in enumerate(ORDER)} | {"PartiallyCompleted": ORDER.index("Completed")}
    ranks = [rank.get(s, -1) for s in seen]
    out["State sequence"] = _check(
        "State sequence", all(r >= 0 for r in ranks) and ranks == sorted(ranks) and bool(seen) and seen[-1] in ENDED_OK,
        (" → ".join(seen) or "no Get answered")
        + (f" (not seen, shorter than a poll: {', '.join(s for s in ORDER[:-1] if s not in seen)})" if set(ORDER[:-1]) - set(seen) else ""))
    queued = {s: sum(1 for x in statuses if x == s) for s in ("Submitted", "Validating")}
    out["Time in Submitted / Validating"] = _check(
        "Time in Submitted / Validating", True,
        "; ".join(f"{s}: seen in {n} poll(s)" for s, n in queued.items()) + " (a state not seen may have been shorter than the poll interval)")
    total = obs.get("records_sent")
    problems = []
    last_processed = -1
    for p in polls:
        if p["status"] in ("Submitted", "Validating") and any(p.get(k) for k in ("totalRecordCount", "processedRecordCount", "successRecordCount", "errorRecordCount")):
            problems.append(f"non-zero counts while {p['status']}: {p}")
        if p["status"] in ("Scheduled", "InProgress", *ENDED_OK) and p.get("totalRecordCount") != total:
            problems.append(f"total {p.get('totalRecordCount')} while {p['status']} (sent {total})")
        processed = p.get("processedRecordCount") or 0
        if processed < last_processed:
            problems.append(f"processed went down {last_processed} -> {processed}")
        last_processed = processed
    f = {k: final.get(k) for k in ("totalRecordCount", "processedRecordCount", "successRecordCount", "errorRecordCount")}
    if f["processedRecordCount"] != total or (f["successRecordCount"] or 0) + (f["errorRecordCount"] or 0) != total:
        problems.append(f"final counts {f} for {total} records")
    out["Record counts"] = _check("Record counts", not problems, "; ".join(problems) or f"final {f}; {len(polls)} polls consistent")
    job_id, input_file = obs.get("job_id"), obs.get("input_file")
    want = sorted([f"{job_id}/{input_file}.out", f"{job_id}/manifest.json.out"])
    keys = obs.get("output_keys", [])
    out["Output layout"] = _check("Output layout", keys == want, f"under {obs.get('output_prefix')}: {keys}")
    manifest = obs.get("manifest")
    if manifest is None:
        out["Manifest fields"] = _check("Manifest fields", False, "no manifest.json.out")
    else:
        missing = [k for k in MANIFEST_FIELDS if k not in manifest]
        counts_differ = [k for k in MANIFEST_FIELDS[:4] if manifest.get(k) != final.get(k)]
        unread = obs.get("manifest_read_error")
        out["Manifest fields"] = _check(
            "Manifest fields", not missing and not counts_differ and not unread,
            (f"the pipeline's manifest reader failed: {unread}; " if unread else "") +
            f"fields {sorted(manifest)}" + (f"; missing {missing}" if missing else "")
            + (f"; differ from Get: {counts_differ}" if counts_differ else "") + f"; values {manifest}")
    lines = obs.get("lines", [])
    bad_form = [ln for ln in lines if not ("recordId" in ln["keys"] and "modelInput" in ln["keys"]
                                            and (ln["has_output"] != (ln["error"] is not None)))]
    bad = [ln for ln in lines if ln["recordId"] == obs.get("bad_id")]
    err = bad[0]["error"] if bad else None
    err_ok = (isinstance(err, dict) and isinstance(err.get("errorCode"), (int, float)) and not isinstance(err.get("errorCode"), bool)
              and isinstance(err.get("errorMessage"), str))
    out["Output line / error line"] = _check(
        "Output line / error line", bool(lines) and not bad_form and err_ok,
        f"{len(lines)} lines; {len(bad_form)} of another form" + (f" (first: keys {bad_form[0]['keys']})" if bad_form else "")
        + f"; bad-body line error: {json.dumps(err) if bad else 'no line'}")
    named = {ln["recordId"] for ln in lines}
    sent_ids = {f"smoke-{i:03d}" for i in range(total - 3)} | {obs.get("ls_id"), obs.get("bad_id")} if total else set()
    generated = sorted(str(i) for i in named - sent_ids)
    out["Records without recordId"] = _check(
        "Records without recordId", len(generated) == 1 and bool(re.fullmatch(r"CALL\d{7}", generated[0] or "")),
        f"ids not sent by us: {generated}")
    early = [k for ks in obs.get("keys_while_running", []) for k in ks if k.endswith("manifest.json.out")]
    partial = [k for ks in obs.get("keys_while_running", []) for k in ks if not k.endswith("manifest.json.out")]
    out["Partial output while InProgress"] = _check(
        "Partial output while InProgress", not early,
        f"{len(obs.get('keys_while_running', []))} listing(s) while InProgress; .out seen early: {bool(partial)}; manifest seen early: {bool(early)}")
    stop = obs.get("stop_ended", {})
    out["Stop on an ended job"] = _check(
        "Stop on an ended job", stop.get("code") == "ValidationException" and stop.get("http") == 400
        and f"State was: {final.get('status')}" in (stop.get("message") or ""),
        f"{stop.get('code')} (HTTP {stop.get('http')}): {stop.get('message')}")
    arn_want = f"arn:aws:bedrock:{obs.get('region')}::foundation-model/{obs.get('model_id')}"
    out["modelId read back"] = _check("modelId read back", final.get("modelId") == arn_want,
                                      f"{final.get('modelId')} (sent {obs.get('model_id')})")
    unk = obs.get("unknown_model", {})
    out["Unknown model id"] = _check(
        "Unknown model id", unk.get("code") == "ValidationException" and "The provided model identifier is invalid" in (unk.get("message") or ""),
        f"{unk.get('code')} (HTTP {unk.get('http')}): {unk.get('message')}")
    ls = [ln for ln in lines if ln["recordId"] == obs.get("ls_id")]
    out["JSONL line splitting"] = _check(
        "JSONL line splitting", len(ls) == 1 and ls[0]["has_output"] and final.get("totalRecordCount") == total,
        f"U+2028 record: {len(ls)} line(s), answered: {bool(ls and ls[0]['has_output'])}; total {final.get('totalRecordCount')} for {total} sent")
    parsed = obs.get("parsed", {})
    out["Validating checks"] = _check(
        "Validating checks", final.get("status") in ENDED_OK and err is not None and parsed.get("rows") == total,
        f"job {final.get('status')} ({final.get('message') or 'no message'}); bad body -> "
        + ("error line" if err is not None else "no error line") + f"; the shard parser read {parsed}")
    replay = obs.get("replay_arn")
    out["Idempotency"] = _check(
        "Idempotency", replay == obs.get("job_arn"),
        f"replay returned {replay}" if replay else f"replay failed: {obs.get('replay_error')}")
    missing = obs.get("get_missing", {})
    out["Error codes on the wire"] = _check(
        "Error codes on the wire", missing.get("code") == "ResourceNotFoundException" and missing.get("http") == 404
        and stop.get("http") == 400 and unk.get("http") == 400,
        f"Get of a missing job: {missing.get('code')} HTTP {missing.get('http')}; ValidationExceptions: HTTP {stop.get('http')}, {unk.get('http')}")
    checks = []
    for name, (expected, why_not) in ASSUMPTIONS.items():
        if name in out:
            checks.append(out[name])
        else:
            checks.append(Check(name, False, expected, f"not observable: {why_not}"))
    return checks


# --- report ------------------------------------------------------------------------------------


def write_report(path: Path, checks: list[Check], env: dict) -> tuple[Path, Path]:
    """`<path>.json` and `<path>.md`: every assumption, and the environment (never credentials)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.with_suffix("") if path.suffix in (".json", ".md") else path
    doc = {"environment": env, "passed": all(c.passed for c in checks if c.checked) and not env.get("aborted"),
           "assumptions": [dataclasses.asdict(c) | {"verdict": c.verdict} for c in checks]}
    json_path, md_path = base.with_suffix(".json"), base.with_suffix(".md")
    json_path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    rows = [f"| {c.behaviour} | {c.verdict} | {c.expected} | {c.observed.replace('|', '/')} |" for c in checks]
    md_path.write_text("\n".join([
        "# bedrock-assets smoke report", "",
        *[f"- {k}: {v}" for k, v in env.items()], "",
        f"Result: {'every checked assumption held' if doc['passed'] else 'SOME ASSUMPTIONS FAILED'}", "",
        "| Behaviour (docs/emulator.md) | Verdict | Expected (emulator) | Observed |", "|---|---|---|---|", *rows, ""]))
    return json_path, md_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bedrock-assets smoke", description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default=DEFAULT_MODEL, help="cheap model to run the job on")
    parser.add_argument("--yes", action="store_true", help="start without asking (you accept the stated maximum cost)")
    parser.add_argument("--report", default="smoke-report", help="report path without extension; writes .json and .md (default: ./smoke-report)")
    args = parser.parse_args(argv)
    from bedrock_assets import cli_env

    def body() -> int:
        import importlib.metadata

        target_emulator = cli_env.is_emulator(settings.endpoint_url())
        cli_env.ensure_credentials(target_emulator)
        region = cli_env.ensure_region(target_emulator)
        if not target_emulator and not settings.env_text(settings.ENV_ROLE_ARN):
            raise UserError(f"set {settings.ENV_ROLE_ARN} to the IAM role Bedrock batch jobs run as (docs/bedrock-facts.md §8.1)")
        started = dt.datetime.now(dt.timezone.utc)
        run_id = started.strftime("%Y%m%dt%H%M%S") + "-" + uuid.uuid4().hex[:6]
        lines = build_lines(args.model, run_id)
        one, bound = max_cost(args.model, lines)
        if bound is None:
            raise UserError(f"no price for {args.model}: {one.reason}")
        bucket = settings.bucket()
        if not target_emulator:  # a missing bucket is said before the question (head_bucket creates nothing)
            import boto3

            cli_env.ensure_bucket(boto3.client("s3", region_name=region), False)
        where = "the local emulator (no cost)" if target_emulator else f"AWS account of your credentials, region {region}"
        print(f"bedrock-assets smoke: one Bedrock batch job of {len(lines)} records on {args.model} in {where}.\n"
              f"  maximum cost: ${bound:.4f} (upper bound: {one}; doubled in case the idempotency check made a second job)\n"
              f"  creates: s3://{bucket}/shards/smoke/{run_id}/{SHARD} (input), Bedrock's output objects under "
              f"s3://{bucket}/outputs/smoke/{run_id}/, one batch job; it also calls Stop on the ended job, Create with an "
              f"unknown model id and Get of a missing job (refused, no cost). Nothing is deleted afterwards.")
        if not args.yes:
            if not sys.stdin.isatty():
                print("error: not started: confirm with --yes (stdin is not a terminal, so nobody can type yes)", file=sys.stderr)
                return 2
            if input("Type yes to start: ").strip().lower() != "yes":
                print("error: not started: the answer was not yes", file=sys.stderr)
                return 2
        if target_emulator:
            cli_env.prepare_aws(need_bucket=True)  # creates the bucket on the emulator only, after the yes
        obs: dict[str, Any] = {}
        aborted = None
        try:
            observe(args.model, run_id, lines, log=print, obs=obs)
        except Exception as exc:  # noqa: BLE001 - e.g. AccessDenied half-way: still report what was seen
            aborted = cli_env.one_line(exc)
            print(f"error: the smoke run stopped early: {aborted}", file=sys.stderr)
        checks = evaluate(obs)
        try:
            version = importlib.metadata.version("bedrock-assets")
        except importlib.metadata.PackageNotFoundError:
            version = "unknown (not installed)"
        env = {"target": "emulator" if target_emulator else "aws", "region": region, "model": args.model,
               "bucket": bucket, "job_arn": obs.get("job_arn"), "final_status": obs.get("final", {}).get("status"),
               "package_version": version, "max_cost_usd": round(bound, 6), "started": started.isoformat(timespec="seconds"),
               "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        if aborted:
            # Rows after the point it stopped show FAIL for want of an observation, not because AWS differed.
            env["aborted"] = f"{aborted} (rows it did not reach show FAIL for want of an observation)"
        json_path, md_path = write_report(Path(args.report), checks, env)
        checked = [c for c in checks if c.checked]
        failed = [c for c in checked if not c.passed]
        print(f"\n{len(checked) - len(failed)}/{len(checked)} checked assumptions held, "
              f"{len(checks) - len(checked)} not observable by this run; report: {md_path} and {json_path}")
        for c in failed:
            print(f"  FAIL {c.behaviour}: expected {c.expected}; observed {c.observed}")
        return 1 if failed or aborted else 0

    return cli_env.run_main(body)


if __name__ == "__main__":
    raise SystemExit(main())
