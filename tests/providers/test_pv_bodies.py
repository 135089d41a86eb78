"""Provider resolution, param checks, and the request bodies in real shard files, field by field;
then the emulator's model engines answer each body and the provider parses the answer into the
uniform columns."""

from __future__ import annotations

import json

import polars as pl
import pytest

from bedrock_assets import providers, results, shards
from bedrock_assets.emulator.engines import resolve_engine
from bedrock_assets.emulator.text_generation import EmulatedTextGenerator
from bedrock_assets.providers import ConverseChat, ProviderError
from bedrock_assets.providers.anthropic import AnthropicMessages
from bedrock_assets.providers.llama import Llama3
from bedrock_assets.providers.mistral import MistralChat, MistralText
from bedrock_assets.providers.nova import NovaMessages
from bedrock_assets.providers.titan_embed import TitanTextEmbeddingsV2
from bedrock_assets.records import RECORD_ID

from nasty_strings import NASTY
from pv_helpers import CLAUDE, LLAMA, MISTRAL_CHAT, MISTRAL_TEXT, NOVA, TITAN, expected_bodies, make_spec

CASES = expected_bodies()


@pytest.mark.parametrize(
    "model_id, family",
    [
        (NOVA, NovaMessages),
        ("amazon.nova-micro-v1:0", NovaMessages),
        ("amazon.nova-pro-v1:0", NovaMessages),
        ("us.amazon.nova-premier-v1:0", NovaMessages),
        ("eu.amazon.nova-lite-v1:0", NovaMessages),
        ("apac.amazon.nova-micro-v1:0", NovaMessages),
        ("global.amazon.nova-2-lite-v1:0", NovaMessages),
        ("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0", NovaMessages),
        (LLAMA, Llama3),
        ("meta.llama3-8b-instruct-v1:0", Llama3),
        ("us.meta.llama3-2-90b-instruct-v1:0", Llama3),
        ("us.meta.llama3-3-70b-instruct-v1:0", Llama3),
        ("arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.meta.llama3-1-70b-instruct-v1:0", Llama3),
        (MISTRAL_TEXT, MistralText),
        ("mistral.mixtral-8x7b-instruct-v0:1", MistralText),
        ("mistral.mistral-large-2402-v1:0", MistralText),
        ("mistral.mistral-small-2402-v1:0", MistralText),
        (MISTRAL_CHAT, MistralChat),
        ("us.anthropic.claude-3-5-haiku-20241022-v1:0", AnthropicMessages),
        (TITAN, TitanTextEmbeddingsV2),
    ],
)
def test_invoke_model_ids_resolve_to_their_family(model_id, family):
    assert providers.family_for(model_id) is family
    spec = make_spec(model_id=model_id, prompt=None, text_column="q") if family.kind == "embedding" else make_spec(model_id=model_id)
    assert type(providers.for_spec(spec)) is family


@pytest.mark.parametrize(
    "model_id, native",
    [
        (NOVA, NovaMessages),
        ("us.meta.llama3-1-8b-instruct-v1:0", Llama3),
        (MISTRAL_CHAT, MistralChat),
        (CLAUDE, AnthropicMessages),
        ("us.meta.llama4-maverick-17b-instruct-v1:0", None),
    ],
)
def test_converse_invocation_type_selects_the_converse_provider(model_id, native):
    provider = providers.for_spec(make_spec(model_id=model_id, invocation_type="Converse"))
    assert isinstance(provider, ConverseChat) and provider.native_family is native


@pytest.mark.parametrize("model_id", [TITAN, "us.amazon.titan-embed-text-v2:0"])
def test_embedding_model_with_converse_fails_before_spend(model_id):
    with pytest.raises(ProviderError, match="embedding model .*Converse invocation type is for chat models"):
        providers.for_spec(make_spec(model_id=model_id, prompt=None, text_column="q", invocation_type="Converse"))


@pytest.mark.parametrize(
    "model_id, invocation_type",
    [
        ("cohere.embed-english-v3", "InvokeModel"),  # batch support unconfirmed: not supported
        ("meta.llama2-13b-chat-v1", "InvokeModel"),
        ("amazon.titan-embed-text-v1", "InvokeModel"),
        ("amazon.nova-canvas-v1:0", "InvokeModel"),
        ("claude-3", "InvokeModel"),
        ("", "InvokeModel"),
        ("cohere.command-r-v1:0", "Converse"),
    ],
)
def test_unknown_model_lists_every_supported_family(model_id, invocation_type):
    with pytest.raises(ProviderError) as info:
        providers.for_spec(make_spec(model_id=model_id, invocation_type=invocation_type))
    message = str(info.value)
    assert "Supported families:" in message
    for family in ("anthropic-messages", "amazon-nova", "meta-llama3", "mistral-text", "mistral-chat", "titan-embed-text-v2"):
        assert family in message
    assert "invocation_type Converse" in message


def test_llama4_with_invoke_model_points_at_converse():
    with pytest.raises(ProviderError, match="with `invocation_type: Converse` only"):
        providers.for_spec(make_spec(model_id="meta.llama4-scout-17b-instruct-v1:0"))


@pytest.mark.parametrize(
    "model_id, invocation_type, params, system, match",
    [
        (NOVA, "InvokeModel", {"max_tokens": 0}, None, "max_tokens must be an integer"),
        (NOVA, "InvokeModel", {"max_tokens": 20_000}, None, r"max_tokens must be an integer in \[1, 10000\]"),
        (NOVA, "InvokeModel", {"temperature": 2}, None, "temperature must be a number"),
        (NOVA, "InvokeModel", {"maxTokens": 10}, None, r"unknown param\(s\) \['maxTokens'\]"),
        (NOVA, "InvokeModel", {"stop_sequences": "END"}, None, "stop_sequences must be a list"),
        (NOVA, "InvokeModel", {}, "  ", "system must be a non-empty string"),
        (LLAMA, "InvokeModel", {"max_gen_len": 4096}, None, r"max_tokens must be an integer in \[1, 2048\]"),
        (LLAMA, "InvokeModel", {"max_gen_len": 10, "max_tokens": 10}, None, "give max_tokens once"),
        (LLAMA, "InvokeModel", {"stop_sequences": ["x"]}, None, "no stop_sequences.*Converse"),
        (LLAMA, "InvokeModel", {"top_k": 5}, None, "no top_k"),
        (MISTRAL_TEXT, "InvokeModel", {"top_k": 0}, None, r"top_k must be an integer in \[1, 200\]"),
        (MISTRAL_TEXT, "InvokeModel", {"stop": ["a"] * 11}, None, "at most 10"),
        ("mistral.mixtral-8x7b-instruct-v0:1", "InvokeModel", {"max_tokens": 5000}, None, r"\[1, 4096\]"),
        (MISTRAL_CHAT, "InvokeModel", {"top_k": 5}, None, "max_tokens, temperature, top_p only"),
        (LLAMA, "Converse", {"max_tokens": 4096}, None, r"converse \(meta-llama3\).*\[1, 2048\]"),
        (LLAMA, "Converse", {"top_k": 4}, None, "top_k has no known Converse mapping"),
        (NOVA, "Converse", {"additional_model_request_fields": ["x"]}, None, "must be a mapping"),
        (NOVA, "Converse", {"inferenceConfig": {}}, None, "unknown param"),
    ],
)
def test_invalid_params_fail_before_spend(model_id, invocation_type, params, system, match):
    with pytest.raises(ProviderError, match=match):
        providers.for_spec(make_spec(model_id=model_id, invocation_type=invocation_type, params=params, system=system))


def _records(n: int) -> pl.DataFrame:
    texts = [NASTY[i % len(NASTY)] + f" #{i}" for i in range(n)]
    return pl.DataFrame({RECORD_ID: [f"R{i:010d}" for i in range(n)], "q": texts})


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_shard_lines_match_the_model_schema_field_by_field(case, tmp_path):
    _, kwargs, expected = case
    spec = make_spec(prompt="Q: {q}", **kwargs)
    provider = providers.for_spec(spec)
    frame = _records(120)
    path = tmp_path / "records.parquet"
    frame.write_parquet(path)
    infos = shards.write_shards(pl.scan_parquet(path), spec, provider, tmp_path / "out", "records.parquet")
    lines = (tmp_path / "out" / infos[0].name).read_bytes().decode("utf-8").split("\n")[:-1]  # not splitlines: U+2028 is data
    assert len(lines) == 120
    for line, rid, text in zip(lines, frame[RECORD_ID], frame["q"]):
        doc = json.loads(line)
        assert list(doc) == ["recordId", "modelInput"]
        assert doc["recordId"] == rid
        body, want = doc["modelInput"], expected("Q: " + text)
        assert list(body) == list(want)  # same fields, same order
        for field in want:
            assert body[field] == want[field], field
    # The fast path (text_slot) writes the same bytes as the provider's own expression.
    slow = frame.lazy().select(
        shards.record_id_json(), provider.model_input(shards.text_expr(shards.text_parts(spec, provider)))
    ).collect()
    rebuilt = [f'{a},"modelInput":{b}}}' for a, b in slow.iter_rows()]
    assert rebuilt == lines


def _answer(spec, provider, lines: list[str]) -> pl.DataFrame:
    """The emulator's model engine answers the bodies; the provider parses `.out` lines."""
    engine = resolve_engine(spec.model_id, spec.invocation_type, EmulatedTextGenerator, lambda: None)
    docs = [json.loads(line) for line in lines]
    outcomes = engine.run([d["modelInput"] for d in docs])
    assert all(o.ok for o in outcomes), [o.error_message for o in outcomes if not o.ok][:3]
    return docs, outcomes


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_emulator_answers_and_uniform_columns_parse(case, tmp_path):
    _, kwargs, _ = case
    spec = make_spec(prompt="Q: {q}", **kwargs)
    provider = providers.for_spec(spec)
    lines = shards.render_lines(_records(30).lazy(), spec, provider).collect()["line"].to_list()
    docs, outcomes = _answer(spec, provider, lines)
    out = tmp_path / "shard-00000.jsonl.out"
    out.write_text(
        "".join(
            json.dumps({"recordId": d["recordId"], "modelInput": d["modelInput"], "modelOutput": json.loads(o.output_json)}) + "\n"
            for d, o in zip(docs, outcomes)
        )
        + json.dumps({"recordId": "RERR", "modelInput": {}, "error": {"errorCode": 400, "errorMessage": "bad"}}) + "\n"
    )
    df = results.read_outputs([str(out)], provider).collect()
    assert df.columns[:5] == [RECORD_ID, "response", "stop_reason", "input_tokens", "output_tokens"]
    assert df.schema["response"] == pl.String and df.schema["stop_reason"] == pl.String
    assert df.schema["input_tokens"] == pl.Int64 and df.schema["output_tokens"] == pl.Int64
    ok, err = df.head(30), df.tail(1)
    assert ok["response"].str.contains("emulated").all()
    assert ok["stop_reason"].is_not_null().all()
    assert err.select("response", "stop_reason", "input_tokens", "output_tokens").null_count().row(0) == (1, 1, 1, 1)
    assert err["error_code"].item() == "400"
    if isinstance(provider, MistralText) or (isinstance(provider, MistralChat)):
        # No token counts in a Mistral InvokeModel body: null, never a made-up number.
        assert ok["input_tokens"].null_count() == 30 and ok["output_tokens"].null_count() == 30
    else:
        assert ok["input_tokens"].to_list() == [o.input_tokens for o in outcomes]
        assert ok["output_tokens"].to_list() == [o.output_tokens for o in outcomes]


def test_titan_embedding_columns_are_fixed_size(tmp_path):
    spec = make_spec(model_id=TITAN, prompt=None, text_column="q", params={"dimensions": 256})
    provider = providers.for_spec(spec)
    assert results.output_columns(provider) == ["embedding", "input_tokens", "error_code", "error_message"]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_size_rule_leaves_room_for_system_and_answer(case):
    _, kwargs, _ = case
    provider = providers.for_spec(make_spec(**kwargs))
    assert 0 < provider.max_input_tokens < 1_000_000
    assert provider.family in provider.size_rule()
