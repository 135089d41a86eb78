"""Fixtures for fault-injection tests: a file-backed DAGSTER_HOME shared with run subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

DRIVER = Path(__file__).with_name("run_partition.py")


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A real sqlite DAGSTER_HOME, initialised once before any process uses it."""
    path = tmp_path / "dagster_home"
    path.mkdir()
    (path / "dagster.yaml").write_text(
        yaml.safe_dump({"concurrency": {"pools": {"default_limit": 20}}, "telemetry": {"enabled": False}})
    )
    monkeypatch.setenv("DAGSTER_HOME", str(path))
    with dg.DagsterInstance.get() as instance:
        instance.get_runs()  # creates + migrates the sqlite storage before concurrent use
    return path


@pytest.fixture
def instance_at_home(home):
    with dg.DagsterInstance.get() as instance:
        yield instance


class RunProcess:
    def __init__(self, args: list[str], env: dict[str, str]):
        self.proc = subprocess.Popen(
            [sys.executable, str(DRIVER), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: the step workers die with it
        )

    def kill_group(self, sig=signal.SIGKILL) -> None:
        os.killpg(self.proc.pid, sig)

    def wait(self, timeout: float = 240) -> str:
        out, _ = self.proc.communicate(timeout=timeout)
        return out


@pytest.fixture
def start_run():
    procs: list[RunProcess] = []

    def _start(*args: str, extra_env: dict[str, str] | None = None) -> RunProcess:
        proc = RunProcess(list(args), {**os.environ, **(extra_env or {})})
        procs.append(proc)
        return proc

    yield _start
    for p in procs:
        if p.proc.poll() is None:
            p.kill_group()
            p.proc.wait(timeout=30)


def wait_until(predicate, timeout: float = 120, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
