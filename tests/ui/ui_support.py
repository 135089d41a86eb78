"""Machinery for tests/ui: process groups that really stop, the emulator and `dagster dev` as
subprocesses on free loopback ports, the webserver's GraphQL API over HTTP, headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
ASSETS = ["raw_dataset", "jsonl_shards", "batch_job_outputs", "joined_results"]
# Checks the tests expect at least; any further check defined on the four assets must pass too.
CHECKS = {
    "jsonl_shards": ["shard_limits_respected"],
    "batch_job_outputs": ["one_job_per_shard_attempt"],
    "joined_results": ["every_row_answered_once", "error_rate_below_threshold", "no_duplicate_answers", "answers_match_requests"],
}

# The backfill the UI tests run: three good inputs and one broken one, pool of 2.
BATCH = "jokes"
GOOD = [f"{BATCH}/alpha.csv", f"{BATCH}/beta.csv", f"{BATCH}/gamma.csv"]
# Its column is `subject` but the prompt template needs {topic}: jsonl_shards fails it cleanly.
BROKEN = f"{BATCH}/broken.csv"
POOL_SLOTS = 2
ROWS = 300  # >= 100 records per job (Bedrock's minimum): three shards of 100 per input

SPECS = f"""\
batches:
  {BATCH}:
    model_id: anthropic.claude-3-haiku-20240307-v1:0
    prompt: "Tell me a joke about {{topic}}."
    max_records_per_job: 100
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, seconds: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + seconds
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except AssertionError:
            raise  # the predicate saw something fatal (a process died): no point waiting on
        except Exception as exc:  # noqa: BLE001 - e.g. not listening yet: retried until the deadline
            last_exc = exc
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached within {seconds:.0f}s (last error: {last_exc!r})")


def _default_signals() -> None:
    # A parent without a terminal (CI, pytest under nohup) can hand its children SIGINT/SIGTERM
    # as *ignored*; `dagster dev` then ignores our SIGTERM (docs/bedrock-facts.md, local traps). Reset both.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class GroupProcess:
    """A subprocess in its own session/process group, so stopping it stops everything it started
    (webserver, daemon, code server, run workers) and nothing else."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, cwd: Path = REPO):
        self.args = args
        self.log_path = log
        self._log = open(log, "wb")
        self.proc = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_default_signals,
        )
        self.pgid = self.proc.pid  # session leader: its pid is the group id

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _group_alive(self) -> bool:
        try:
            os.killpg(self.pgid, 0)
            return True
        except ProcessLookupError:
            return False

    def stop(self, grace: float = 60.0) -> str:
        """SIGTERM to the group, wait for the leader *and* the group to go; SIGKILL only as a last
        resort. Returns "terminated" or "killed" so tests can assert a clean stop."""
        how = "terminated"
        if self._group_alive():
            os.killpg(self.pgid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and (self.alive() or self._group_alive()):
                time.sleep(0.2)
            if self.alive() or self._group_alive():
                how = "killed"
                try:
                    os.killpg(self.pgid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()
        return how

    def tail(self, chars: int = 4000) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]


def http_json(url: str, body: dict | None = None, timeout: float = 30) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


class GraphQL:
    def __init__(self, base_url: str):
        self.base_url = base_url
        self.url = base_url + "/graphql"

    def __call__(self, query: str, **variables) -> dict:
        doc = http_json(self.url, {"query": query, "variables": variables}, timeout=60)
        assert not doc.get("errors"), doc["errors"]
        return doc["data"]


def subprocess_env(**extra: str) -> dict[str, str]:
    """This process's env without any real AWS identity, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DAGSTER_", "BEDROCK_ASSETS_"))}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


def start_emulator(workdir: Path, **flags: str) -> tuple[GroupProcess, str]:
    port = free_port()
    args = [sys.executable, "-m", "bedrock_assets.emulator", "--port", str(port)]
    for flag, value in flags.items():
        args += [f"--{flag.replace('_', '-')}", str(value)]
    proc = GroupProcess(args, subprocess_env(), workdir / "emulator.log")
    endpoint = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert proc.alive(), "emulator exited"
        return http_json(endpoint + "/_emulator/health", timeout=2)["status"] == "ok"

    try:
        wait_for(healthy, 60, "emulator health")
    except (TimeoutError, AssertionError):
        proc.stop()
        raise RuntimeError(f"emulator did not start:\n{proc.tail()}") from None
    return proc, endpoint


def init_dagster_home(home: Path, pool_slots: int) -> None:
    """A fresh instance made once, before any process opens it: the repo's dagster.yaml (pools,
    run monitoring, run retries) with the storage created and migrated, and the pool set."""
    import dagster as dg

    from bedrock_assets.settings import BEDROCK_POOL

    home.mkdir(parents=True)
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    # Test-only: notice a dead run worker within seconds instead of the production 30 s.
    config.setdefault("run_monitoring", {}).update(enabled=True, poll_interval_seconds=5)
    config.setdefault("telemetry", {})["enabled"] = False
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.upgrade()
        # What `dagster instance concurrency set bedrock_batch N` does; an explicit limit wins
        # over the yaml's default_limit.
        instance.event_log_storage.set_concurrency_slots(BEDROCK_POOL, pool_slots)
        assert instance.event_log_storage.get_concurrency_info(BEDROCK_POOL).slot_count == pool_slots


def start_dagster_dev(home: Path, env: dict[str, str], workdir: Path) -> tuple[GroupProcess, str]:
    port = free_port()
    proc = GroupProcess(
        [sys.executable, "-m", "dagster", "dev", "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        subprocess_env(DAGSTER_HOME=str(home), **env),
        workdir / "dagster-dev.log",
    )
    base = f"http://127.0.0.1:{port}"
    gql = GraphQL(base)

    def location_loaded() -> bool:
        assert proc.alive(), "dagster dev exited"
        data = gql("{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
                   "locationOrLoadError { __typename ... on PythonError { message } } } } } }")
        entries = data["workspaceOrError"]["locationEntries"]
        for entry in entries:
            if entry["locationOrLoadError"] and entry["locationOrLoadError"]["__typename"] == "PythonError":
                raise AssertionError(f"code location failed to load: {entry['locationOrLoadError']['message']}")
        return bool(entries) and all(e["loadStatus"] == "LOADED" and e["locationOrLoadError"] for e in entries)

    try:
        wait_for(location_loaded, 120, "dagster dev webserver with the code location loaded", interval=1)
    except (TimeoutError, AssertionError) as exc:
        how = proc.stop()
        raise RuntimeError(f"{exc} ({how}); dagster dev log:\n{proc.tail()}") from None
    return proc, base


def run_errors(gql: "GraphQL", run_id: str) -> list[str]:
    """The failure messages of a run (its steps' errors, the run's own, engine errors)."""
    logs = gql(RUN_LOGS, runId=run_id)["logsForRun"]
    return [
        f"{e['__typename']} {e.get('stepKey') or ''}: {e['message']} {(e.get('error') or {}).get('message', '')}".strip()
        for e in logs.get("events", [])
        if e.get("error") or e["__typename"] in ("RunFailureEvent", "ExecutionStepFailureEvent")
    ]


def run_partition(run: dict) -> str:
    """The one partition a backfill run covers (a multi_run(1) run is a range of one)."""
    tags = {t["key"]: t["value"] for t in run["tags"]}
    if "dagster/partition" in tags:
        return tags["dagster/partition"]
    start, end = tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]
    assert start == end, f"run {run['runId']} covers {start}..{end}, not one partition"
    return start


# ---- GraphQL used by the tests ------------------------------------------------------------
LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on PartitionKeysNotFoundError { message }
    ... on UnauthorizedError { message }
  }
}"""

BACKFILL_STATUS = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      status
      numPartitions
      runs { runId status tags { key value } }
      assetBackfillData {
        assetBackfillStatuses {
          __typename
          ... on AssetPartitionsStatusCounts {
            assetKey { path } numPartitionsTargeted numPartitionsMaterialized numPartitionsFailed numPartitionsInProgress
          }
        }
      }
    }
    ... on PythonError { message }
  }
}"""

PARTITION_STATUSES = """
{
  assetNodes(assetKeys: [{path: "raw_dataset"}, {path: "jsonl_shards"}, {path: "batch_job_outputs"}, {path: "joined_results"}]) {
    assetKey { path }
    assetChecksOrError { __typename ... on AssetChecks { checks { name } } }
    assetPartitionStatuses { __typename ... on DefaultPartitionStatuses { materializedPartitions failedPartitions } }
  }
}"""

RUN_LOGS = """
query Logs($runId: ID!) {
  logsForRun(runId: $runId, limit: 5000) {
    __typename
    ... on EventConnection { events { __typename
      ... on MessageEvent { message stepKey }
      ... on ErrorEvent { error { message } }
    } }
  }
}"""

CHECK_EXECUTIONS = """
query Checks($asset: AssetKeyInput!, $check: String!) {
  assetCheckExecutions(assetKey: $asset, checkName: $check, limit: 20) {
    runId status partition
  }
}"""


def chromium_path() -> str:
    """Debian's Chromium; installed with apt-get when missing (root + apt-get), else skip."""
    for name in ("/usr/bin/chromium", "chromium"):
        found = shutil.which(name)
        if found:
            return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("Chromium is not installed and cannot be apt-get installed here (not root or no apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            pytest.skip(f"Chromium could not be installed ({' '.join(cmd)} failed: {proc.stderr.strip()[-300:]})")
    found = shutil.which("/usr/bin/chromium") or shutil.which("chromium")
    if not found:
        pytest.skip("apt-get install chromium succeeded but no chromium binary is on PATH")
    return found


def chromium(binary: str, profile: Path, url: str, *, dump_dom: bool = False, screenshot: Path | None = None,
             budget_ms: int = 15000, timeout: float = 90) -> str:
    """One headless Chromium run: the rendered DOM (--dump-dom) or a screenshot of `url`.

    --virtual-time-budget lets the React app fetch its GraphQL data and render before the dump;
    the flags keep Chromium off every network but loopback (no updates, sync or QUIC)."""
    args = [
        binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--mute-audio", f"--user-data-dir={profile}", "--window-size=1600,1000",
        f"--virtual-time-budget={budget_ms}",
    ]
    if dump_dom:
        args.append("--dump-dom")
    if screenshot is not None:
        args.append(f"--screenshot={screenshot}")
    args.append(url)
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, start_new_session=True)
    assert proc.returncode == 0, f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}"
    return proc.stdout
