"""Bedrock batch jobs for shards: deterministic identities, exactly-once submission, waiting.

Never pay twice: a job's name and clientRequestToken derive from (bucket, partition, model id,
invocation type, shard content hash, attempt) — the shard's bytes are its requests, so a new
model or a new body means a new job and a retry of the same work the same job — and before creating we look the job up by name. A step that crashed at any line —
before the create call, during it, after Bedrock accepted it — finds the job on its next try and
re-attaches instead of creating a second one. If the lookup misses a job that was just created
(listing can lag), the create call replays the same clientRequestToken, which Bedrock treats as
the same request (docs/bedrock-facts.md §1.1).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import re
import signal
import time
from typing import Any, Callable

from bedrock_assets.job_options import JobOptions

# Not started yet: no counts, no outputs. Time in any of these counts toward `stuck_after_minutes`.
QUEUED = frozenset({"Submitted", "Validating", "Scheduled"})
TERMINAL = frozenset({"Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"})

_JOB_NAME = re.compile(r"^[a-zA-Z0-9]{1,63}(-*[a-zA-Z0-9+\-.]){0,63}$")
_MAX_JOB_NAME = 63

Log = Callable[[str], None]


def _slug(text: str, limit: int) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:limit].strip("-") or "x"


@dataclasses.dataclass(frozen=True)
class JobIdentity:
    """What makes a job *this* job: same identity -> same Bedrock job, never a second one."""

    partition: str
    shard_name: str
    shard_digest: str  # ShardInfo.digest: XXH3-128 of the shard file's bytes (its requests)
    model_id: str  # as submitted in CreateModelInvocationJob
    invocation_type: str = "InvokeModel"
    attempt: int = 1
    # Where the data lives (the bucket): the same partition and content in another deployment
    # is another job, not a replay of this one.
    scope: str = ""

    @property
    def _what(self) -> str:
        return f"{self.scope}\n{self.partition}\n{self.model_id}\n{self.invocation_type}\n{self.shard_digest}"

    @property
    def _key_hash(self) -> str:
        return hashlib.sha256(self._what.encode()).hexdigest()

    @property
    def name_prefix(self) -> str:
        # `ba-<partition slug>-<shard no>-<hash of scope+partition+model+content>-a`: the attempt
        # number follows. A changed input or model gets new jobs; an unchanged one re-attaches.
        shard_no = re.sub(r"\D", "", self.shard_name)[-5:] or "0"
        return f"ba-{_slug(self.partition, 28)}-s{shard_no}-{self._key_hash[:12]}-a"

    @property
    def job_name(self) -> str:
        name = f"{self.name_prefix}{self.attempt}"
        assert len(name) <= _MAX_JOB_NAME and _JOB_NAME.match(name), name
        return name

    @property
    def client_request_token(self) -> str:
        # Alphanumeric only (docs/bedrock-facts.md §1.1 token regex); 64 hex chars fit the 256 limit.
        raw = f"{self._what}\n{self.shard_name}\n{self.attempt}"
        return hashlib.sha256(raw.encode()).hexdigest()

    def token_for_input(self, input_digest: str) -> str:
        """Token of a follow-up attempt: also bound to the exact records it resubmits."""
        if input_digest == self.shard_digest:
            return self.client_request_token
        return hashlib.sha256(f"{self.client_request_token}\n{input_digest}".encode()).hexdigest()


def job_id_from_arn(job_arn: str) -> str:
    """The 12-character job id Bedrock uses as the output folder name (docs/bedrock-facts.md §4)."""
    return job_arn.rsplit("/", 1)[-1]


def list_jobs_named(client: Any, name_prefix: str) -> list[dict]:
    """Every job whose name starts with `name_prefix` (ListModelInvocationJobs is paginated)."""
    found: list[dict] = []
    paginator = client.get_paginator("list_model_invocation_jobs")
    for page in paginator.paginate(nameContains=name_prefix):
        for summary in page.get("invocationJobSummaries", []):
            if summary.get("jobName", "").startswith(name_prefix):
                found.append(summary)
    return found


@dataclasses.dataclass
class Backoff:
    """Full-jitter exponential backoff (AWS architecture blog): spreads competing clients apart."""

    base: float = 1.0
    cap: float = 60.0
    rng: random.Random = dataclasses.field(default_factory=random.Random)
    tries: int = 0

    def next_delay(self) -> float:
        self.tries += 1
        return self.rng.uniform(0, min(self.cap, self.base * 2 ** min(self.tries, 16)))


def create_job(
    client: Any,
    identity: JobIdentity,
    *,
    model_id: str,
    role_arn: str,
    input_uri: str,
    output_uri: str,
    timeout_hours: int,
    invocation_type: str = "InvokeModel",
    options: JobOptions | None = None,
    log: Log = print,
    sleep: Callable[[float], None] = time.sleep,
    backoff: Backoff | None = None,
    max_wait_seconds: float = 24 * 3600,
    client_request_token: str | None = None,
) -> str:
    """CreateModelInvocationJob, waiting out throttling and the in-flight quota.

    ThrottlingException and ServiceQuotaExceededException mean "not now" (another client may
    hold the quota), so they are retried with jittered backoff and never fail the run by
    themselves — up to `max_wait_seconds`.

    `options` (KMS key, VPC, tags; job_options.py) go into the request but not into the job's
    name or token: they do not change answers (docs/bedrock-facts.md §8.3).
    """
    backoff = backoff or Backoff()
    request: dict[str, Any] = {
        "jobName": identity.job_name,
        "clientRequestToken": client_request_token or identity.client_request_token,
        "roleArn": role_arn,
        "modelId": model_id,
        "inputDataConfig": {"s3InputDataConfig": {"s3Uri": input_uri, "s3InputFormat": "JSONL"}},
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": output_uri}},
        "timeoutDurationInHours": timeout_hours,
    }
    if invocation_type != "InvokeModel":
        request["modelInvocationType"] = invocation_type
    if options is not None:
        request = options.apply(request)
    started = time.monotonic()
    while True:
        try:
            return client.create_model_invocation_job(**request)["jobArn"]
        except (client.exceptions.ThrottlingException, client.exceptions.ServiceQuotaExceededException) as exc:
            waited = time.monotonic() - started
            if waited > max_wait_seconds:
                raise
            delay = backoff.next_delay()
            code = exc.response.get("Error", {}).get("Code", type(exc).__name__)
            log(f"{identity.job_name}: {code} on create, retrying in {delay:.1f}s (waited {waited:.0f}s)")
            sleep(delay)


# Fault injection for the crash tests: `BEDROCK_ASSETS_CRASH_AT=after-create` kills this process
# with SIGKILL at that line — the worst moment, Bedrock has accepted the job and we have recorded
# nothing. Unset (always, outside tests) it does nothing.
CRASH_ENV = "BEDROCK_ASSETS_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def describe(client: Any, job_arn: str) -> dict:
    job = client.get_model_invocation_job(jobIdentifier=job_arn)
    job.pop("ResponseMetadata", None)
    return job


def progress_line(job: dict) -> str:
    total = job.get("totalRecordCount") or 0
    done = job.get("processedRecordCount") or 0
    errors = job.get("errorRecordCount") or 0
    # Counts read 0 while Submitted/Validating (docs/bedrock-facts.md §7.5): the job has not started
    # yet, so say "?" rather than a misleading 0/0.
    of = f"{done}/{total}" if total else "?/?"
    return f"{job.get('jobName', job_id_from_arn(job['jobArn']))}: {job.get('status')} {of} records, {errors} errors"


# Shortest pause between two Gets of one job. Polling near a job's estimated end adds a few Gets
# per job; at 1 s apart, 20 jobs in flight stay at ~20 requests/s at worst, and only for the
# seconds around their ends (the GetModelInvocationJob rate quota is not documented: kept low).
MIN_POLL_SECONDS = 1.0


@dataclasses.dataclass
class EndEstimate:
    """When a running job should process its last record, from the counts Get returns.

    The rate is measured from the first InProgress observation with records processed, so a
    job's queue time does not dilute it. No estimate until two observations show progress.
    """

    first: tuple[float, int] | None = None

    def seconds_left(self, now: float, job: dict) -> float | None:
        total = job.get("totalRecordCount") or 0
        done = job.get("processedRecordCount") or 0
        if job.get("status") != "InProgress" or not total or not done:
            return None
        if self.first is None:
            self.first = (now, done)
            return None
        elapsed, progressed = now - self.first[0], done - self.first[1]
        if elapsed <= 0 or progressed <= 0:
            return None
        return max(0.0, (total - done) / (progressed / elapsed))


def next_pause(delay: float, poll_seconds: float, seconds_left: float | None) -> tuple[float, float]:
    """(pause now, delay after) for the wait loop.

    Normally an exponential backoff 1, 2, 4 … s capped at `poll_seconds`. When the job's last
    record is due sooner than the next poll, wake just then (at least MIN_POLL_SECONDS) and
    restart the backoff from there: a freed quota slot is then seen within ~1 s of the job's
    end instead of up to a whole poll interval later. Never waits longer than the backoff would.
    """
    floor = min(MIN_POLL_SECONDS, poll_seconds)
    if seconds_left is not None and 0 < seconds_left < delay:
        return max(floor, seconds_left), floor
    return delay, min(poll_seconds, delay * 2)


@dataclasses.dataclass
class WaitOutcome:
    job: dict
    scheduled_seconds: float  # time we saw the job sitting in Submitted/Validating/Scheduled
    stuck: bool  # it sat there longer than the configured threshold


def wait_for_job(
    client: Any,
    job_arn: str,
    *,
    poll_seconds: float,
    log: Log = print,
    warn: Log | None = None,
    stuck_after_seconds: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> WaitOutcome:
    """Poll GetModelInvocationJob until a terminal status (botocore ships no waiter for these).

    Polls start fast and back off to `poll_seconds`, and wake near the job's estimated end (see
    `next_pause`); a line is logged whenever status or record counts change so a stalled job is
    visible in the run log. Bedrock gives no SLA for the queue
    (docs/bedrock-facts.md §7.3): a job still queued after `stuck_after_seconds` is reported once as stuck.
    """
    delay = min(1.0, poll_seconds)
    last = None
    end = EndEstimate()
    queued_since: float | None = None
    queued_total = 0.0
    stuck = False
    while True:
        job = describe(client, job_arn)
        now = time.monotonic()
        line = progress_line(job)
        if line != last:
            log(line)
            last = line
        if job.get("status") in QUEUED:
            queued_since = queued_since if queued_since is not None else now
            queued_for = queued_total + (now - queued_since)
            if stuck_after_seconds is not None and not stuck and queued_for > stuck_after_seconds:
                stuck = True
                (warn or log)(
                    f"{job.get('jobName')}: still {job.get('status')} after {queued_for / 60:.1f} min "
                    f"(threshold {stuck_after_seconds / 60:.1f} min); Bedrock gives no queue-time SLA"
                )
        elif queued_since is not None:
            queued_total += now - queued_since
            queued_since = None
        if job.get("status") in TERMINAL:
            if queued_since is not None:
                queued_total += now - queued_since
            return WaitOutcome(job, round(queued_total, 1), stuck)
        pause, delay = next_pause(delay, poll_seconds, end.seconds_left(now, job))
        sleep(pause)


def stop_job(client: Any, job_arn: str, *, log: Log = print, wait_seconds: float = 60.0, sleep: Callable[[float], None] = time.sleep) -> dict:
    """StopModelInvocationJob and wait (bounded) for Stopped; what it processed is billed and kept.

    A job that ended meanwhile (a cancel at the moment it finishes) is not an error: real Bedrock
    answers ValidationException "… State was: Completed" (docs/emulator.md), older emulators a
    ConflictException; either way the job's final state is read and returned."""
    try:
        client.stop_model_invocation_job(jobIdentifier=job_arn)
        log(f"{job_id_from_arn(job_arn)}: stop requested")
    except client.exceptions.ConflictException:
        pass  # already terminal: nothing to stop
    except client.exceptions.ValidationException as exc:
        if "State was" not in str(exc) and describe(client, job_arn).get("status") not in TERMINAL:
            raise
        log(f"{job_id_from_arn(job_arn)}: already ended, nothing to stop")
    deadline = time.monotonic() + wait_seconds
    while True:
        job = describe(client, job_arn)
        if job.get("status") in TERMINAL or time.monotonic() > deadline:
            log(progress_line(job))
            return job
        sleep(0.5)
