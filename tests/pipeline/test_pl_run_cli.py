"""A first hour through the CLI only, from an empty temp dir: own CSV + own spec -> `bedrock-assets
run --emulator` -> a results file with every row; the notebook API gives the same rows; every
usual mistake is one line on stderr (never a traceback) and a non-zero exit code.

Commands run as subprocesses with a clean environment (no AWS_*, no DAGSTER_HOME, HOME in the temp
dir so no ~/.aws config is read), as on a fresh machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[2]
SPEC = """
batches:
  mine:
    model_id: anthropic.claude-3-haiku-20240307-v1:0
    prompt: "Say something about {topic}, for {audience}."
    params: {max_tokens: 100}
"""


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BEDROCK_ASSETS_", "DAGSTER_"))}
    env.update(HOME=str(tmp_path), PYTHONPATH=str(REPO), **extra)
    return env


def cli(tmp_path: Path, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bedrock_assets.cli", *args], cwd=tmp_path, env=clean_env(tmp_path, **env),
        capture_output=True, text=True, timeout=timeout,
    )


def one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def own_files(tmp_path):
    # 250 rows, with the commas, quotes and non-ASCII a real CSV has.
    frame = pl.DataFrame({
        "topic": [f'topic {i}, "quoted" é' for i in range(250)],
        "audience": ["kids" if i % 2 else "adults" for i in range(250)],
    })
    frame.write_csv(tmp_path / "my data.csv")
    (tmp_path / "my_spec.yaml").write_text(SPEC)
    return frame


def test_own_csv_and_spec_to_results_in_one_command_and_the_notebook_gives_the_same_rows(tmp_path, own_files, monkeypatch):
    proc = cli(tmp_path, "run", "mine", "my data.csv", "--specs", "my_spec.yaml", "--name", "my_data.csv", "--emulator")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "DEBUG" not in proc.stdout + proc.stderr, proc.stderr[-3000:]
    out = tmp_path / "results" / "mine" / "my_data.csv.parquet"
    results = pl.read_parquet(out)
    assert results.height == 250 and results["status"].to_list() == ["succeeded"] * 250
    assert results["topic"].to_list() == own_files["topic"].to_list()  # every row, in input order
    summary = proc.stdout[proc.stdout.index("partition"):]
    assert "mine/my_data.csv" in summary and " 250 " in summary, summary
    progress = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    assert 1 <= len(progress) <= 10, progress  # one line per stage, not one per poll
    assert (tmp_path / ".dagster_home" / "dagster.yaml").exists()  # DAGSTER_HOME defaulted

    # The notebook API on the same rows (a DataFrame, the spec as a dict) returns the same answers.
    import yaml

    from bedrock_assets import run_batch

    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith(("AWS_", "BEDROCK_ASSETS_", "DAGSTER_HOME"))]:
        monkeypatch.delenv(key)
    before = dict(os.environ)
    spec = yaml.safe_load(SPEC)["batches"]["mine"]
    frame = own_files.to_pandas()
    answers = run_batch(frame, spec, batch="mine", emulator=True, progress=False)
    assert type(answers).__module__.startswith("pandas")  # pandas in, pandas out
    assert dict(os.environ) == before  # the notebook's environment is left as it was
    nb = pl.from_pandas(answers)
    cols = ["topic", "audience", "response", "stop_reason", "status", "request_digest"]
    assert nb.select(cols).equals(results.select(cols))


def test_usual_mistakes_are_one_line_and_a_non_zero_exit(tmp_path, own_files):
    run = ("run", "mine", "my data.csv", "--name", "my_data.csv", "--specs", "my_spec.yaml")
    # No AWS configuration at all: says how to use the emulator.
    one_line_error(cli(tmp_path, *run), "no AWS credentials", "--emulator")
    # Credentials but no region, against AWS.
    one_line_error(cli(tmp_path, *run, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y"), "no AWS region", "AWS_REGION")
    one_line_error(cli(tmp_path, "run", "nope", *run[2:]), "unknown batch 'nope'")
    one_line_error(cli(tmp_path, "run", "mine", "missing.csv", "--specs", "my_spec.yaml"), "no such input file: missing.csv")
    one_line_error(cli(tmp_path, *run[:5], "--specs", "nope.yaml"), "nope.yaml")
    (tmp_path / "bad.yaml").write_text(SPEC.replace("max_tokens: 100", "max_tokens: 100}\n    max_rows: -5\n    x: {"))
    proc = cli(tmp_path, *run[:5], "--specs", "bad.yaml")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "bad.yaml" in proc.stderr, proc.stderr
    (tmp_path / "a_file").write_text("")
    one_line_error(cli(tmp_path, *run, "--emulator", DAGSTER_HOME=str(tmp_path / "a_file" / "home")), "DAGSTER_HOME=", "not usable")
    one_line_error(cli(tmp_path, *run, "--emulator", "--out", "x.xlsx"), "unsupported extension")
    one_line_error(cli(tmp_path, "add", "nope", "my data.csv"), "unknown batch 'nope'")
    # A run that fails (the prompt names a column the file lacks): the failed step and its error, in one line.
    (tmp_path / "typo.yaml").write_text(SPEC.replace("{audience}", "{audiense}"))
    line = one_line_error(cli(tmp_path, *run[:5], "--specs", "typo.yaml", "--emulator", "--quiet"), "step jsonl_shards failed")
    assert "audiense" in line and proc.returncode != 0


def test_bucket_missing_on_aws_is_an_error_and_is_never_created(tmp_path, own_files):
    """A plain S3 endpoint (moto's server: not the emulator) stands in for AWS."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        env = dict(AWS_ENDPOINT_URL=endpoint, AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y",
                   BEDROCK_ASSETS_BUCKET="not-there", BEDROCK_ASSETS_SPECS=str(tmp_path / "my_spec.yaml"))
        one_line_error(cli(tmp_path, "add", "mine", "my data.csv", "--name", "x.csv", **env), "bucket 'not-there' does not exist")
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
        # (moto's backend is process-wide: the session emulator's buckets are listed here too.)
        assert "not-there" not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    finally:
        server.stop()


def test_add_works_on_a_bare_emulator_with_only_aws_region_and_no_dagster_home(tmp_path, own_files, emulator):
    bucket = f"ba-bare-{uuid.uuid4().hex[:10]}"  # does not exist yet: created because it is the emulator
    env = dict(AWS_ENDPOINT_URL=emulator.endpoint_url, AWS_REGION="us-east-1", BEDROCK_ASSETS_BUCKET=bucket,
               BEDROCK_ASSETS_SPECS=str(tmp_path / "my_spec.yaml"))
    proc = cli(tmp_path, "add", "mine", "my data.csv", "--name", "mine.csv", **env)
    assert proc.returncode == 0 and "registered partition mine/mine.csv" in proc.stdout, proc.stderr
    import dagster as dg

    with dg.DagsterInstance.from_config(str(tmp_path / ".dagster_home")) as instance:
        assert instance.get_dynamic_partitions("bedrock_inputs") == ["mine/mine.csv"]
