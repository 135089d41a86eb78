"""Deterministic fault injection: throttled API calls and per-record error lines.

Rules (documented in docs/emulator.md):
- API throttling draws from a `random.Random(seed)` stream per API family (control plane,
  runtime), so a given seed and call order always throttles the same calls.
- A record's fate is derived from hash(seed, record key, attempt), where the record key is the
  recordId plus the canonical JSON of its modelInput (never the job id) and `attempt` counts how
  many times this emulator process has already processed that same record (0 for the first).
  The error code is hash(seed, record key) -> one of `record_error_codes`, fixed per record.
  - transient codes (429 and any 5xx): each attempt fails independently with probability
    `record_error_rate`, so a record that failed in one job usually succeeds when resubmitted.
  - permanent codes (any other 4xx, e.g. 400): the record fails on every attempt if it failed on
    its first one, like a malformed body would.
"""

from __future__ import annotations

import hashlib
import json
import random
import struct
import threading
from typing import Any

from .config import is_transient

ERROR_MESSAGES = {
    400: "Malformed input request, please reformat your input and try again. (emulated fault)",
    408: "Model invocation timed out. (emulated fault)",
    424: "The model returned an error. (emulated fault)",
    429: "Too many requests, please wait before trying again. (emulated fault)",
    500: "The server encountered an internal error while processing the request. (emulated fault)",
    503: "The service is temporarily unavailable, please try again later. (emulated fault)",
}


def unit_interval(seed: int, *parts: Any) -> float:
    """A reproducible number in [0, 1) from the seed and any parts."""
    digest = hashlib.blake2b(repr((seed,) + parts).encode(), digest_size=8).digest()
    return struct.unpack(">Q", digest)[0] / 2**64


def record_key(record_id: str, model_input: Any) -> str:
    canonical = json.dumps(model_input, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(f"{record_id}\x00{canonical}".encode(), digest_size=16).hexdigest()


class ThrottleDecider:
    """Seeded stream of throttle decisions, one per API call."""

    def __init__(self, seed: int, family: str) -> None:
        self._random = random.Random(f"{seed}:{family}")
        self._lock = threading.Lock()

    def throttle(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return self._random.random() < rate


class RecordFaults:
    """Decides which records of a job come back as error lines (see the module rules)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._attempts: dict[str, int] = {}
        self._lock = threading.Lock()

    def decide(
        self, keys: list[tuple[str, Any]], rate: float, codes: tuple[int, ...], targeted: tuple[str, ...] = ()
    ) -> list[int | None]:
        """Return an error code (or None for success) per (recordId, modelInput).

        Records named in `targeted` fail with `codes[0]` on their first processing only."""
        if targeted:
            return self._decide_targeted(keys, rate, codes, frozenset(targeted))
        if rate <= 0 or not keys:
            return [None] * len(keys)
        record_keys = [record_key(record_id, model_input) for record_id, model_input in keys]
        with self._lock:
            attempts = []
            for key in record_keys:
                attempt = self._attempts.get(key, 0)
                self._attempts[key] = attempt + 1
                attempts.append(attempt)
        decisions: list[int | None] = []
        for key, attempt in zip(record_keys, attempts):
            code = codes[int(unit_interval(self.seed, key, "code") * len(codes))]
            draw_attempt = attempt if is_transient(code) else 0
            failed = unit_interval(self.seed, key, draw_attempt) < rate
            decisions.append(code if failed else None)
        return decisions


    def _decide_targeted(self, keys, rate, codes, targeted: frozenset[str]) -> list[int | None]:
        random_part = self.decide([k for k in keys if k[0] not in targeted], rate, codes)
        it = iter(random_part)
        decisions: list[int | None] = []
        with self._lock:
            for record_id, model_input in keys:
                if record_id not in targeted:
                    decisions.append(next(it))
                    continue
                key = "targeted\x00" + record_key(record_id, model_input)
                attempt = self._attempts.get(key, 0)
                self._attempts[key] = attempt + 1
                decisions.append(codes[0] if attempt == 0 else None)
        return decisions


def error_message(code: int) -> str:
    return ERROR_MESSAGES.get(code, f"Emulated record error {code}.")
