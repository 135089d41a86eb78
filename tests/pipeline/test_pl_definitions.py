"""The code location loads with no configuration at all, and its graph is what the UI promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parents[2]


def test_definitions_validate_with_no_env_set(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BEDROCK_", "DAGSTER_"))}
    env["DAGSTER_HOME"] = str(tmp_path)
    (tmp_path / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", str(ROOT / "workspace.yaml")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_asset_graph_kinds_descriptions_and_checks():
    from bedrock_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = ["raw_dataset", "jsonl_shards", "batch_job_outputs", "joined_results"]
    for upstream, downstream in zip(keys, keys[1:]):
        assert dg.AssetKey(upstream) in graph.get(dg.AssetKey(downstream)).parent_keys
    specs = {s.key.path[-1]: s for s in defs.resolve_all_asset_specs()}
    for key in keys:
        assert specs[key].group_name == "bedrock_batch"
        assert specs[key].description and len(specs[key].description) > 40
        assert specs[key].partitions_def.name == "bedrock_inputs"
    assert {"bedrock"} <= specs["batch_job_outputs"].kinds and {"polars", "s3"} <= specs["joined_results"].kinds
    checks = {key.name for key in graph.asset_check_keys}
    assert checks == {
        "shard_limits_respected", "within_budget", "one_job_per_shard_attempt", "every_row_answered_once",
        "error_rate_below_threshold", "no_duplicate_answers", "answers_match_requests",
    }
    assert [s.name for s in defs.sensors] == ["new_input_files"]
    # Every check has a description: the UI shows it instead of "No description provided".
    for key in graph.asset_check_keys:
        description = graph.get_check_spec(key).description
        assert description and len(description) > 40, key


def test_every_job_runs_as_many_steps_as_the_quota_not_one_per_cpu():
    """UI backfills run `__ASSET_JOB`: it must get the project executor too."""
    from bedrock_assets.asset_jobs import MAX_CONCURRENT_STEPS
    from bedrock_assets.definitions import JOB_NAME, defs

    assert MAX_CONCURRENT_STEPS >= 20  # the Bedrock in-flight quota per model
    for name in (JOB_NAME, "__ASSET_JOB"):
        job = defs.resolve_job_def(name)
        resolved = dg.validate_run_config(job, None)["execution"]["bedrock_executor"]
        assert resolved["multiprocess"]["max_concurrent"] == MAX_CONCURRENT_STEPS
        assert list(resolved["multiprocess"]["start_method"]) == ["forkserver"]  # ~1 s step start, not spawn's 3-28 s
        spawn = {"execution": {"config": {"multiprocess": {"start_method": {"spawn": {}}}}}}
        chosen = dg.validate_run_config(job, spawn)["execution"]["bedrock_executor"]["multiprocess"]["start_method"]
        assert list(chosen) == ["spawn"]  # run config still decides
        in_process = dg.validate_run_config(job, {"execution": {"config": {"in_process": {}}}})
        assert "in_process" in in_process["execution"]["bedrock_executor"]
