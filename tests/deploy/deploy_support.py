"""Support code for tests/deploy (imported by conftest.py and the tests; a uniquely named module
because `conftest` is ambiguous with tests/conftest.py on sys.path): a real PostgreSQL server and
a Dagster home whose dagster.yaml is the production deploy/dagster.yaml with only the run
launcher and compute logs swapped.

PostgreSQL: the Debian `postgresql` package.  If initdb/pg_ctl are missing under
/usr/lib/postgresql/*/bin the session fixture installs it with apt-get (root only) and skips,
with the reason, when that is impossible.  The server runs on 127.0.0.1 on a free port with a
throw-away data dir, password (scram) auth over TCP and is stopped at the end of the session.
As root, postgres refuses to run, so every server command goes through `runuser -u postgres`.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PROD_DAGSTER_YAML = DEPLOY / "dagster.yaml"

# The only two blocks a test instance may replace (everything else is the production config):
# - run_launcher: ECS needs an ECS cluster; the default launcher runs the worker locally.
# - compute_logs: S3ComputeLogManager needs a bucket; local files are enough to test.
TEST_OVERRIDES = {
    "run_launcher": {
        "module": "dagster._core.launcher.default_run_launcher",
        "class": "DefaultRunLauncher",
    },
    "compute_logs": {
        "module": "dagster._core.storage.local_compute_log_manager",
        "class": "LocalComputeLogManager",
        "config": {"base_dir": "{dagster_home}/compute_logs"},
    },
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin_dir() -> Path | None:
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(f"{d}/initdb", os.X_OK) and os.access(f"{d}/pg_ctl", os.X_OK):
            return Path(d)
    return None


def ensure_postgres_installed() -> Path:
    found = _pg_bin_dir()
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("PostgreSQL not installed and cannot apt-get install it (not root or no apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            pytest.skip(f"PostgreSQL could not be installed ({' '.join(cmd)} failed: {proc.stderr.strip()[-300:]})")
    found = _pg_bin_dir()
    if not found:
        pytest.skip("apt-get installed postgresql but no initdb/pg_ctl under /usr/lib/postgresql/*/bin")
    return found


class PostgresServer:
    """A throw-away PostgreSQL cluster on 127.0.0.1:<free port>."""

    def __init__(self, bin_dir: Path):
        self.bin_dir = bin_dir
        self.host = "127.0.0.1"
        self.port = free_port()
        self.user = "dagster"
        # Random per session, never printed: the tests pass it only through the environment.
        self.password = secrets.token_urlsafe(24)
        self.root = Path(tempfile.mkdtemp(prefix="bedrock-assets-pg-"))
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log_file = self.root / "postgres.log"
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str, **kw) -> subprocess.CompletedProcess:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self._as_root:
            # postgres refuses to start as root; run its tools as the package's `postgres` user.
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=True, **kw)

    def start(self) -> None:
        self.root.chmod(0o755)  # mkdtemp makes it 0700: the postgres user must traverse it
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        self.socket_dir.mkdir()
        self.data_dir.mkdir()
        if self._as_root:
            for p in (pwfile, self.socket_dir, self.data_dir):
                shutil.chown(p, "postgres", "postgres")
        pwfile.chmod(0o600)
        self._run(
            "initdb", "-D", str(self.data_dir), "-U", self.user, f"--pwfile={pwfile}",
            "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync",
        )
        pwfile.unlink()
        if self._as_root:
            # pg_ctl -l needs a log file the postgres user can write.
            self.log_file.touch()
            shutil.chown(self.log_file, "postgres", "postgres")
        opts = (
            f"-c listen_addresses={self.host} -p {self.port} -c unix_socket_directories={self.socket_dir} "
            # Test speed only; durability does not matter for a throw-away cluster.
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data_dir), "-o", opts, "-l", str(self.log_file), "-w", "-t", "60", "start")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
        except Exception:
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def connect(self, dbname: str = "postgres"):
        import psycopg2

        return psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname=dbname
        )

    def create_database(self, name: str) -> None:
        conn = self.connect()
        conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()

    def env(self, dbname: str) -> dict[str, str]:
        """The DAGSTER_PG_* variables that deploy/dagster.yaml reads."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USERNAME": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": dbname,
        }


def render_test_instance_yaml(dagster_home: Path, keep_production_compute_logs: bool = False) -> dict:
    """Write $DAGSTER_HOME/dagster.yaml = deploy/dagster.yaml with only TEST_OVERRIDES swapped.

    storage, concurrency, run_monitoring, run_retries and telemetry are taken verbatim from the
    production file, so what the tests exercise is the production configuration.  With
    keep_production_compute_logs the S3 compute-log block stays too (used against the emulator,
    whose endpoint boto3 picks up from AWS_ENDPOINT_URL).
    """
    config = yaml.safe_load(PROD_DAGSTER_YAML.read_text())
    swaps = dict(TEST_OVERRIDES)
    if keep_production_compute_logs:
        swaps.pop("compute_logs")
    for key, block in swaps.items():
        assert key in ("run_launcher", "compute_logs"), f"tests may only swap run_launcher/compute_logs, not {key}"
        config[key] = yaml.safe_load(yaml.safe_dump(block).replace("{dagster_home}", str(dagster_home)))
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return config


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def dagster_cli(name: str = "dagster") -> str:
    """A console script of the running venv (dagster, dagster-daemon, dagster-webserver)."""
    return str(Path(sys.executable).with_name(name))


@contextmanager
def background_process(cmd: list[str], env: dict, log_path: Path):
    """Start a long-running process with output to a file (a pipe would fill up and block it:
    run workers launched by a code server inherit its stdout/stderr).  Stopped by its own pid."""
    log = open(log_path, "w")
    # Own session = own process group (pgid == this pid): teardown also reaches the run workers
    # a code server or daemon started, and nothing else.
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        yield proc
    finally:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def log_tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


@contextmanager
def grpc_code_server(args: list[str], env: dict, log_path: Path):
    """`dagster api grpc <args>` on 127.0.0.1:<free port>; yields the port once it answers."""
    port = free_port()
    cmd = [dagster_cli(), "api", "grpc", *args, "-h", "127.0.0.1", "-p", str(port)]
    with background_process(cmd, env, log_path) as proc:
        health = [dagster_cli(), "api", "grpc-health-check", "-h", "127.0.0.1", "-p", str(port)]

        def healthy():
            if proc.poll() is not None:
                raise AssertionError(f"code server exited:\n{log_tail(log_path)}")
            return subprocess.run(health, env=env, capture_output=True, timeout=30).returncode == 0

        wait_for(healthy, timeout=90, interval=0.5, what="gRPC code server")
        yield port
