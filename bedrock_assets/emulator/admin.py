"""Unsigned admin endpoints under /_emulator/ (a path no AWS service uses).

GET  /_emulator/health       {"status": "ok"}
GET  /_emulator/stats        {"models": {<base model id>: {...}}, "totals": {...}, "config": {...}}
POST /_emulator/config       body {"throttle_rate": 0.5, ...} -> {"config": {...}}
POST /_emulator/reset-stats  -> {"reset": true}
GET  /_emulator/jobs         {"jobs": [<GetModelInvocationJob shape>, ...]}
"""

from __future__ import annotations

import json
import logging
from typing import Any

from . import errors
from .config import EmulatorConfig
from .control_plane import ControlPlane
from .stats import Stats

log = logging.getLogger("bedrock_assets.emulator")


class Admin:
    def __init__(self, config: EmulatorConfig, control: ControlPlane, stats: Stats) -> None:
        self.config = config
        self.control = control
        self.stats = stats

    def stats_snapshot(self) -> dict[str, Any]:
        snapshot = self.stats.snapshot(self.control.in_flight_by_model(), self.control.status_by_model())
        snapshot["config"] = self.config.runtime_values()
        return snapshot

    def configure(self, changes: dict[str, Any]) -> dict[str, Any]:
        try:
            values = self.config.update(**changes)
        except (ValueError, TypeError) as exc:
            raise errors.validation(str(exc)) from None
        log.info("emulator config changed: %s", ", ".join(sorted(changes)))
        return {"config": values}

    def reset_stats(self) -> dict[str, Any]:
        self.stats.reset(self.control.in_flight_by_model())
        return {"reset": True}

    def handle(self, environ: dict[str, Any], route: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        method = environ.get("REQUEST_METHOD", "GET")
        route = route.strip("/")
        if method == "GET" and route == "health":
            return 200, {"status": "ok"}, {}
        if method == "GET" and route == "stats":
            return 200, self.stats_snapshot(), {}
        if method == "GET" and route == "jobs":
            with self.control.lock:
                jobs = [job.summary() for job in self.control.jobs.values()]
            return 200, {"jobs": jobs}, {}
        if method == "POST" and route == "config":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length else b"{}"
            try:
                changes = json.loads(raw or b"{}")
            except ValueError:
                raise errors.validation("config body must be a JSON object") from None
            if not isinstance(changes, dict):
                raise errors.validation("config body must be a JSON object")
            return 200, self.configure(changes), {}
        if method == "POST" and route == "reset-stats":
            return 200, self.reset_stats(), {}
        raise errors.not_found(f"No admin endpoint {method} /_emulator/{route}")
