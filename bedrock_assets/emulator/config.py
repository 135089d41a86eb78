"""Emulator settings: the CLI flags, the in-process `EmulatorConfig`, and run-time fault knobs."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


def is_transient(code: int) -> bool:
    """Per-record error codes: 429 and 5xx are transient (a resubmission usually succeeds);
    other 4xx, e.g. 400 (a per-record ValidationException), are permanent."""
    return code == 429 or code >= 500


DEFAULT_ACCOUNT_ID = "123456789012"

# Fields that POST /_emulator/config may change while the emulator runs.
RUNTIME_FIELDS = (
    "max_concurrent_jobs",
    "min_records",
    "max_records",
    "max_input_file_bytes",
    "submitted_seconds",
    "validating_seconds",
    "queue_seconds",
    "records_per_second",
    "record_error_rate",
    "record_error_codes",
    "record_error_ids",
    "throttle_rate",
    "runtime_throttle_rate",
    "seconds_per_hour",
    "partial_output_seconds",
)


@dataclass
class EmulatorConfig:
    """Everything the emulator can be told; every CLI flag maps to one field.

    `port=0` picks a free port (use it in tests). Fields listed in RUNTIME_FIELDS can be changed
    while running through `Emulator.configure(...)` or POST /_emulator/config.
    """

    host: str = "127.0.0.1"
    port: int = 4566
    # Quotas (docs/bedrock-facts.md §3): 20 submitted+in-progress jobs per model, 100..50,000 records, 1 GB per file.
    max_concurrent_jobs: int = 20
    min_records: int = 100
    max_records: int = 50_000
    max_input_file_bytes: int = 1024**3
    # Lifecycle pacing. A new job is Submitted, then Validating, then Scheduled (docs/bedrock-facts.md
    # §2). The short non-zero defaults make every job show both early states to a client polling
    # every few tenths of a second, so clients meet them in every test, at ~0.1 s per job.
    submitted_seconds: float = 0.05
    validating_seconds: float = 0.05
    queue_seconds: float = 0.0
    records_per_second: float = 0.0
    record_error_rate: float = 0.0
    record_error_codes: tuple[int, ...] = (429, 500)
    # Exactly these recordIds fail (with the first of record_error_codes) the first time they are
    # processed: for tests that need an exact number of failed records.
    record_error_ids: tuple[str, ...] = ()
    throttle_rate: float = 0.0
    # bedrock-runtime throttling; None means "same as throttle_rate".
    runtime_throttle_rate: float | None = None
    seed: int = 0
    # Emulator-only: real seconds per emulated hour, so 24..168-hour job timeouts can be exercised.
    seconds_per_hour: float = 3600.0
    # While InProgress, rewrite each input file's `.out` with the lines processed so far at most
    # this often (AWS: "InProgress - You can start viewing the results in the output S3 location").
    # 0 turns partial output off. A job that finishes within the interval writes no partial file.
    partial_output_seconds: float = 1.0
    embedding_engine: str = "hash"
    openai_base_url: str | None = None
    openai_model: str | None = None
    openai_timeout_seconds: float = 120.0
    account_id: str = DEFAULT_ACCOUNT_ID
    # Lifecycle worker threads that process InProgress jobs concurrently.
    worker_threads: int = 4
    log_level: str = "INFO"
    # Keep S3 objects and Bedrock jobs in this directory and restore them at start (persistence.py,
    # docs/emulator.md "Data directory"). None: everything lives in memory and nothing is written.
    data_dir: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in RUNTIME_FIELDS:
            setattr(self, name, _coerce(name, getattr(self, name)))
        if self.embedding_engine not in ("hash", "minilm"):
            raise ValueError(f"unknown embedding engine {self.embedding_engine!r} (choose hash or minilm)")

    def update(self, **changes: Any) -> dict[str, Any]:
        """Apply run-time changes (validated) and return the new values of RUNTIME_FIELDS."""
        unknown = sorted(set(changes) - set(RUNTIME_FIELDS))
        if unknown:
            raise ValueError(f"not changeable at run time: {', '.join(unknown)}")
        coerced = {name: _coerce(name, value) for name, value in changes.items()}
        with self._lock:
            for name, value in coerced.items():
                setattr(self, name, value)
        return self.runtime_values()

    def runtime_values(self) -> dict[str, Any]:
        with self._lock:
            values = {name: getattr(self, name) for name in RUNTIME_FIELDS}
        values["record_error_codes"] = list(values["record_error_codes"])
        values["record_error_ids"] = list(values["record_error_ids"])
        return values

    def effective_runtime_throttle_rate(self) -> float:
        rate = self.runtime_throttle_rate
        return self.throttle_rate if rate is None else rate


def _coerce(name: str, value: Any) -> Any:
    if name == "record_error_codes":
        codes = parse_error_codes(value)
        return codes
    if name == "record_error_ids":
        if isinstance(value, str):
            value = [part for part in value.split(",") if part]
        return tuple(str(v) for v in value)
    if name == "runtime_throttle_rate" and value is None:
        return None
    if name in ("max_concurrent_jobs", "min_records", "max_records", "max_input_file_bytes"):
        number = int(value)
        if number < 0:
            raise ValueError(f"{name} must be >= 0")
        return number
    number = float(value)
    if name.endswith("_rate") and not 0.0 <= number <= 1.0:
        raise ValueError(f"{name} must be within [0, 1]")
    if number < 0:
        raise ValueError(f"{name} must be >= 0")
    if name == "seconds_per_hour" and number <= 0:
        raise ValueError("seconds_per_hour must be > 0")
    return number


def parse_error_codes(value: Any) -> tuple[int, ...]:
    """Accept "429,500", [429, 500] or 400 and return a non-empty tuple of HTTP-like codes."""
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, int):
        parts = [value]
    else:
        parts = list(value)
    codes = tuple(int(part) for part in parts)
    if not codes or any(not 400 <= code <= 599 for code in codes):
        raise ValueError("record_error_codes must be a non-empty list of 4xx/5xx codes")
    return codes
