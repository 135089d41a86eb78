"""Start/stop the emulator in-process (`run_emulator`) or in the foreground (the CLI)."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import urllib.request
from typing import Any, Iterator

from werkzeug.serving import make_server

from .admin import Admin
from .catalog import ModelCatalog
from .config import EmulatorConfig
from .control_plane import ControlPlane
from .engines import base_model_id
from .jobs import Job
from .lifecycle import Lifecycle
from .persistence import DataDir
from .runtime import Runtime
from .server import EmulatorApp
from .stats import COUNTERS, Stats

log = logging.getLogger("bedrock_assets.emulator")

POLL_SECONDS = 0.05  # how fast shutdown() is noticed by serve_forever


class Emulator:
    """A running emulator: S3 (moto) + Bedrock batch control plane + bedrock-runtime."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.stats_counters = Stats()
        self.catalog = ModelCatalog(self.config)
        self.control = ControlPlane(self.config, self.catalog, self.stats_counters)
        self.lifecycle = Lifecycle(self.config, self.control, self.catalog)
        self.admin = Admin(self.config, self.control, self.stats_counters)
        self.app = EmulatorApp(self.control, Runtime(self.config, self.catalog, self.stats_counters), self.admin)
        self.data: DataDir | None = None
        self._resumed: list[Job] = []
        if self.config.data_dir:
            # Restored before the port is bound: a bad data directory (DataDirError) stops start-up
            # before any client can see a half-restored emulator.
            self.data = DataDir(self.config.data_dir, self.control)
            self._resumed = self.data.load()
            self.control.on_status_change = lambda: self.data.mark_dirty(urgent=True)
            self.app.on_moto_write = self.data.mark_dirty
        if self.config.log_level.upper() != "DEBUG":
            # werkzeug logs every request line (never headers); keep tests and the CLI quiet.
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = make_server(self.config.host, self.config.port, self.app, threaded=True)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_port

    @property
    def endpoint_url(self) -> str:
        host = self.config.host if self.config.host not in ("0.0.0.0", "::") else "127.0.0.1"
        return f"http://{host}:{self.port}"

    def _start_workers(self) -> None:
        for job in self._resumed:
            self.lifecycle.resume(job)
        self._resumed = []
        self.lifecycle.start()
        if self.data is not None:
            self.data.start()

    def start(self) -> "Emulator":
        """Serve on a background thread (returns at once)."""
        self._start_workers()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": POLL_SECONDS},
            name="emulator-http", daemon=True,
        )
        self._thread.start()
        log.info("emulator listening on %s", self.endpoint_url)
        return self

    def serve_forever(self) -> None:
        """Serve on the calling thread until `shutdown()` is called from elsewhere."""
        self._start_workers()
        log.info("emulator listening on %s", self.endpoint_url)
        self._server.serve_forever(poll_interval=POLL_SECONDS)

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.lifecycle.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.data is not None:
            # Last, after the lifecycle stopped: the jobs it abandoned are saved as they stood
            # (InProgress), and resumed at the next start.
            self.data.shutdown()

    # Convenience wrappers over the admin endpoints (in-process, no HTTP).
    def stats(self) -> dict[str, Any]:
        return self.admin.stats_snapshot()

    def model_stats(self, model_id: str) -> dict[str, Any]:
        """One model's stats entry; accepts profile ids and ARNs (zeros if the model is unseen)."""
        entry = self.stats()["models"].get(base_model_id(model_id))
        if entry is None:
            entry = {"in_flight": 0, "peak_in_flight": 0, **dict.fromkeys(COUNTERS, 0), "jobs_by_status": {}}
        return entry

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change fault/quota knobs at run time (raises ValueError for bad names or values)."""
        return self.config.update(**changes)

    def reset_stats(self) -> None:
        self.admin.reset_stats()

    def env(self) -> dict[str, str]:
        """Environment variables that point AWS SDKs (and polars via them) at this emulator."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "emulator",
            "AWS_SECRET_ACCESS_KEY": "emulator",
            "AWS_DEFAULT_REGION": "us-east-1",
        }


@contextlib.contextmanager
def run_emulator(config: EmulatorConfig | None = None) -> Iterator[Emulator]:
    """Run an emulator on a background thread for the duration of the `with` block."""
    emulator = Emulator(config).start()
    try:
        yield emulator
    finally:
        emulator.shutdown()


class EmulatorClient:
    """The admin endpoints over HTTP, for other processes (Dagster runs, the UI, pytest)."""

    def __init__(self, endpoint_url: str, timeout: float = 10.0) -> None:
        self.base = endpoint_url.rstrip("/") + "/_emulator/"
        self.timeout = timeout

    def _call(self, method: str, route: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        request = urllib.request.Request(self.base + route, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.loads(response.read())

    def health(self) -> dict[str, Any]:
        return self._call("GET", "health")

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "stats")

    def configure(self, **changes: Any) -> dict[str, Any]:
        return self._call("POST", "config", changes)["config"]

    def reset_stats(self) -> None:
        self._call("POST", "reset-stats")
