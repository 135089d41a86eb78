"""The whole flow on a real sqlite instance, multiprocess executor, against the emulator over HTTP."""

from __future__ import annotations

import math

import dagster as dg
import polars as pl

from bedrock_assets.runner import materialize_partition

from .helpers import check_outcomes, failed_steps, jobs_for_bucket, put_input, read_json, read_results, results_codecs

SPECS = """
batches:
  jokes:
    model_id: anthropic.claude-3-haiku-20240307-v1:0
    prompt: "Tell me a joke about {topic} in less than 50 words."
    params: {max_tokens: 100}
  jokes-small-jobs:
    model_id: us.anthropic.claude-3-haiku-20240307-v1:0
    prompt: "Tell me a joke about {topic}."
    max_records_per_job: 150
  over-budget:
    model_id: anthropic.claude-3-haiku-20240307-v1:0
    prompt: "Tell me a joke about {topic}."
    params: {max_tokens: 1000}
    budget_usd: 0.001
  bad-template:
    model_id: anthropic.claude-3-haiku-20240307-v1:0
    prompt: "Tell me a joke about {subject}."
  embeddings:
    model_id: amazon.titan-embed-text-v2:0
    text_column: input_text
    params: {dimensions: 256, normalize: true}
    results_compression: none
"""


def _topics(n: int) -> pl.DataFrame:
    return pl.DataFrame({"topic": [f"topic number {i} with \"quotes\" and ünïcode" for i in range(n)], "n": list(range(n))})


def test_text_partition_end_to_end(aws_env, write_specs, instance):
    write_specs(SPECS)
    frame = _topics(130)
    key = put_input(aws_env, "jokes", "topics.csv", frame)
    run = materialize_partition(instance, key, in_process=True)
    assert run.status == dg.DagsterRunStatus.SUCCESS, failed_steps(instance, run.run_id)

    results = read_results(aws_env, key).sort("record_id")
    assert results.height == frame.height
    # Row by row: every input row is there once, with its own columns and an answer.
    assert results.get_column("topic").to_list() == frame.get_column("topic").to_list()
    # CSV cells are read as text (no type guessing: "007" stays "007").
    assert results.get_column("n").to_list() == [str(i) for i in frame.get_column("n")]
    assert results.get_column("record_id").to_list() == [f"R{i:010d}" for i in range(frame.height)]
    assert results.get_column("status").to_list() == ["succeeded"] * frame.height
    assert results.get_column("response").str.len_chars().min() > 0
    assert results.get_column("input_tokens").min() > 0 and results.get_column("output_tokens").min() > 0
    assert results.get_column("error_code").null_count() == frame.height
    assert results_codecs(aws_env, key) == {"ZSTD"}  # the default

    outcomes = check_outcomes(instance, run.run_id)
    assert outcomes == {
        "shard_limits_respected": True,
        "within_budget": True,
        "one_job_per_shard_attempt": True,
        "every_row_answered_once": True,
        "error_rate_below_threshold": True,
        "no_duplicate_answers": True,
        "answers_match_requests": True,
    }
    assert len(jobs_for_bucket(aws_env)) == 1


def test_embedding_partition_end_to_end(aws_env, write_specs, instance):
    write_specs(SPECS)
    texts = [f"document {i} about {'cats' if i % 2 else 'databases'}" for i in range(120)]
    frame = pl.DataFrame({"doc": list(range(120)), "input_text": texts})
    key = put_input(aws_env, "embeddings", "docs.parquet", frame)
    run = materialize_partition(instance, key, in_process=True)
    assert run.status == dg.DagsterRunStatus.SUCCESS, failed_steps(instance, run.run_id)
    results = read_results(aws_env, key).sort("record_id")
    assert results.get_column("input_text").to_list() == texts
    vectors = results.get_column("embedding").to_list()
    assert all(len(v) == 256 for v in vectors)
    assert all(math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-3) for v in vectors)
    assert results.get_column("input_tokens").min() > 0
    # The spec's results_compression for the answer columns; the records' columns keep their zstd-1.
    assert results_codecs(aws_env, key, answers_only=True) == {"UNCOMPRESSED"}
    assert results_codecs(aws_env, key) == {"UNCOMPRESSED", "ZSTD"}
    assert all(check_outcomes(instance, run.run_id).values())


def test_missing_template_column_fails_before_any_job(aws_env, write_specs, instance):
    write_specs(SPECS)
    key = put_input(aws_env, "bad-template", "topics.csv", _topics(120))
    run = materialize_partition(instance, key, in_process=True)
    assert run.status == dg.DagsterRunStatus.FAILURE
    failures = failed_steps(instance, run.run_id)
    assert list(failures) == ["jsonl_shards"]
    message = failures["jsonl_shards"]
    assert "subject" in message and "topics.csv" in message
    assert jobs_for_bucket(aws_env) == []


def test_more_rows_than_a_job_takes_makes_several_jobs_that_all_join(aws_env, write_specs, instance):
    write_specs(SPECS)
    frame = _topics(350)
    key = put_input(aws_env, "jokes-small-jobs", "topics.jsonl", frame)
    run = materialize_partition(instance, key, in_process=True)
    assert run.status == dg.DagsterRunStatus.SUCCESS, failed_steps(instance, run.run_id)
    manifest = read_json(aws_env, f"shards/{key}/manifest.json")
    sizes = [s["records"] for s in manifest["shards"]]
    assert len(sizes) == 3 and sum(sizes) == 350 and max(sizes) <= 150 and min(sizes) >= 100
    jobs = jobs_for_bucket(aws_env)
    assert len(jobs) == 3 and {j["status"] for j in jobs} == {"Completed"}
    results = read_results(aws_env, key)
    assert results.height == 350 and results.get_column("record_id").n_unique() == 350
    assert results.filter(pl.col("status") == "succeeded").height == 350


def test_rematerializing_an_unchanged_partition_creates_no_new_jobs(aws_env, write_specs, instance):
    write_specs(SPECS)
    key = put_input(aws_env, "jokes", "again.csv", _topics(110))
    first = materialize_partition(instance, key, in_process=True)
    assert first.status == dg.DagsterRunStatus.SUCCESS
    arns = {j["jobArn"] for j in jobs_for_bucket(aws_env)}
    second = materialize_partition(instance, key, in_process=True)
    assert second.status == dg.DagsterRunStatus.SUCCESS
    assert {j["jobArn"] for j in jobs_for_bucket(aws_env)} == arns
    logs = " ".join(r.user_message for r in instance.all_logs(second.run_id))
    assert "110 answered from the ledger" in logs and "0 to send in 0 shard(s)" in logs
    assert set(read_results(aws_env, key)["answered_by"]) == {"cache"}


def test_hugging_face_split_partition_end_to_end(aws_env, write_specs, instance):
    """The real `datasets.load_dataset(..., streaming=True)` path, on the bundled local dataset folder."""
    from bedrock_assets.specs import PACKAGED_SPECS

    folder = PACKAGED_SPECS.parent / "samples" / "simplecot"
    write_specs(
        f"""
        batches:
          cot:
            model_id: anthropic.claude-3-haiku-20240307-v1:0
            prompt_id: question_answering
            hf_dataset: {folder}
            max_rows: 120
        """
    )
    run = materialize_partition(instance, "cot/train", in_process=True)
    assert run.status == dg.DagsterRunStatus.SUCCESS, failed_steps(instance, run.run_id)
    results = read_results(aws_env, "cot/train").sort("record_id")
    source = pl.read_parquet(folder / "train.parquet").head(120)
    assert results.get_column("source").to_list() == source.get_column("source").to_list()
    assert results.get_column("status").to_list() == ["succeeded"] * 120


def test_over_budget_batch_is_stopped_before_any_job_exists(aws_env, write_specs, instance):
    write_specs(SPECS)
    key = put_input(aws_env, "over-budget", "topics.csv", _topics(150))
    run = materialize_partition(instance, key, in_process=True)
    assert run.status == dg.DagsterRunStatus.FAILURE
    assert check_outcomes(instance, run.run_id)["within_budget"] is False
    assert jobs_for_bucket(aws_env) == []
    manifest = read_json(aws_env, f"shards/{key}/manifest.json")
    assert manifest["budget"]["passed"] is False and "exceeds budget_usd=0.001" in manifest["budget"]["message"]
    # Materializing batch_job_outputs on its own later still refuses to spend.
    from bedrock_assets.runner import bedrock_batch_job

    alone = bedrock_batch_job().execute_in_process(
        instance=instance, partition_key=key, asset_selection=[dg.AssetKey("batch_job_outputs")], raise_on_error=False
    )
    assert not alone.success
    assert jobs_for_bucket(aws_env) == []
