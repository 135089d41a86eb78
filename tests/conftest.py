"""Shared fixtures: one real emulator per session (HTTP on a free loopback port), a fresh bucket
and env per test, and real sqlite-backed Dagster instances in temp dirs."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from emulator_env import point_at_emulator

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def emulator():
    from bedrock_assets.emulator import EmulatorConfig, run_emulator

    with run_emulator(EmulatorConfig(host="127.0.0.1", port=0, seed=0)) as emu:
        emu.baseline_faults = emu.configure()  # restored after every test that changes them
        yield emu


@pytest.fixture
def aws_env(emulator, monkeypatch, tmp_path):
    """Env pointing boto3/polars/Dagster (and their subprocesses) at the emulator, a fresh bucket."""
    bucket = f"ba-test-{uuid.uuid4().hex[:12]}"
    env, s3 = point_at_emulator(monkeypatch, emulator, bucket)
    yield SimpleNamespace(bucket=bucket, s3=s3, endpoint=emulator.endpoint_url, emulator=emulator, env=env)
    emulator.configure(**emulator.baseline_faults)


@pytest.fixture
def write_specs(tmp_path, monkeypatch):
    """Write a batch specs YAML for this test and point BEDROCK_ASSETS_SPECS at it."""

    def _write(yaml_text: str) -> Path:
        path = tmp_path / "batches.yaml"
        path.write_text(textwrap.dedent(yaml_text))
        monkeypatch.setenv("BEDROCK_ASSETS_SPECS", str(path))
        return path

    return _write


@pytest.fixture
def instance(tmp_path):
    """A real sqlite-backed instance in a temp DAGSTER_HOME (pools are honoured there)."""
    import dagster as dg

    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(
        temp_dir=str(home),
        overrides={"concurrency": {"pools": {"default_limit": 20}}},
    ) as inst:
        yield inst


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
