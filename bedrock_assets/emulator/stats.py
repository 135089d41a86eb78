"""Counters served by GET /_emulator/stats, keyed by base model id (ARN/profile prefixes removed)."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

COUNTERS = (
    "jobs_created",        # CreateModelInvocationJob calls that created a job
    "create_replays",      # calls answered from clientRequestToken (nothing created)
    "create_throttled",    # ThrottlingException answered on create
    "quota_rejections",    # ServiceQuotaExceededException answered on create
    "runtime_invocations", # InvokeModel + Converse calls that reached a model engine
    "runtime_throttled",   # ThrottlingException answered by bedrock-runtime
)


class Stats:
    """Thread-safe per-model counters plus in-flight job tracking (current and peak)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTERS, 0))
        self._peak: dict[str, int] = defaultdict(int)

    def count(self, model: str, counter: str, amount: int = 1) -> None:
        with self._lock:
            self._counters[model][counter] += amount

    def observe_in_flight(self, model: str, in_flight: int) -> None:
        with self._lock:
            self._counters[model]  # register the model
            self._peak[model] = max(self._peak[model], in_flight)

    def reset(self, current_in_flight: dict[str, int]) -> None:
        with self._lock:
            self._counters.clear()
            self._peak.clear()
            for model, in_flight in current_in_flight.items():
                self._counters[model]
                self._peak[model] = in_flight

    def snapshot(self, in_flight: dict[str, int], by_status: dict[str, dict[str, int]]) -> dict[str, Any]:
        with self._lock:
            models = set(self._counters) | set(in_flight) | set(by_status)
            result: dict[str, Any] = {}
            for model in sorted(models):
                counters = dict(self._counters.get(model) or dict.fromkeys(COUNTERS, 0))
                current = in_flight.get(model, 0)
                result[model] = {
                    "in_flight": current,
                    "peak_in_flight": max(self._peak.get(model, 0), current),
                    **counters,
                    "jobs_by_status": by_status.get(model, {}),
                }
        totals = {key: sum(entry[key] for entry in result.values()) for key in ("in_flight",) + COUNTERS}
        return {"models": result, "totals": totals}
