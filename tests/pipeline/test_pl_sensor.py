"""`new_input_files` against the emulator's S3 and a real sqlite instance."""

from __future__ import annotations

import dagster as dg
import pytest

from bedrock_assets.partitions import inputs_partitions
from bedrock_assets.resources import ProjectStorage
from bedrock_assets.sensors import new_input_files
from dagster_aws.s3 import S3Resource

SPECS = """
batches:
  jokes:
    model_id: anthropic.claude-3-haiku-20240307-v1:0
    prompt: "Tell me a joke about {topic}."
  cot:
    model_id: anthropic.claude-3-haiku-20240307-v1:0
    prompt_id: question_answering
    hf_dataset: w601sxs/simpleCoT
"""


def tick(instance, cursor):
    """One sensor evaluation, with its partition requests applied to the instance as the daemon does."""
    storage = ProjectStorage(s3=S3Resource())
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"storage": storage}) as ctx:
        result = new_input_files(ctx)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def put(env, key, body=b"topic\ncats\n"):
    env.s3.put_object(Bucket=env.bucket, Key=key, Body=body)
    return env.s3.head_object(Bucket=env.bucket, Key=key)["LastModified"]


def test_first_tick_then_nothing_new(aws_env, write_specs, instance):
    write_specs(SPECS)
    put(aws_env, "inputs/jokes/a.csv")
    put(aws_env, "inputs/jokes/b.parquet", b"PAR1")
    first = tick(instance, None)
    assert sorted(r.partition_key for r in first.run_requests) == ["jokes/a.csv", "jokes/b.parquet"]
    assert all(r.run_key.startswith(r.partition_key + ":") for r in first.run_requests)
    assert sorted(instance.get_dynamic_partitions(inputs_partitions.name)) == ["jokes/a.csv", "jokes/b.parquet"]
    second = tick(instance, first.cursor)
    assert not second.run_requests


def test_same_second_arrival_is_not_missed(aws_env, write_specs, instance):
    write_specs(SPECS)
    for attempt in range(5):
        t_a = put(aws_env, f"inputs/jokes/same{attempt}-a.csv")
        result = tick(instance, None if attempt == 0 else cursor)  # noqa: F821 - set below
        cursor = result.cursor
        t_b = put(aws_env, f"inputs/jokes/same{attempt}-b.csv")
        later = tick(instance, cursor)
        cursor = later.cursor
        assert [r.partition_key for r in later.run_requests] == [f"jokes/same{attempt}-b.csv"]
        if t_a == t_b:  # S3 timestamps are whole seconds: this is the case the cursor must handle
            return
    pytest.fail("could not land two uploads in the same second in 5 tries")


def test_reupload_with_new_content_runs_again_identical_content_does_not(aws_env, write_specs, instance):
    write_specs(SPECS)
    put(aws_env, "inputs/jokes/r.csv", b"topic\ncats\n")
    first = tick(instance, None)
    put(aws_env, "inputs/jokes/r.csv", b"topic\ndogs\n")
    changed = tick(instance, first.cursor)
    assert [r.partition_key for r in changed.run_requests] == ["jokes/r.csv"]
    assert changed.run_requests[0].run_key != first.run_requests[0].run_key
    put(aws_env, "inputs/jokes/r.csv", b"topic\ndogs\n")  # same bytes again: same ETag
    same = tick(instance, changed.cursor)
    # Listed again (new LastModified) but with the run key already used: the daemon drops it.
    assert all(r.run_key == changed.run_requests[0].run_key for r in same.run_requests)


def test_unknown_batch_and_unsupported_type_are_skipped(aws_env, write_specs, instance, caplog):
    write_specs(SPECS)
    put(aws_env, "inputs/nobody/x.csv")
    put(aws_env, "inputs/jokes/notes.txt")
    put(aws_env, "inputs/cot/whatever.csv")  # an HF batch takes no files
    result = tick(instance, None)
    assert not result.run_requests
    assert instance.get_dynamic_partitions(inputs_partitions.name) == []


def test_awkward_names_become_partitions_and_refused_ones_are_named_in_the_skip_reason(aws_env, write_specs, instance):
    from bedrock_assets.storage import input_name_problem

    write_specs(SPECS)
    fine = ["my topics (1).csv", "café 東京.jsonl", "q#1?.parquet", "50%+off.v2.final.csv", "n" * 300 + ".csv"]
    for name in fine:
        put(aws_env, f"inputs/jokes/{name}")
    result = tick(instance, None)
    assert sorted(r.partition_key for r in result.run_requests) == sorted(f"jokes/{n}" for n in fine)

    put(aws_env, "inputs/jokes/a,b.csv")
    put(aws_env, "inputs/jokes/notes.txt")
    skipped = tick(instance, result.cursor)
    assert not skipped.run_requests
    # The UI shows the tick's skip reason: every skipped file, and the same words `add` prints.
    assert "inputs/jokes/a,b.csv: " + input_name_problem("a,b.csv", "jokes") in skipped.skip_reason.skip_message
    assert "inputs/jokes/notes.txt: input 'notes.txt': unsupported input type" in skipped.skip_reason.skip_message
