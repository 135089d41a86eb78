"""The four batch operations of the `bedrock` control plane (docs/bedrock-facts.md §1), shared with the worker."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import re
import secrets
import string
import threading
import time
from collections import Counter
from typing import Any, Callable

from . import errors, events
from .catalog import ModelCatalog
from .config import EmulatorConfig
from .engines import UnknownModel, base_model_id
from .faults import ThrottleDecider
from .jobs import ALL_STATUSES, DEFAULT_TIMEOUT_HOURS, Job
from .stats import Stats

log = logging.getLogger("bedrock_assets.emulator")

# botocore checks lengths and required members but not these patterns (docs/bedrock-facts.md §1.6).
JOB_NAME = re.compile(r"[a-zA-Z0-9]{1,63}(-*[a-zA-Z0-9\+\-\.]){0,63}")
ROLE_ARN = re.compile(r"arn:aws(-[^:]+)?:iam::([0-9]{12})?:role/.+")
CLIENT_TOKEN = re.compile(r"[a-zA-Z0-9]{1,256}(-*[a-zA-Z0-9]){0,256}")
S3_URI = re.compile(
    r"s3://[a-z0-9][-.a-z0-9]{1,61}[a-z0-9](?:/[-!_*'().a-z0-9A-Z]+(?:/[-!_*'().a-z0-9A-Z]+)*)?/?"
)
JOB_IDENTIFIER = re.compile(
    r"(?:arn:aws(?:-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:model-invocation-job/)?([a-z0-9]{12})"
)
JOB_ID_ALPHABET = string.ascii_lowercase + string.digits
DEFAULT_LIST_MAX_RESULTS = 100  # the service default is undocumented; small forces pagination


class ControlPlane:
    """Job store + CreateModelInvocationJob / Get / List / Stop. Thread-safe (one lock)."""

    def __init__(self, config: EmulatorConfig, catalog: ModelCatalog, stats: Stats) -> None:
        self.config = config
        self.catalog = catalog
        self.stats = stats
        self.lock = threading.RLock()
        self.jobs: dict[str, Job] = {}
        self._tokens: dict[str, str] = {}
        self._throttle = ThrottleDecider(config.seed, "control-plane")
        self.changed = threading.Condition(self.lock)
        # Called on every job status change (the data directory saves then); a no-op without one.
        self.on_status_change: Callable[[], None] = lambda: None

    # ------------------------------------------------------------------------ create
    def create(self, body: dict[str, Any], region: str) -> dict[str, Any]:
        token = body.get("clientRequestToken")
        model_id = body.get("modelId")
        model = base_model_id(model_id) if isinstance(model_id, str) else "unknown"
        with self.lock:
            if token is not None and token in self._tokens:
                # Same token -> same job, nothing created, never throttled or counted against the
                # quota. A replay with different parameters is unconfirmed; we return the original.
                job = self.jobs[self._tokens[token]]
                self.stats.count(job.base_model, "create_replays")
                log.info("CreateModelInvocationJob replay job=%s status=%s", job.job_id, job.status)
                return {"jobArn": job.arn}
        if self._throttle.throttle(self.config.throttle_rate):
            self.stats.count(model, "create_throttled")
            log.info("CreateModelInvocationJob throttled model=%s", model)
            raise errors.throttled()
        request = self._validate_create(body)
        with self.lock:
            if token is not None and token in self._tokens:  # a concurrent twin won the race
                return {"jobArn": self.jobs[self._tokens[token]].arn}
            if any(job.name == request["jobName"] for job in self.jobs.values()):
                # Name uniqueness is unconfirmed; refusing duplicates is the strict, safe reading.
                raise errors.conflict(f"A job with the name {request['jobName']} already exists.")
            in_flight = self._in_flight(request["base_model"])
            if in_flight >= self.config.max_concurrent_jobs:
                self.stats.count(request["base_model"], "quota_rejections")
                log.info("CreateModelInvocationJob quota model=%s in_flight=%d", model, in_flight)
                raise errors.quota_exceeded(
                    "You have exceeded the number of submitted and in-progress batch inference "
                    f"jobs for {request['base_model']} ({self.config.max_concurrent_jobs}). "
                    "Wait for a job to finish and try again."
                )
            job = self._new_job(request, token, region)
            self.jobs[job.job_id] = job
            if token is not None:
                self._tokens[token] = job.job_id
            self.stats.count(job.base_model, "jobs_created")
            self.stats.observe_in_flight(job.base_model, in_flight + 1)
            self.status_changed(job)
            self.changed.notify_all()
        log.info("CreateModelInvocationJob job=%s model=%s status=Submitted", job.job_id, model)
        return {"jobArn": job.arn}

    def _validate_create(self, body: dict[str, Any]) -> dict[str, Any]:
        for required in ("jobName", "roleArn", "modelId", "inputDataConfig", "outputDataConfig"):
            if required not in body:
                raise errors.validation(f"1 validation error detected: {required} must not be null")
        name, role, model_id = body["jobName"], body["roleArn"], body["modelId"]
        if not isinstance(name, str) or len(name) > 63 or not JOB_NAME.fullmatch(name):
            raise errors.validation(
                f"1 validation error detected: Value '{name}' at 'jobName' failed to satisfy "
                "constraint: Member must satisfy regular expression pattern: "
                r"[a-zA-Z0-9]{1,63}(-*[a-zA-Z0-9\+\-\.]){0,63}"
            )
        if not isinstance(role, str) or not ROLE_ARN.fullmatch(role):
            raise errors.validation(
                f"1 validation error detected: Value '{role}' at 'roleArn' failed to satisfy "
                r"constraint: Member must satisfy regular expression pattern: arn:aws(-[^:]+)?:iam::([0-9]{12})?:role/.+"
            )
        token = body.get("clientRequestToken")
        if token is not None and (not isinstance(token, str) or not CLIENT_TOKEN.fullmatch(token)):
            raise errors.validation("1 validation error detected: Value at 'clientRequestToken' failed to satisfy constraint")
        input_config = self._union(body["inputDataConfig"], "inputDataConfig", "s3InputDataConfig")
        self._union(body["outputDataConfig"], "outputDataConfig", "s3OutputDataConfig")
        if input_config.get("s3InputFormat", "JSONL") != "JSONL":
            raise errors.validation("1 validation error detected: s3InputFormat must be JSONL")
        invocation_type = body.get("modelInvocationType")
        if invocation_type not in (None, "InvokeModel", "Converse"):
            raise errors.validation(
                f"1 validation error detected: Value '{invocation_type}' at 'modelInvocationType' "
                "failed to satisfy constraint: Member must satisfy enum value set: [InvokeModel, Converse]"
            )
        timeout = body.get("timeoutDurationInHours", DEFAULT_TIMEOUT_HOURS)
        if isinstance(timeout, bool) or not isinstance(timeout, int) or not 24 <= timeout <= 168:
            raise errors.validation(
                "1 validation error detected: Value at 'timeoutDurationInHours' failed to satisfy "
                "constraint: Member must have value between 24 and 168"
            )
        if not isinstance(model_id, str) or not model_id:
            raise errors.validation("1 validation error detected: modelId must not be empty")
        _check_job_options(body)
        try:
            self.catalog.engine(model_id, invocation_type or "InvokeModel")
        except UnknownModel as exc:
            raise errors.validation(str(exc)) from None
        return {
            "jobName": name, "roleArn": role, "modelId": model_id,
            "base_model": base_model_id(model_id), "invocation_type": invocation_type,
            "inputDataConfig": body["inputDataConfig"], "outputDataConfig": body["outputDataConfig"],
            "vpcConfig": body.get("vpcConfig"), "timeout": timeout, "tags": body.get("tags") or [],
        }

    @staticmethod
    def _union(value: Any, field: str, member: str) -> dict[str, Any]:
        if not isinstance(value, dict) or len(value) != 1 or member not in value:
            raise errors.validation(f"1 validation error detected: {field} must set exactly {member}")
        config = value[member]
        uri = config.get("s3Uri") if isinstance(config, dict) else None
        if not isinstance(uri, str) or len(uri) > 1024 or not S3_URI.fullmatch(uri):
            raise errors.validation(
                f"1 validation error detected: Value '{uri}' at '{field}.{member}.s3Uri' failed to "
                "satisfy constraint: Member must satisfy regular expression pattern: "
                r"s3://[a-z0-9][-.a-z0-9]{1,61}[a-z0-9](?:/[-!_*'().a-z0-9A-Z]+(?:/[-!_*'().a-z0-9A-Z]+)*)?/?"
            )
        return config

    def _new_job(self, request: dict[str, Any], token: str | None, region: str) -> Job:
        while True:
            job_id = "".join(secrets.choice(JOB_ID_ALPHABET) for _ in range(12))
            if job_id not in self.jobs:
                break
        now = time.time()
        return Job(
            job_id=job_id,
            arn=f"arn:aws:bedrock:{region}:{self.config.account_id}:model-invocation-job/{job_id}",
            name=request["jobName"],
            model_id=request["modelId"],
            base_model=request["base_model"],
            role_arn=request["roleArn"],
            client_request_token=token,
            invocation_type=request["invocation_type"],
            input_data_config=request["inputDataConfig"],
            output_data_config=request["outputDataConfig"],
            vpc_config=request["vpcConfig"],
            timeout_hours=request["timeout"],
            tags=request["tags"],
            submit_time=now,
            last_modified_time=now,
            expiration_time=now + request["timeout"] * self.config.seconds_per_hour,
        )

    def restore(self, job: Job) -> None:
        """Add a job read back from a data directory, with its token so replays still find it."""
        with self.lock:
            self.jobs[job.job_id] = job
            if job.client_request_token is not None:
                self._tokens[job.client_request_token] = job.job_id

    # --------------------------------------------------------------------- get / list / stop
    def find(self, identifier: str) -> Job:
        match = JOB_IDENTIFIER.fullmatch(identifier or "")
        if not match:
            raise errors.validation(
                f"1 validation error detected: Value '{identifier}' at 'jobIdentifier' failed to "
                "satisfy constraint: Member must satisfy regular expression pattern"
            )
        job = self.jobs.get(match.group(1))
        if job is None or (identifier.startswith("arn:") and identifier != job.arn):
            raise errors.not_found(f"The specified job {identifier} could not be found.")
        return job

    def get(self, identifier: str) -> dict[str, Any]:
        with self.lock:
            return self.find(identifier).summary()

    def list_tags(self, body: dict[str, Any]) -> dict[str, Any]:
        """ListTagsForResource for job ARNs (tags given at create; TagResource is not emulated)."""
        arn = body.get("resourceARN")
        if not isinstance(arn, str) or ":model-invocation-job/" not in arn:
            raise errors.not_found(f"The emulator keeps tags of batch inference jobs only: {arn}")
        with self.lock:
            return {"tags": list(self.find(arn).tags)}

    def stop(self, identifier: str) -> dict[str, Any]:
        with self.lock:
            job = self.find(identifier)
            if job.terminal:
                # As real Bedrock answers (docs/emulator.md, "Errors"): a ValidationException whose
                # message names the state, not a ConflictException.
                raise errors.validation(f"Job {job.arn} cannot be stopped. State was: {job.status}")
            if job.status != "Stopping":
                job.stop_requested = True
                job.status = "Stopping"
                job.last_modified_time = time.time()
                self.status_changed(job)
                self.changed.notify_all()
            log.info("StopModelInvocationJob job=%s status=%s", job.job_id, job.status)
        return {}

    def list(self, query: dict[str, str]) -> dict[str, Any]:
        status = query.get("statusEquals")
        if status is not None and status not in ALL_STATUSES:
            raise errors.validation(f"1 validation error detected: Value '{status}' at 'statusEquals' failed to satisfy constraint")
        name_contains = query.get("nameContains")
        after = _parse_time(query.get("submitTimeAfter"), "submitTimeAfter")
        before = _parse_time(query.get("submitTimeBefore"), "submitTimeBefore")
        sort_by = query.get("sortBy", "CreationTime")
        sort_order = query.get("sortOrder", "Descending")
        if sort_by != "CreationTime" or sort_order not in ("Ascending", "Descending"):
            raise errors.validation("1 validation error detected: sortBy/sortOrder has an invalid value")
        try:
            max_results = int(query.get("maxResults", DEFAULT_LIST_MAX_RESULTS))
        except ValueError:
            raise errors.validation("maxResults must be a number") from None
        if not 1 <= max_results <= 1000:
            raise errors.validation("1 validation error detected: maxResults must be between 1 and 1000")
        cursor = _decode_token(query.get("nextToken"))
        descending = sort_order == "Descending"
        with self.lock:
            jobs = [
                job for job in self.jobs.values()
                if (status is None or job.status == status)
                and (name_contains is None or name_contains in job.name)
                and (after is None or job.submit_time > after)
                and (before is None or job.submit_time < before)
            ]
            jobs.sort(key=_sort_key, reverse=descending)
            if cursor is not None:
                # A cursor (not an offset) keeps pages stable while new jobs are being created.
                jobs = [job for job in jobs if (_sort_key(job) < cursor if descending else _sort_key(job) > cursor)]
            page = jobs[:max_results]
            summaries = [job.summary() for job in page]
        response: dict[str, Any] = {"invocationJobSummaries": summaries}
        if len(jobs) > max_results:
            response["nextToken"] = _encode_token(_sort_key(page[-1]))
        return response

    # ------------------------------------------------------------------------ helpers
    def status_changed(self, job: Job) -> None:
        """Every status a job takes is announced on EventBridge, as Bedrock does (events.py)."""
        events.publish(job, self.config.account_id)
        self.on_status_change()

    def _in_flight(self, model: str) -> int:
        return sum(1 for job in self.jobs.values() if job.base_model == model and job.in_flight)

    def in_flight_by_model(self) -> dict[str, int]:
        with self.lock:
            counts = Counter(job.base_model for job in self.jobs.values() if job.in_flight)
        return dict(counts)

    def status_by_model(self) -> dict[str, dict[str, int]]:
        with self.lock:
            result: dict[str, dict[str, int]] = {}
            for job in self.jobs.values():
                result.setdefault(job.base_model, Counter())[job.status] += 1
        return {model: dict(counts) for model, counts in result.items()}


# Patterns botocore models but does not check (docs/bedrock-facts.md §1.6, §8).
KMS_KEY_ID = re.compile(
    r"(arn:aws(-[^:]+)?:kms:[a-zA-Z0-9-]*:[0-9]{12}:((key/[a-zA-Z0-9-]{36})|(alias/[a-zA-Z0-9-_/]+)))"
    r"|([a-zA-Z0-9-]{36})|(alias/[a-zA-Z0-9-_/]+)"
)
VPC_RESOURCE_ID = re.compile(r"[-0-9a-zA-Z]{1,32}")
TAG_TEXT = re.compile(r"[a-zA-Z0-9\s._:/=+@-]*", re.ASCII)


def _check_job_options(body: dict[str, Any]) -> None:
    """s3EncryptionKeyId, vpcConfig and tags against the service model's patterns and sizes."""
    def bad(where: str) -> errors.ApiError:
        return errors.validation(f"1 validation error detected: Value at '{where}' failed to satisfy constraint")

    key = (body["outputDataConfig"].get("s3OutputDataConfig") or {}).get("s3EncryptionKeyId")
    if key is not None and (not isinstance(key, str) or len(key) > 2048 or not KMS_KEY_ID.fullmatch(key)):
        raise bad("outputDataConfig.s3OutputDataConfig.s3EncryptionKeyId")
    vpc = body.get("vpcConfig")
    if vpc is not None:
        for member, most in (("subnetIds", 16), ("securityGroupIds", 5)):
            ids = vpc.get(member) if isinstance(vpc, dict) else None
            if not isinstance(ids, list) or not 1 <= len(ids) <= most or not all(
                    isinstance(i, str) and VPC_RESOURCE_ID.fullmatch(i) for i in ids):
                raise bad(f"vpcConfig.{member}")
    tags = body.get("tags") or []
    if not isinstance(tags, list) or len(tags) > 200:
        raise bad("tags")
    for tag in tags:
        k, v = (tag.get("key"), tag.get("value")) if isinstance(tag, dict) else (None, None)
        if not (isinstance(k, str) and 1 <= len(k) <= 128 and TAG_TEXT.fullmatch(k)
                and isinstance(v, str) and len(v) <= 256 and TAG_TEXT.fullmatch(v)):
            raise bad("tags")


def _parse_time(value: str | None, field: str) -> float | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:  # AWS timestamps without an offset are UTC
            moment = moment.replace(tzinfo=dt.timezone.utc)
        return moment.timestamp()
    except ValueError:
        try:
            return float(value)
        except ValueError:
            raise errors.validation(f"{field} is not a valid timestamp: {value}") from None


def _sort_key(job: Job) -> tuple[float, str]:
    return (job.submit_time, job.job_id)


def _encode_token(cursor: tuple[float, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(cursor)).encode()).decode().rstrip("=")


def _decode_token(token: str | None) -> tuple[float, str] | None:
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        submit_time, job_id = json.loads(base64.urlsafe_b64decode(padded))
        return float(submit_time), str(job_id)
    except (ValueError, TypeError):
        raise errors.validation("The nextToken is invalid.") from None
