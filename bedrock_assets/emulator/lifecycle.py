"""Background job lifecycle (docs/bedrock-facts.md §2): Submitted -> Validating -> Scheduled -> InProgress -> end.

One scheduler thread advances statuses; a small thread pool validates inputs and processes
records, so several jobs run at once and request threads never block on model work.
"""

from __future__ import annotations

import json
import logging
import posixpath
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from . import storage
from .catalog import ModelCatalog
from .config import EmulatorConfig
from .control_plane import ControlPlane
from .engines import Outcome
from .faults import RecordFaults, error_message
from .jobs import InputRecord, Job
from .provider_codecs import RecordError

log = logging.getLogger("bedrock_assets.emulator")

TICK_SECONDS = 0.02
FAST_CHUNK = {"embedding": 2000, "text": 500}
# The MiniLM engine embeds ~50-150 records/s on 2 cores: smaller batches keep Stop, shutdown and the
# progress counts responsive (a 2,000-record batch would take 15-40 s).
MINILM_CHUNK = 256
PACE_SLICE_SECONDS = 0.1


class ValidationFailure(Exception):
    """The job's input breaks a rule checked while Validating; the job becomes Failed."""


class Lifecycle:
    def __init__(self, config: EmulatorConfig, control: ControlPlane, catalog: ModelCatalog) -> None:
        self.config = config
        self.control = control
        self.catalog = catalog
        self.faults = RecordFaults(config.seed)
        self._pool = ThreadPoolExecutor(max_workers=config.worker_threads, thread_name_prefix="emulator-job")
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="emulator-lifecycle", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def shutdown(self) -> None:
        self._stopping.set()
        with self.control.changed:
            self.control.changed.notify_all()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ scheduler
    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._tick()
            except Exception:  # keep the emulator alive; a bug here must not stop every job
                log.exception("lifecycle tick failed")
            with self.control.changed:
                self.control.changed.wait(TICK_SECONDS)

    def _tick(self) -> None:
        now = time.time()
        config = self.config
        with self.control.lock:
            for job in list(self.control.jobs.values()):
                if job.terminal or job.busy:
                    continue
                if job.status == "Stopping":
                    self._finish(job, "Stopped", now)
                elif job.status == "Submitted":
                    if now - job.submit_time >= config.submitted_seconds:
                        self._set_status(job, "Validating", now)
                        job.validating_time = now
                        job.busy = True
                        self._pool.submit(self._guard, job, self._validate)
                elif job.status == "Validating":
                    # Validation is done (a failure would have ended the job); stay Validating
                    # for at least validating_seconds so clients see the state.
                    if job.validated and now - (job.validating_time or now) >= config.validating_seconds:
                        job.scheduled_time = now
                        self._set_status(job, "Scheduled", now)
                elif job.status == "Scheduled":
                    if now >= job.expiration_time:
                        self._finish(job, "Expired", now, "The job expired before it was started.")
                    elif now - (job.scheduled_time or now) >= config.queue_seconds:
                        self._set_status(job, "InProgress", now)
                        job.busy = True
                        self._pool.submit(self._guard, job, self._process)

    def _guard(self, job: Job, work) -> None:
        try:
            work(job)
        except Exception as exc:  # an emulator bug fails the job visibly instead of hanging it
            log.exception("job=%s worker failed", job.job_id)
            with self.control.lock:
                if not job.terminal:
                    self._finish(job, "Failed", time.time(), f"Internal emulator error: {type(exc).__name__}")
        finally:
            with self.control.lock:
                job.busy = False
                self.control.changed.notify_all()

    def _set_status(self, job: Job, status: str, now: float) -> None:
        job.status = status
        job.last_modified_time = now
        log.info("job=%s status=%s", job.job_id, status)
        self.control.status_changed(job)

    def _finish(self, job: Job, status: str, now: float, message: str | None = None) -> None:
        job.end_time = now
        if message:
            job.message = message
        job.records = []
        self._set_status(job, status, now)  # last, so the event carries endTime and message

    # ------------------------------------------------------------------ Validating
    def _validate(self, job: Job) -> None:
        loaded = self._load_input(job)
        if loaded is None:
            return
        with self.control.lock:
            if job.status != "Validating":  # stopped meanwhile
                return
            job.input_files, job.records = loaded
            job.total_records = len(job.records)
            job.validated = True  # the scheduler moves it to Scheduled (see _tick)

    def _load_input(self, job: Job) -> tuple[list[tuple[str, str]], list[InputRecord]] | None:
        """The job's input files and records, or None after failing the job for a bad input."""
        try:
            files, records = self._read_input(job)
            output_bucket, _ = storage.split_uri(job.output_uri)
            if not storage.bucket_exists(output_bucket):
                raise ValidationFailure(f"Unable to access the output S3 bucket {output_bucket}.")
        except (ValidationFailure, storage.StorageError) as exc:
            with self.control.lock:
                self._finish(job, "Failed", time.time(), str(exc))
            return None
        return files, records

    # ------------------------------------------------------------------ restart
    def resume(self, job: Job) -> None:
        """Redo the work of a job restored from a data directory while Validating/Scheduled/InProgress.

        Its parsed input did not survive the restart: read it again, then let the scheduler carry
        on (Validating, Scheduled) or process every record from the first (InProgress). The
        status never moves backwards, so a client polling across the restart sees no new state.
        """
        with self.control.lock:
            job.busy = True  # the scheduler leaves it alone until its input is loaded
        self._pool.submit(self._guard, job, self._resume)

    def _resume(self, job: Job) -> None:
        loaded = self._load_input(job)
        if loaded is None:
            return
        with self.control.lock:
            if job.terminal:
                return
            job.input_files, job.records = loaded
            job.total_records = len(job.records)
            job.validated = True
            running = job.status == "InProgress"
        if running:
            self._process(job)

    def _read_input(self, job: Job) -> tuple[list[tuple[str, str]], list[InputRecord]]:
        uri = job.input_uri
        bucket, key = storage.split_uri(uri)
        if not storage.bucket_exists(bucket):
            raise ValidationFailure(f"Unable to access the input S3 bucket {bucket}.")
        objects = storage.list_objects(uri)
        if not objects:
            raise ValidationFailure(f"No input files were found at {uri}.")
        single = len(objects) == 1 and objects[0].key == key
        prefix = "" if single else (key if not key or key.endswith("/") else key + "/")
        files: list[tuple[str, str]] = []
        records: list[InputRecord] = []
        for found in objects:
            file_uri = f"s3://{found.bucket}/{found.key}"
            if not found.key.endswith(".jsonl"):
                raise ValidationFailure(f"The input file {file_uri} is not a .jsonl file.")
            if found.size > self.config.max_input_file_bytes:
                raise ValidationFailure(
                    f"The input file {file_uri} is {found.size} bytes, over the "
                    f"{self.config.max_input_file_bytes}-byte input file size quota."
                )
            # Nested folders keep their relative path in the output (docs/bedrock-facts.md §4, unconfirmed).
            name = posixpath.basename(found.key) if single else found.key[len(prefix):]
            file_index = len(files)
            files.append((file_uri, name + ".out"))
            records.extend(self._parse_file(storage.read_object(found.bucket, found.key), file_uri, file_index, len(records)))
            if len(records) > self.config.max_records:
                break
        if len(records) > self.config.max_records:
            raise ValidationFailure(
                f"The job has more than {self.config.max_records} records, over the records per "
                "batch inference job quota."
            )
        if len(records) < self.config.min_records:
            raise ValidationFailure(
                f"The job has {len(records)} records; the minimum number of records per batch "
                f"inference job is {self.config.min_records}."
            )
        return files, records

    @staticmethod
    def _parse_file(data: bytes, file_uri: str, file_index: int, already: int) -> list[InputRecord]:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationFailure(f"The input file {file_uri} is not valid UTF-8.") from None
        records = []
        # JSONL lines end at "\n" only (docs/bedrock-facts.md §3). str.splitlines() would also split
        # at U+2028, U+2029, U+0085 and other breaks that a JSON string may hold unescaped.
        for line_number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                parsed = json.loads(line)
            except ValueError:
                raise ValidationFailure(f"Line {line_number} of {file_uri} is not valid JSON.") from None
            if not isinstance(parsed, dict):
                raise ValidationFailure(f"Line {line_number} of {file_uri} is not a JSON object.")
            record_id = parsed.get("recordId")
            if record_id is None:
                # The service assigns ids to records without one (docs/bedrock-facts.md §3); 11 alphanumerics.
                record_id = f"CALL{already + len(records) + 1:07d}"
            records.append(
                InputRecord(file_index, str(record_id), parsed.get("modelInput"), "modelInput" in parsed)
            )
        return records

    # ------------------------------------------------------------------ InProgress
    def _process(self, job: Job) -> None:
        engine = self.catalog.engine(job.model_id, job.invocation_type or "InvokeModel")
        lines: list[list[str]] = [[] for _ in job.input_files]
        records = job.records
        position = 0
        # Pace from the last rate change, so POST /_emulator/config takes effect smoothly mid-job.
        pace_rate, pace_time, pace_position = None, time.monotonic(), 0
        outcome_status = "Completed"
        partial = PartialOutput(time.monotonic())
        while position < len(records):
            if self._stopping.is_set():
                return  # emulator shutting down: abandon the job rather than keep the process alive
            with self.control.lock:
                if job.stop_requested:
                    outcome_status = "Stopped"
                    break
                if time.time() >= job.expiration_time:
                    outcome_status = "PartiallyCompleted"
                    break
            rate = self.config.records_per_second
            if rate != pace_rate:
                pace_rate, pace_time, pace_position = rate, time.monotonic(), position
            if rate > 0:
                chunk = max(1, int(rate * PACE_SLICE_SECONDS))
                due = pace_time + (position - pace_position) / rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(min(delay, PACE_SLICE_SECONDS))
                    continue
            elif engine.kind == "embedding" and self.config.embedding_engine == "minilm":
                chunk = MINILM_CHUNK
            else:
                chunk = FAST_CHUNK[engine.kind]
            batch = records[position:position + chunk]
            success, failed, in_tokens, out_tokens = self._run_batch(engine, batch, lines)
            position += len(batch)
            with self.control.lock:
                job.processed_records += len(batch)
                job.success_records += success
                job.error_records += failed
                job.input_tokens += in_tokens
                job.output_tokens += out_tokens
                job.last_modified_time = time.time()
            if position < len(records) and partial.due(self.config.partial_output_seconds):
                partial.write(lambda: self._write_files(job, lines, complete=False, in_place=False))
        self._write_outputs(job, lines, complete=position >= len(records))
        with self.control.lock:
            message = None
            if outcome_status == "PartiallyCompleted":
                message = "The job timed out before every record was processed."
            if job.stop_requested and outcome_status == "Completed":
                outcome_status = "Stopped"
            self._finish(job, outcome_status, time.time(), message)

    def _run_batch(self, engine, batch: list[InputRecord], lines: list[list[str]]) -> tuple[int, int, int, int]:
        faults = self.faults.decide(
            [(record.record_id, record.model_input) for record in batch],
            self.config.record_error_rate,
            tuple(self.config.record_error_codes),
            tuple(self.config.record_error_ids),
        )
        outcomes: list[Outcome | None] = [None] * len(batch)
        to_run: list[int] = []
        for index, (record, fault) in enumerate(zip(batch, faults)):
            if fault is not None:
                outcomes[index] = Outcome(error_code=fault, error_message=error_message(fault))
            elif not record.has_model_input:
                error = RecordError("Malformed input request: #: required key [modelInput] not found, please reformat your input and try again.")
                outcomes[index] = Outcome(error_code=error.code, error_message=error.message)
            else:
                to_run.append(index)
        if to_run:
            for index, outcome in zip(to_run, engine.run([batch[index].model_input for index in to_run])):
                outcomes[index] = outcome
        success = failed = in_tokens = out_tokens = 0
        for record, outcome in zip(batch, outcomes):
            head = '{"recordId":' + json.dumps(record.record_id) + ',"modelInput":' + json.dumps(record.model_input, ensure_ascii=False)
            if outcome.ok:
                success += 1
                in_tokens += outcome.input_tokens
                out_tokens += outcome.output_tokens
                line = head + ',"modelOutput":' + outcome.output_json + "}"
            else:
                failed += 1
                line = head + ',"error":' + json.dumps({"errorCode": outcome.error_code, "errorMessage": outcome.error_message}) + "}"
            lines[record.file_index].append(line)
        return success, failed, in_tokens, out_tokens

    def _write_outputs(self, job: Job, lines: list[list[str]], complete: bool) -> None:
        """`<output>/<jobId>/<input file>.out` per input file + `manifest.json.out` (docs/bedrock-facts.md §4).

        A stopped or timed-out job writes only the files it has processed records for.
        """
        self._write_files(job, lines, complete, in_place=True)
        with self.control.lock:
            manifest = {
                "totalRecordCount": job.total_records,
                "processedRecordCount": job.processed_records,
                "successRecordCount": job.success_records,
                "errorRecordCount": job.error_records,
                "inputTokenCount": job.input_tokens,
                "outputTokenCount": job.output_tokens,
            }
        storage.write_object(self._output_base(job) + "manifest.json.out", json.dumps(manifest).encode())

    def _write_files(self, job: Job, lines: list[list[str]], complete: bool, in_place: bool) -> None:
        base = self._output_base(job)
        for file_index, (_, out_name) in enumerate(job.input_files):
            file_lines = lines[file_index] if in_place else list(lines[file_index])
            if not file_lines and not complete:
                continue
            # The service does not keep input order; a seeded shuffle makes that visible. Partial
            # files shuffle a copy, so the final order does not depend on when they were written.
            random.Random(f"{self.config.seed}:{job.job_id}:{out_name}").shuffle(file_lines)
            storage.write_object(base + out_name, ("\n".join(file_lines) + ("\n" if file_lines else "")).encode())

    @staticmethod
    def _output_base(job: Job) -> str:
        return job.output_uri.rstrip("/") + "/" + job.job_id + "/"


class PartialOutput:
    """When to rewrite the partial `.out` files of an InProgress job.

    At most every `interval` seconds, and never more often than every 10x the time the last write
    took: each write copies everything processed so far, so this bounds the overhead at ~10 % even
    for a 50,000-record embedding job whose output nears 1 GB.
    """

    def __init__(self, started: float) -> None:
        self.last = started
        self.cost = 0.0

    def due(self, interval: float) -> bool:
        return interval > 0 and time.monotonic() - self.last >= max(interval, 10 * self.cost)

    def write(self, action) -> None:
        started = time.monotonic()
        action()
        self.last = time.monotonic()
        self.cost = self.last - started
