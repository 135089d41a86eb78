"""`bedrock-assets smoke` against a real in-process emulator, through the CLI entry point, plus the
pure comparison on hand-made observations (a broken expectation must show as FAIL).

The command exists to be run on AWS by users; here it must come out green against the emulator,
because the emulator *is* the set of assumptions it checks.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest

from bedrock_assets import smoke
from bedrock_assets.emulator import EmulatorClient, EmulatorConfig, run_emulator

REPO = Path(__file__).resolve().parents[2]
# Recognisable placeholder credentials: the report must never contain them.
KEY_ID, SECRET = "AKIASMOKEPLACEHOLDER", "smoke-placeholder-secret-value"


@pytest.fixture(scope="module")
def emu():
    # Slow enough that 0.3 s polls meet every state (Scheduled via the queue time, InProgress via
    # the record rate) and the output folder is listed while the job runs.
    config = EmulatorConfig(host="127.0.0.1", port=0, submitted_seconds=0.7, validating_seconds=0.7,
                            queue_seconds=0.7, records_per_second=40)
    with run_emulator(config) as emulator:
        yield emulator


def env_for(emu, tmp_path: Path, bucket: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BEDROCK_ASSETS_", "DAGSTER_"))}
    env.update(HOME=str(tmp_path), PYTHONPATH=str(REPO), AWS_ENDPOINT_URL=emu.endpoint_url, AWS_ACCESS_KEY_ID=KEY_ID,
               AWS_SECRET_ACCESS_KEY=SECRET, AWS_REGION="us-east-1", BEDROCK_ASSETS_BUCKET=bucket,
               BEDROCK_ASSETS_POLL_SECONDS="0.3")
    return env


def smoke_cli(emu, tmp_path: Path, bucket: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bedrock_assets.cli", "smoke", *args], cwd=tmp_path,
                          env=env_for(emu, tmp_path, bucket), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=300)


def bedrock(emu):
    return boto3.client("bedrock", endpoint_url=emu.endpoint_url, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def table_rows() -> list[str]:
    """First column of docs/emulator.md's "Assumed behaviours and their sources" table."""
    text = (REPO / "docs" / "emulator.md").read_text()
    section = text.split("## Assumed behaviours and their sources", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| ")]
    return [r for r in rows if r != "Behaviour"]


def test_every_table_row_has_an_assumption():
    assert list(smoke.ASSUMPTIONS) == table_rows()


@pytest.mark.parametrize("model", sorted(smoke.MODELS))
def test_green_on_the_emulator(emu, tmp_path, model):
    bucket = f"smoke-{uuid.uuid4().hex[:12]}"
    done = smoke_cli(emu, tmp_path, bucket, "--yes", "--model", model, "--report", "out/report")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "maximum cost: $" in done.stdout
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    md = (tmp_path / "out" / "report.md").read_text()
    verdicts = {a["behaviour"]: a["verdict"] for a in doc["assumptions"]}
    assert list(verdicts) == table_rows()
    checked = [b for b, v in verdicts.items() if v != "not observable"]
    assert all(verdicts[b] == "pass" for b in checked), verdicts
    assert {"State sequence", "Output layout", "Stop on an ended job", "Unknown model id", "JSONL line splitting",
            "Idempotency", "modelId read back", "Records without recordId"} <= set(checked)
    seq = next(a for a in doc["assumptions"] if a["behaviour"] == "State sequence")["observed"]
    assert seq.startswith("Submitted → Validating → Scheduled → InProgress → Completed"), seq
    partial = next(a for a in doc["assumptions"] if a["behaviour"] == "Partial output while InProgress")["observed"]
    assert not partial.startswith("0 listing"), partial  # the folder was really listed mid-job
    assert doc["passed"] is True and doc["environment"]["model"] == model
    for behaviour in checked:
        assert f"| {behaviour} | pass |" in md
    for text in (json.dumps(doc), md, done.stdout, done.stderr):  # credentials are never written or logged
        assert KEY_ID not in text and SECRET not in text
    # One job was created for this run (the replay returned it); the unknown model made none.
    jobs = bedrock(emu).list_model_invocation_jobs(nameContains="ba-smoke-")["invocationJobSummaries"]
    assert doc["environment"]["job_arn"] in {j["jobArn"] for j in jobs}


def test_an_emulator_that_behaves_otherwise_shows_fail(tmp_path):
    """An emulator set, through its admin API, to a minimum job size above 100 fails the job at
    Validating, as AWS would if its minimum were higher: the run reports FAIL and exits 1."""
    with run_emulator(EmulatorConfig(host="127.0.0.1", port=0)) as other:
        EmulatorClient(other.endpoint_url).configure(min_records=101)
        done = smoke_cli(other, tmp_path, f"smoke-{uuid.uuid4().hex[:12]}", "--yes", "--report", "r")
    assert done.returncode == 1, done.stdout + done.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    verdicts = {a["behaviour"]: a["verdict"] for a in doc["assumptions"]}
    assert doc["passed"] is False and doc["environment"]["final_status"] == "Failed"
    assert verdicts["Validating checks"] == verdicts["State sequence"] == "FAIL"
    assert verdicts["Unknown model id"] == verdicts["Idempotency"] == "pass"  # the free calls still observed
    assert "FAIL Validating checks" in done.stdout


def test_a_run_stopped_half_way_still_reports(emu, tmp_path):
    """Create refused (a role ARN Bedrock rejects): one error line, a report saying where it
    stopped, exit 1; the calls it never reached are FAIL for want of an observation."""
    env = env_for(emu, tmp_path, f"smoke-{uuid.uuid4().hex[:12]}") | {"BEDROCK_ROLE_ARN": "not-a-role-arn"}
    done = subprocess.run([sys.executable, "-m", "bedrock_assets.cli", "smoke", "--yes", "--report", "r"], cwd=tmp_path,
                          env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and "stopped early" in done.stderr and "Traceback" not in done.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["passed"] is False and "ValidationException" in doc["environment"]["aborted"]
    assert [a["behaviour"] for a in doc["assumptions"]] == table_rows()


def test_refuses_without_confirmation(emu, tmp_path):
    bucket = f"smoke-{uuid.uuid4().hex[:12]}"
    client = bedrock(emu)
    before = len(client.list_model_invocation_jobs(maxResults=1000)["invocationJobSummaries"])
    done = smoke_cli(emu, tmp_path, bucket)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "--yes" in done.stderr, done.stderr
    assert "maximum cost: $" in done.stdout  # the cost was stated before refusing
    assert len(client.list_model_invocation_jobs(maxResults=1000)["invocationJobSummaries"]) == before
    s3 = boto3.client("s3", endpoint_url=emu.endpoint_url, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    assert bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}  # nothing created, not even the bucket
    assert not list(tmp_path.glob("smoke-report*"))


@pytest.mark.parametrize("answer, code", [("no", 2), ("yes", 0)])
def test_the_typed_answer_decides(emu, tmp_path, answer, code):
    """At a terminal the command asks; only `yes` starts it (the answer is typed into a pty)."""
    import pty

    bucket = f"smoke-{uuid.uuid4().hex[:12]}"
    master, slave = pty.openpty()
    try:
        os.write(master, f"{answer}\n".encode())  # waits in the terminal's line buffer for input()
        done = subprocess.run([sys.executable, "-m", "bedrock_assets.cli", "smoke", "--report", "r"], cwd=tmp_path,
                              env=env_for(emu, tmp_path, bucket), stdin=slave, capture_output=True, text=True, timeout=300)
    finally:
        os.close(slave)
        os.close(master)
    assert done.returncode == code, done.stdout + done.stderr
    assert "Type yes to start" in done.stdout
    assert (tmp_path / "r.json").exists() == (answer == "yes")
    if answer == "no":
        assert done.stderr.strip() == "error: not started: the answer was not yes"


def test_the_cost_bound_is_a_few_cents_at_most():
    for model in smoke.MODELS:
        lines = smoke.build_lines(model, "20261208t000000-abcdef")
        assert len(lines) == smoke.RECORDS
        one, bound = smoke.max_cost(model, lines)
        assert bound is not None and 0 < bound < 0.05, (model, one)


# --- the comparison on hand-made observations ---------------------------------------------------

ARN = "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abcdefghijkl"


def good_observation() -> dict:
    n = smoke.RECORDS
    counts = lambda total, done, ok, err: dict(totalRecordCount=total, processedRecordCount=done,  # noqa: E731
                                               successRecordCount=ok, errorRecordCount=err)
    sent = [f"smoke-{i:03d}" for i in range(n - 3)] + [smoke.LS_ID]
    lines = [{"recordId": r, "keys": ["modelInput", "modelOutput", "recordId"], "error": None, "has_output": True} for r in sent]
    lines.append({"recordId": smoke.BAD_ID, "keys": ["error", "modelInput", "recordId"],
                  "error": {"errorCode": 400, "errorMessage": "Malformed input request"}, "has_output": False})
    lines.append({"recordId": "CALL0000001", "keys": ["modelInput", "modelOutput", "recordId"], "error": None, "has_output": True})
    return {
        "records_sent": n, "bad_id": smoke.BAD_ID, "ls_id": smoke.LS_ID, "region": "us-east-1",
        "model_id": "amazon.titan-embed-text-v2:0", "job_arn": ARN, "replay_arn": ARN, "job_id": "abcdefghijkl",
        "input_file": smoke.SHARD, "output_prefix": "s3://b/outputs/smoke/x/shard-00000/",
        "polls": [{"t": 0, "status": "Submitted", **counts(0, 0, 0, 0)}, {"t": 1, "status": "Validating", **counts(0, 0, 0, 0)},
                  {"t": 2, "status": "Scheduled", **counts(n, 0, 0, 0)}, {"t": 3, "status": "InProgress", **counts(n, 40, 40, 0)},
                  {"t": 4, "status": "Completed", **counts(n, n, n - 1, 1)}],
        "keys_while_running": [["abcdefghijkl/shard-00000.jsonl.out"]],
        "final": {"status": "Completed", "message": None, "modelId": "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0",
                  **counts(n, n, n - 1, 1)},
        "output_keys": ["abcdefghijkl/manifest.json.out", "abcdefghijkl/shard-00000.jsonl.out"],
        "manifest": {**counts(n, n, n - 1, 1), "inputTokenCount": 1000, "outputTokenCount": 0},
        "lines": lines, "parsed": {"rows": n, "answered": n - 1, "errors": 1},
        "stop_ended": {"code": "ValidationException", "http": 400,
                       "message": f"Job {ARN} cannot be stopped. State was: Completed"},
        "unknown_model": {"code": "ValidationException", "http": 400, "message": "The provided model identifier is invalid."},
        "get_missing": {"code": "ResourceNotFoundException", "http": 404, "message": "not found"},
    }


def test_a_good_observation_passes_everything_it_checks():
    checks = smoke.evaluate(good_observation())
    assert [c.behaviour for c in checks] == list(smoke.ASSUMPTIONS)
    assert all(c.passed for c in checks if c.checked), [c for c in checks if c.checked and not c.passed]


def _set(path: str, value):
    def change(obs: dict) -> None:
        *parents, last = path.split(".")
        target = obs
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return change


def _drop_status(status: str):
    def change(obs: dict) -> None:
        obs["polls"] = [p for p in obs["polls"] if p["status"] != status]
    return change


# Each: a way real Bedrock could differ from the emulator, and the row that must then say FAIL.
BROKEN = [
    ("backwards state", lambda o: o["polls"].insert(3, dict(o["polls"][1])), "State sequence"),
    ("unknown state", _set("polls.2.status", "Queued"), "State sequence"),
    ("counts while validating", _set("polls.1.totalRecordCount", 100), "Record counts"),
    ("processed goes down", lambda o: o["polls"].insert(4, dict(o["polls"][3], processedRecordCount=10)), "Record counts"),
    ("nested output", _set("output_keys", ["abcdefghijkl/in/shard-00000.jsonl.out", "abcdefghijkl/manifest.json.out"]), "Output layout"),
    ("no manifest", lambda o: o.pop("manifest"), "Manifest fields"),
    ("manifest without outputTokenCount", lambda o: o["manifest"].pop("outputTokenCount"), "Manifest fields"),
    ("manifest the pipeline cannot read", _set("manifest_read_error", "ComputeError: not ndjson"), "Manifest fields"),
    ("a line that is not JSON", _set("lines.5", {"recordId": None, "keys": ["<not JSON>"], "error": None, "has_output": False}),
     "Output line / error line"),
    ("error code as a string", _set("lines.98.error", {"errorCode": "400", "errorMessage": "x"}), "Output line / error line"),
    ("line with both", _set("lines.0.error", {"errorCode": 500, "errorMessage": "x"}), "Output line / error line"),
    ("generated id form", _set("lines.99.recordId", "00000001"), "Records without recordId"),
    ("manifest early", _set("keys_while_running", [["abcdefghijkl/manifest.json.out"]]), "Partial output while InProgress"),
    ("stop on ended: conflict", _set("stop_ended", {"code": "ConflictException", "http": 400, "message": "x"}), "Stop on an ended job"),
    ("stop on ended: other text", _set("stop_ended.message", "Job cannot be stopped"), "Stop on an ended job"),
    ("modelId as sent", _set("final.modelId", "amazon.titan-embed-text-v2:0"), "modelId read back"),
    ("unknown model: other text", _set("unknown_model.message", "Model not found"), "Unknown model id"),
    ("unknown model accepted", _set("unknown_model", {"code": None, "http": 200, "message": "accepted"}), "Unknown model id"),
    ("U+2028 split", lambda o: o["lines"].pop(97), "JSONL line splitting"),
    ("bad body fails the job", _set("final.status", "Failed"), "Validating checks"),
    ("replay made a second job", _set("replay_arn", ARN[:-1] + "z"), "Idempotency"),
    ("missing job is a 400", _set("get_missing", {"code": "ValidationException", "http": 400, "message": "x"}), "Error codes on the wire"),
]


@pytest.mark.parametrize("change, behaviour", [(c, b) for _, c, b in BROKEN], ids=[name for name, _, _ in BROKEN])
def test_a_broken_expectation_shows_as_fail(change, behaviour):
    obs = copy.deepcopy(good_observation())
    change(obs)
    checks = {c.behaviour: c for c in smoke.evaluate(obs)}
    assert checks[behaviour].checked and checks[behaviour].passed is False
    assert checks[behaviour].verdict == "FAIL"


def test_the_report_says_fail_and_lists_every_row(tmp_path):
    obs = good_observation()
    obs["final"]["modelId"] = "amazon.titan-embed-text-v2:0"
    json_path, md_path = smoke.write_report(tmp_path / "r", smoke.evaluate(obs), {"region": "us-east-1"})
    doc = json.loads(json_path.read_text())
    assert doc["passed"] is False
    assert [a["behaviour"] for a in doc["assumptions"]] == table_rows()
    assert re.search(r"\| modelId read back \| FAIL \|", md_path.read_text())
