"""Each new provider through the whole flow (raw_dataset -> jsonl_shards -> batch_job_outputs ->
joined_results) against the real emulator over HTTP: the shard holds the provider's body, the
emulator's model engine answers it, and the joined results carry the uniform columns with the
token counts the model reported (per line and in the job manifest)."""

from __future__ import annotations

import io
import json

import dagster as dg
import polars as pl
import pytest

from bedrock_assets import pricing, providers
from bedrock_assets.runner import materialize_partition
from bedrock_assets.specs import get_spec
from pipeline.helpers import check_outcomes, failed_steps, put_input, read_results

from pv_helpers import LLAMA_TAIL, LLAMA_USER, SYSTEM

N = 120

SPECS = f"""
batches:
  nova:
    model_id: us.amazon.nova-lite-v1:0
    prompt: "Tell me about {{topic}}."
    system: {json.dumps(SYSTEM)}
    params: {{max_tokens: 40, temperature: 0.2, top_k: 10}}
  llama:
    model_id: meta.llama3-1-8b-instruct-v1:0
    prompt: "Tell me about {{topic}}."
    system: {json.dumps(SYSTEM)}
    params: {{max_gen_len: 40, top_p: 0.9}}
  mistral:
    model_id: mistral.mistral-7b-instruct-v0:2
    prompt: "Tell me about {{topic}}."
    params: {{max_tokens: 40, stop: ["###"]}}
  converse-llama:
    model_id: us.meta.llama3-3-70b-instruct-v1:0
    invocation_type: Converse
    prompt: "Tell me about {{topic}}."
    system: {json.dumps(SYSTEM)}
    params: {{max_tokens: 8, stop_sequences: ["zzz"]}}
  converse-nova:
    model_id: amazon.nova-micro-v1:0
    invocation_type: Converse
    prompt: "Tell me about {{topic}}."
    params: {{max_tokens: 30, top_k: 5}}
  mistral-chat:
    model_id: mistral.mistral-large-2407-v1:0
    prompt: "Tell me about {{topic}}."
    system: {json.dumps(SYSTEM)}
    params: {{max_tokens: 30}}
"""


def _nova_tokens(mo):
    return mo["usage"]["inputTokens"], mo["usage"]["outputTokens"]


def _llama_tokens(mo):
    return mo["prompt_token_count"], mo["generation_token_count"]


CASES = {
    "nova": (
        lambda t: {
            "schemaVersion": "messages-v1",
            "system": [{"text": SYSTEM}],
            "inferenceConfig": {"maxTokens": 40, "temperature": 0.2, "topK": 10},
            "messages": [{"role": "user", "content": [{"text": t}]}],
        },
        _nova_tokens,
        lambda mo: mo["output"]["message"]["content"][0]["text"],
    ),
    "llama": (
        lambda t: {
            "max_gen_len": 40,
            "top_p": 0.9,
            "prompt": "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n" + SYSTEM + "<|eot_id|>"
            + LLAMA_USER + t + LLAMA_TAIL,
        },
        _llama_tokens,
        lambda mo: mo["generation"],
    ),
    "mistral": (
        lambda t: {"max_tokens": 40, "stop": ["###"], "prompt": "<s>[INST] " + t + " [/INST]"},
        None,  # no token counts in a Mistral body
        lambda mo: mo["outputs"][0]["text"],
    ),
    "converse-llama": (
        lambda t: {
            "system": [{"text": SYSTEM}],
            "inferenceConfig": {"maxTokens": 8, "stopSequences": ["zzz"]},
            "messages": [{"role": "user", "content": [{"text": t}]}],
        },
        _nova_tokens,
        lambda mo: mo["output"]["message"]["content"][0]["text"],
    ),
    "converse-nova": (
        lambda t: {
            "inferenceConfig": {"maxTokens": 30},
            "additionalModelRequestFields": {"inferenceConfig": {"topK": 5}},
            "messages": [{"role": "user", "content": [{"text": t}]}],
        },
        _nova_tokens,
        lambda mo: mo["output"]["message"]["content"][0]["text"],
    ),
    "mistral-chat": (
        lambda t: {
            "max_tokens": 30,
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": t}],
        },
        None,
        lambda mo: mo["choices"][0]["message"]["content"],
    ),
}


def _objects(env, prefix: str) -> list[str]:
    keys = []
    for page in env.s3.get_paginator("list_objects_v2").paginate(Bucket=env.bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def _text(env, key: str) -> str:
    return env.s3.get_object(Bucket=env.bucket, Key=key)["Body"].read().decode("utf-8")


@pytest.mark.parametrize("batch", list(CASES))
def test_provider_partition_end_to_end(batch, aws_env, write_specs, instance, tmp_path):
    write_specs(SPECS)
    expected_body, native_tokens, native_text = CASES[batch]
    topics = [f'topic {i} with "quotes", ünïcode 東京 and a\\backslash' for i in range(N)]
    key = put_input(aws_env, batch, "topics.parquet", pl.DataFrame({"topic": topics}))
    run = materialize_partition(instance, key, in_process=True)
    assert run.status == dg.DagsterRunStatus.SUCCESS, failed_steps(instance, run.run_id)
    assert all(check_outcomes(instance, run.run_id).values()), check_outcomes(instance, run.run_id)

    # 1. The shard holds exactly the provider's body, field by field, for every record.
    shard_keys = [k for k in _objects(aws_env, f"shards/{key}/") if k.endswith(".jsonl")]
    assert len(shard_keys) == 1
    shard_text = _text(aws_env, shard_keys[0])
    lines = shard_text.split("\n")[:-1]
    assert len(lines) == N
    for i, line in enumerate(lines):
        doc = json.loads(line)
        want = expected_body(f"Tell me about {topics[i]}.")
        assert list(doc["modelInput"]) == list(want)
        for field in want:
            assert doc["modelInput"][field] == want[field], (batch, i, field)

    # 2. The emulator answered every record (its .out lines) and wrote a manifest.
    out_keys = _objects(aws_env, f"outputs/{key}/")
    out_lines = [json.loads(x) for k in out_keys if k.endswith(".jsonl.out") for x in _text(aws_env, k).splitlines() if x]
    manifest = [json.loads(_text(aws_env, k)) for k in out_keys if k.endswith("manifest.json.out")]
    assert len(out_lines) == N and all("modelOutput" in x for x in out_lines)
    assert len(manifest) == 1 and manifest[0]["successRecordCount"] == N

    # 3. Joined results: uniform columns, every row once, answers and token counts as reported.
    results = read_results(aws_env, key).sort("record_id")
    assert results.height == N
    for col, dtype in [("response", pl.String), ("stop_reason", pl.String), ("input_tokens", pl.Int64), ("output_tokens", pl.Int64)]:
        assert results.schema[col] == dtype, col
    assert results["status"].to_list() == ["succeeded"] * N
    assert results["topic"].to_list() == topics
    by_id = {x["recordId"]: x["modelOutput"] for x in out_lines}
    assert results["response"].to_list() == [native_text(by_id[r]) for r in results["record_id"]]
    assert results["stop_reason"].null_count() == 0
    if native_tokens is None:
        assert results["input_tokens"].null_count() == N and results["output_tokens"].null_count() == N
        assert manifest[0]["inputTokenCount"] > 0  # the job-level record of the tokens
    else:
        pairs = [native_tokens(by_id[r]) for r in results["record_id"]]
        assert results["input_tokens"].to_list() == [p[0] for p in pairs]
        assert results["output_tokens"].to_list() == [p[1] for p in pairs]
        assert results["input_tokens"].min() > 0 and results["output_tokens"].min() > 0
        assert int(results["input_tokens"].sum()) == manifest[0]["inputTokenCount"]
        assert int(results["output_tokens"].sum()) == manifest[0]["outputTokenCount"]

    # 4. The pre-submission estimate bounds what the job reported.
    spec = get_spec(batch)
    provider = providers.for_spec(spec)
    shard_file = tmp_path / "shard.jsonl"
    shard_file.write_bytes(shard_text.encode("utf-8"))
    est = pricing.estimate_batch(spec, provider, [shard_file])
    assert est.tokens.records == N
    assert est.tokens.input_tokens >= manifest[0]["inputTokenCount"]
    assert est.tokens.output_tokens >= manifest[0]["outputTokenCount"]
    if batch == "nova":
        assert est.cost.known and est.usd > pricing.actual_cost(
            spec.model_id, manifest[0]["inputTokenCount"], manifest[0]["outputTokenCount"]
        ).usd
    if batch == "converse-llama":
        assert set(results["stop_reason"]) <= {"max_tokens", "end_turn"}
        assert results["output_tokens"].max() <= 8


from pv_helpers import expected_bodies  # noqa: E402

BODY_CASES = expected_bodies()


@pytest.mark.parametrize("case", BODY_CASES, ids=[c[0] for c in BODY_CASES])
def test_runtime_answers_every_body_over_http(case, aws_env, tmp_path):
    """The on-demand fallback sends a shard line's modelInput unchanged: InvokeModel `body=` or
    Converse `**modelInput`. The emulator's bedrock-runtime answers it, and the answer parses."""
    import boto3

    from bedrock_assets import results, shards
    from pv_helpers import make_spec

    _, kwargs, _ = case
    spec = make_spec(prompt="Q: {q}", **kwargs)
    provider = providers.for_spec(spec)
    frame = pl.DataFrame({"record_id": ["A", "B"], "q": ['say "hi" ü', "line\nbreak"]})
    lines = shards.render_lines(frame.lazy(), spec, provider).collect()["line"].to_list()
    runtime = boto3.client("bedrock-runtime", region_name="us-east-1")
    out = io.StringIO()
    for line in lines:
        doc = json.loads(line)
        if spec.invocation_type == "Converse":
            answer = runtime.converse(modelId=spec.model_id, **doc["modelInput"])
            answer.pop("ResponseMetadata", None)
        else:
            answer = json.loads(runtime.invoke_model(modelId=spec.model_id, body=json.dumps(doc["modelInput"]))["body"].read())
        out.write(json.dumps({"recordId": doc["recordId"], "modelOutput": answer}) + "\n")
    path = tmp_path / "x.jsonl.out"
    path.write_text(out.getvalue())
    df = results.read_outputs([str(path)], provider).collect()
    assert df["response"].str.contains("emulated").all() and df["stop_reason"].is_not_null().all()
