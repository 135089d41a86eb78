"""Fixtures for tests/deploy: one PostgreSQL server per session, a fresh database and a Dagster
home on the production config per test.  The machinery lives in deploy_support.py."""

from __future__ import annotations

import os
import secrets
import subprocess

import pytest

from deploy_support import PostgresServer, ensure_postgres_installed, render_test_instance_yaml


@pytest.fixture(scope="session")
def postgres_server():
    pytest.importorskip("dagster_postgres", reason="dagster-postgres not installed: pip install -e '.[postgres]'")
    server = PostgresServer(ensure_postgres_installed())
    try:
        server.start()
    except subprocess.CalledProcessError as exc:
        log = server.log_file.read_text()[-2000:] if server.log_file.exists() else ""
        server.stop()
        raise RuntimeError(f"could not start PostgreSQL: {exc.stderr}\n{log}") from exc
    yield server
    server.stop()


@pytest.fixture
def pg_dagster_home(postgres_server, tmp_path, monkeypatch):
    """A fresh database + DAGSTER_HOME on the production config; env set for this process.

    Yields (dagster_home, env) where env is what subprocesses need to reach the same instance.
    """
    dbname = f"dagster_{secrets.token_hex(4)}"
    postgres_server.create_database(dbname)
    home = tmp_path / "dagster_home"
    render_test_instance_yaml(home)
    env = {**postgres_server.env(dbname), "DAGSTER_HOME": str(home)}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    yield home, {**os.environ, **env}
