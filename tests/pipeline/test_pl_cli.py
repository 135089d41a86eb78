"""`bedrock-assets add`: stage an input in the emulator's S3 and register its partition."""

from __future__ import annotations

import dagster as dg
import polars as pl

from bedrock_assets.add import main as add_main
from bedrock_assets.partitions import inputs_partitions

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


def test_add_local_file_s3_object_and_hf_split(aws_env, write_specs, instance, tmp_path, capsys):
    write_specs(SPECS)
    local = tmp_path / "my_topics.csv"
    pl.DataFrame({"topic": ["a", "b"]}).write_csv(local)
    assert add_main(["jokes", str(local)]) == 0
    body = aws_env.s3.get_object(Bucket=aws_env.bucket, Key="inputs/jokes/my_topics.csv")["Body"].read()
    assert body == local.read_bytes()

    aws_env.s3.put_object(Bucket=aws_env.bucket, Key="elsewhere/other.parquet", Body=b"PAR1")
    assert add_main(["jokes", f"s3://{aws_env.bucket}/elsewhere/other.parquet"]) == 0
    assert aws_env.s3.get_object(Bucket=aws_env.bucket, Key="inputs/jokes/other.parquet")["Body"].read() == b"PAR1"

    assert add_main(["cot", "train"]) == 0
    keys = dg.DagsterInstance.get().get_dynamic_partitions(inputs_partitions.name)
    assert sorted(keys) == ["cot/train", "jokes/my_topics.csv", "jokes/other.parquet"]


def test_add_rejects_bad_input_with_a_clear_message(aws_env, write_specs, instance, tmp_path, capsys):
    write_specs(SPECS)
    bad = tmp_path / "notes.txt"
    bad.write_text("x")
    assert add_main(["jokes", str(bad)]) == 2
    assert "unsupported input type" in capsys.readouterr().err
    assert add_main(["nope", str(bad)]) == 2
    assert "unknown batch 'nope'" in capsys.readouterr().err


def test_add_takes_awkward_names_and_refuses_others_like_the_sensor(aws_env, write_specs, instance, tmp_path, capsys):
    from bedrock_assets.storage import input_name_problem

    write_specs(SPECS)
    local = tmp_path / "my topics #1 (é).csv"
    pl.DataFrame({"topic": ["a"]}).write_csv(local)
    assert add_main(["jokes", str(local)]) == 0
    assert aws_env.s3.get_object(Bucket=aws_env.bucket, Key="inputs/jokes/my topics #1 (é).csv")["Body"].read() == local.read_bytes()
    assert "jokes/my topics #1 (é).csv" in dg.DagsterInstance.get().get_dynamic_partitions(inputs_partitions.name)

    bad = tmp_path / "a,b.csv"
    bad.write_text("topic\nx\n")
    assert add_main(["jokes", str(bad)]) == 2
    assert input_name_problem("a,b.csv", "jokes") in capsys.readouterr().err
    assert not aws_env.s3.list_objects_v2(Bucket=aws_env.bucket, Prefix="inputs/jokes/a,b").get("KeyCount")
