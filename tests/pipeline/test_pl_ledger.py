"""Answers keyed by what was asked: the answer ledger end to end, on a real sqlite instance
against the emulator over HTTP. Jobs and runtime calls are counted from the emulator's own
records (what Bedrock would bill)."""

from __future__ import annotations

import io

import dagster as dg
import polars as pl
import pytest

from bedrock_assets.runner import bedrock_batch_job
from bedrock_assets.runner import materialize_partition  # noqa: E402

from .helpers import check_outcomes, failed_steps, jobs_for_bucket, put_input, read_json, read_results

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
SONNET = "anthropic.claude-3-5-sonnet-20240620-v1:0"


def _specs(model: str = HAIKU, prompt: str = "Tell me a joke about {topic}.", extra: str = "") -> str:
    return f"""
batches:
  jokes:
    model_id: {model}
    prompt: "{prompt}"
    params: {{max_tokens: 200}}
{extra}"""


def _topics(n: int, tag: str = "") -> pl.DataFrame:
    return pl.DataFrame({"topic": [f"topic{tag} {i}" for i in range(n)]})


def _runtime_calls(env) -> int:
    return sum(m.get("runtime_invocations", 0) for m in env.emulator.stats()["models"].values())


def _run(instance, key, **kw):
    run = materialize_partition(instance, key, in_process=True, **kw)
    assert run.status == dg.DagsterRunStatus.SUCCESS, failed_steps(instance, run.run_id)
    outcomes = check_outcomes(instance, run.run_id)
    assert all(outcomes.values()), outcomes
    return run


def _own_answers(results: pl.DataFrame, model: str, template: str) -> bool:
    """Every response is the emulator's reply to this row's own prompt from `model`."""
    want = [f"[emulated {model}]" for _ in range(results.height)]
    prompts = [template.format(topic=t) for t in results["topic"]]
    return all(r.startswith(w) and r.endswith(p) for r, w, p in zip(results["response"], want, prompts))


def test_model_and_prompt_changes_ask_again_and_going_back_is_free(aws_env, write_specs, instance):
    write_specs(_specs())
    key = put_input(aws_env, "jokes", "topics.csv", _topics(200))
    aws_env.emulator.reset_stats()
    _run(instance, key)
    assert len(jobs_for_bucket(aws_env)) == 1
    first = read_results(aws_env, key).sort("record_id")
    assert set(first["answered_by"]) == {"batch"} and _own_answers(first, HAIKU, "Tell me a joke about {topic}.")

    # The same partition again, and the same file as a second partition: nothing is paid.
    _run(instance, key)
    second_key = put_input(aws_env, "jokes", "copy.csv", _topics(200))
    _run(instance, second_key)
    assert len(jobs_for_bucket(aws_env)) == 1 and _runtime_calls(aws_env) == 0
    for k in (key, second_key):
        again = read_results(aws_env, k).sort("record_id")
        assert set(again["answered_by"]) == {"cache"}
        assert again["response"].to_list() == first["response"].to_list()

    # A prompt edit asks every row again; editing it back costs nothing.
    write_specs(_specs(prompt="Tell me a short joke about {topic}."))
    _run(instance, key)
    assert len(jobs_for_bucket(aws_env)) == 2
    edited = read_results(aws_env, key).sort("record_id")
    assert set(edited["answered_by"]) == {"batch"} and _own_answers(edited, HAIKU, "Tell me a short joke about {topic}.")
    write_specs(_specs())
    _run(instance, key)
    assert len(jobs_for_bucket(aws_env)) == 2 and _runtime_calls(aws_env) == 0
    back = read_results(aws_env, key).sort("record_id")
    assert set(back["answered_by"]) == {"cache"} and back["response"].to_list() == first["response"].to_list()

    # Another model: new jobs for every row, its own answers, priced for it.
    write_specs(_specs(model=SONNET))
    run = _run(instance, key)
    jobs = jobs_for_bucket(aws_env)
    # GetModelInvocationJob returns the model's ARN (`...:foundation-model/<id>`), as AWS does.
    assert len(jobs) == 3 and [j["modelId"].rsplit("/", 1)[-1] for j in jobs].count(SONNET) == 1
    sonnet = read_results(aws_env, key).sort("record_id")
    assert set(sonnet["answered_by"]) == {"batch"} and _own_answers(sonnet, SONNET, "Tell me a joke about {topic}.")
    materialization = instance.get_latest_materialization_event(dg.AssetKey("joined_results")).asset_materialization
    assert "claude-3-5-sonnet" in materialization.metadata["actual_cost"].value
    assert read_json(aws_env, f"shards/{key}/manifest.json")["estimate"]["model_id"] == SONNET
    del run


def test_a_reupload_sends_only_changed_and_new_rows(aws_env, write_specs, instance):
    write_specs(_specs())
    frame = _topics(1000)
    key = put_input(aws_env, "jokes", "big.csv", frame)
    _run(instance, key)
    assert len(jobs_for_bucket(aws_env)) == 1
    changed = frame.with_columns(
        pl.when(pl.int_range(pl.len()) % 50 == 7).then(pl.col("topic") + " (edited)").otherwise(pl.col("topic")).alias("topic")
    )
    changed = pl.concat([changed, _topics(10, tag="new")])
    aws_env.emulator.reset_stats()
    put_input(aws_env, "jokes", "big.csv", changed)
    _run(instance, key)
    assert len(jobs_for_bucket(aws_env)) == 1  # 30 records: under the minimum job size
    assert _runtime_calls(aws_env) == 30
    results = read_results(aws_env, key).sort("record_id")
    assert results.height == 1010 and set(results["status"]) == {"succeeded"}
    fresh = results.filter(pl.col("answered_by") == "on-demand")
    assert fresh.height == 30 and all("edited" in t or "new" in t for t in fresh["topic"])
    assert results.filter(pl.col("answered_by") == "cache").height == 980
    assert _own_answers(results, HAIKU, "Tell me a joke about {topic}.")


def test_on_demand_answers_follow_the_request_not_the_row(aws_env, write_specs, instance):
    write_specs(_specs())
    failing = [f"R{i:010d}" for i in range(0, 150, 5)]  # 30 records fail once (HTTP 500)
    aws_env.emulator.configure(record_error_ids=failing, record_error_codes=[500])
    key = put_input(aws_env, "jokes", "od.csv", _topics(150))
    aws_env.emulator.reset_stats()
    _run(instance, key)
    assert _runtime_calls(aws_env) == 30
    first = read_results(aws_env, key)
    assert sorted(first.filter(pl.col("answered_by") == "on-demand")["record_id"]) == failing

    # A prompt edit: all 150 asked again (the same 30 fail again and go on-demand again).
    write_specs(_specs(prompt="Tell me a long joke about {topic}."))
    aws_env.emulator.reset_stats()
    _run(instance, key)
    assert _runtime_calls(aws_env) == 30
    edited = read_results(aws_env, key)
    assert _own_answers(edited, HAIKU, "Tell me a long joke about {topic}.")

    # New content under the same name: every row carries the answer to its own request.
    aws_env.emulator.configure(record_error_ids=[])
    put_input(aws_env, "jokes", "od.csv", _topics(150, tag="x").reverse())
    _run(instance, key)
    reuploaded = read_results(aws_env, key)
    assert _own_answers(reuploaded, HAIKU, "Tell me a long joke about {topic}.")


def test_duplicate_rows_are_asked_once_and_small_inputs_go_on_demand(aws_env, write_specs, instance):
    write_specs(_specs())
    frame = pl.concat([_topics(60), _topics(60)])  # 120 rows, 60 distinct requests
    key = put_input(aws_env, "jokes", "dups.csv", frame)
    aws_env.emulator.reset_stats()
    _run(instance, key)
    assert jobs_for_bucket(aws_env) == [] and _runtime_calls(aws_env) == 60
    results = read_results(aws_env, key).sort("record_id")
    assert results.height == 120 and set(results["status"]) == {"succeeded"}
    assert _own_answers(results, HAIKU, "Tell me a joke about {topic}.")
    assert results["response"].head(60).to_list() == results["response"].tail(60).to_list()

    small = put_input(aws_env, "jokes", "fifty.csv", _topics(50, tag="s"))
    aws_env.emulator.reset_stats()
    _run(instance, small)
    assert jobs_for_bucket(aws_env) == [] and _runtime_calls(aws_env) == 50
    assert set(read_results(aws_env, small)["answered_by"]) == {"on-demand"}


def test_fresh_answers_ask_again(aws_env, write_specs, instance):
    write_specs(_specs())
    key = put_input(aws_env, "jokes", "fresh.csv", _topics(120))
    _run(instance, key)
    _run(instance, key, fresh_answers=True)
    assert len(jobs_for_bucket(aws_env)) == 2
    assert set(read_results(aws_env, key)["answered_by"]) == {"batch"}
    write_specs(_specs(extra="    fresh_answers: true\n"))
    _run(instance, key)
    assert len(jobs_for_bucket(aws_env)) == 3
    # On-demand answers too: a small input asked again when forced.
    write_specs(_specs())
    small = put_input(aws_env, "jokes", "fresh-small.csv", _topics(20, tag="f"))
    aws_env.emulator.reset_stats()
    _run(instance, small)
    _run(instance, small)
    assert _runtime_calls(aws_env) == 20
    _run(instance, small, fresh_answers=True)
    assert _runtime_calls(aws_env) == 40


def test_answers_match_requests_catches_an_answer_to_another_request(aws_env, write_specs, instance):
    write_specs(_specs())
    key = put_input(aws_env, "jokes", "plant.csv", _topics(120))
    _run(instance, key)
    # Plant: two rows' requests swapped in requests.parquet, so each row is joined to the answer
    # of the other's request. Only joined_results runs again.
    req_key = f"shards/{key}/requests.parquet"
    requests = pl.read_parquet(io.BytesIO(aws_env.s3.get_object(Bucket=aws_env.bucket, Key=req_key)["Body"].read()))
    digests = requests["request_digest"].to_list()
    digests[3], digests[4] = digests[4], digests[3]
    buf = io.BytesIO()
    requests.with_columns(pl.Series("request_digest", digests)).write_parquet(buf)
    aws_env.s3.put_object(Bucket=aws_env.bucket, Key=req_key, Body=buf.getvalue())
    result = bedrock_batch_job().execute_in_process(
        instance=instance, partition_key=key, asset_selection=[dg.AssetKey("joined_results")], raise_on_error=False,
    )
    outcomes = check_outcomes(instance, result.run_id)
    assert outcomes["answers_match_requests"] is False
    assert outcomes["every_row_answered_once"] is True  # the other checks cannot see it


@pytest.mark.parametrize("edit", ["prompt", "model"])
def test_a_stale_join_after_a_spec_edit_fails_the_check(aws_env, write_specs, instance, edit):
    """The spec edited but only joined_results re-run: the answers are to the old requests."""
    write_specs(_specs())
    key = put_input(aws_env, "jokes", f"stale-{edit}.csv", _topics(110))
    _run(instance, key)
    write_specs(_specs(prompt="Another {topic}.") if edit == "prompt" else _specs(model=SONNET))
    result = bedrock_batch_job().execute_in_process(
        instance=instance, partition_key=key, asset_selection=[dg.AssetKey("joined_results")], raise_on_error=False,
    )
    outcomes = check_outcomes(instance, result.run_id)
    if edit == "prompt":
        # Same model: the ledger holds the old prompt's answers; the check sees they are stale.
        assert outcomes["answers_match_requests"] is False
    else:
        # Another model: its ledger has no answer, so no row shows the old model's answer.
        assert outcomes["every_row_answered_once"] is False
        assert read_results(aws_env, key)["response"].null_count() == 110


def test_compaction_changes_no_answer(aws_env, write_specs, instance):
    from bedrock_assets import ledger, settings

    write_specs(_specs())
    key = put_input(aws_env, "jokes", "compact.csv", _topics(120))
    _run(instance, key)
    first = read_results(aws_env, key).sort("record_id")
    write_specs(_specs(prompt="Tell me a pun about {topic}."))
    _run(instance, key)
    folder = ledger.model_key(HAIKU, "InvokeModel")
    opts = settings.polars_storage_options()

    def rows():
        keys = [o["Key"] for o in aws_env.s3.list_objects_v2(Bucket=aws_env.bucket, Prefix=f"answers/{folder}/")["Contents"]]
        uris = [f"s3://{aws_env.bucket}/{k}" for k in keys]
        return len(keys), pl.read_parquet(uris, storage_options=opts).sort("request_digest", "answered_at")

    n, before = rows()
    assert n == 2 and before.height == 240
    assert ledger.compact(aws_env.s3, aws_env.bucket, folder, target_rows=150, storage_options=opts) == (2, 2)
    n, after = rows()
    assert after.equals(before)
    write_specs(_specs())
    aws_env.emulator.reset_stats()
    _run(instance, key)
    again = read_results(aws_env, key).sort("record_id")
    assert set(again["answered_by"]) == {"cache"} and again["response"].to_list() == first["response"].to_list()
    assert _runtime_calls(aws_env) == 0


def test_the_slow_parse_path_is_reported(aws_env, write_specs, instance):
    """Record ids with an escaped quote defeat the answer-only cut (the id is neither in the cut
    part nor readable from the head of the line): the answers are still right, and the step says
    it took the full parse, in its log and its metadata."""
    write_specs(_specs(extra='    id_column: key\n'))
    frame = _topics(120).with_columns(pl.format('k"{}', pl.int_range(pl.len())).alias("key"))
    key = put_input(aws_env, "jokes", "quoted-ids.parquet", frame)
    run = _run(instance, key)
    # The ids are read right from the shard too, so the answered records are not asked again.
    assert len(jobs_for_bucket(aws_env)) == 1
    results = read_results(aws_env, key).sort("key")
    assert results.height == 120 and _own_answers(results, HAIKU, "Tell me a joke about {topic}.")
    meta = instance.get_latest_materialization_event(dg.AssetKey("batch_job_outputs")).asset_materialization.metadata
    assert meta["slow_path_files"].value == 1 and meta["slow_path_lines"].value == 120
    logs = " ".join(r.user_message for r in instance.all_logs(run.run_id))
    assert "took the full JSON parse" in logs
