import json

import polars as pl
import pytest

from bedrock_assets import providers
from bedrock_assets.providers import ProviderError
from bedrock_assets.providers.anthropic import AnthropicMessages
from bedrock_assets.providers.titan_embed import TitanTextEmbeddingsV2

from dp_helpers import CLAUDE, TITAN, make_spec
from nasty_strings import NASTY


@pytest.mark.parametrize(
    "model_id, family",
    [
        (CLAUDE, AnthropicMessages),
        ("anthropic.claude-3-5-sonnet-20240620-v1:0", AnthropicMessages),
        ("us.anthropic.claude-3-5-haiku-20241022-v1:0", AnthropicMessages),
        ("eu.anthropic.claude-3-haiku-20240307-v1:0", AnthropicMessages),
        ("apac.anthropic.claude-3-haiku-20240307-v1:0", AnthropicMessages),
        ("global.anthropic.claude-sonnet-4-20250514-v1:0", AnthropicMessages),
        ("arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0", AnthropicMessages),
        ("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0", AnthropicMessages),
        (TITAN, TitanTextEmbeddingsV2),
        ("arn:aws:bedrock:eu-west-1::foundation-model/amazon.titan-embed-text-v2:0", TitanTextEmbeddingsV2),
    ],
)
def test_model_id_resolves_to_family(model_id, family):
    assert providers.family_for(model_id) is family


@pytest.mark.parametrize("model_id", ["cohere.command-r-v1:0", "amazon.titan-embed-text-v1", "claude-3", ""])
def test_unknown_model_lists_supported_families(model_id):
    with pytest.raises(ProviderError, match=r"Supported families: .*anthropic-messages .*titan-embed-text-v2"):
        providers.family_for(model_id)


@pytest.mark.parametrize(
    "model_id, params, system, match",
    [
        (CLAUDE, {"max_tokens": 0}, None, "max_tokens must be an integer"),
        (CLAUDE, {"max_tokens": "10"}, None, "max_tokens"),
        (CLAUDE, {"temperature": 1.5}, None, "temperature must be a number"),
        (CLAUDE, {"top_k": -1}, None, "top_k"),
        (CLAUDE, {"stop_sequences": "END"}, None, "stop_sequences"),
        (CLAUDE, {"max_token": 10}, None, r"unknown param\(s\) \['max_token'\]"),
        (TITAN, {"dimensions": 300}, None, r"dimensions must be one of \[256, 512, 1024\], got 300"),
        (TITAN, {"normalize": "yes"}, None, "normalize"),
        (TITAN, {"dims": 256}, None, "unknown param"),
        (TITAN, {}, "be nice", "no system prompt"),
    ],
)
def test_invalid_params_raise(model_id, params, system, match):
    with pytest.raises(ProviderError, match=match):
        providers.for_spec(make_spec(model_id=model_id, params=params, system=system))


def _body(provider, text):
    df = pl.DataFrame({"t": [text]})
    return json.loads(df.select(provider.model_input(pl.col("t"))).item())


@pytest.mark.parametrize("text", NASTY)
def test_anthropic_body_round_trips(text):
    p = providers.for_spec(
        make_spec(params={"max_tokens": 200, "temperature": 0.7, "top_p": 0.9, "top_k": 5,
                          "stop_sequences": ["\n\nHuman:"]}, system='Be "brief" — ünï')
    )
    assert _body(p, text) == {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 200,
        "system": 'Be "brief" — ünï',
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 5,
        "stop_sequences": ["\n\nHuman:"],
        "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
    }


def test_anthropic_defaults_max_tokens():
    body = _body(providers.for_spec(make_spec(params={})), "x")
    assert body == {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 1024,
                    "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}


@pytest.mark.parametrize("text", NASTY)
def test_titan_body_round_trips(text):
    p = providers.for_spec(make_spec(model_id=TITAN, prompt=None, text_column="t", params={"dimensions": 256}))
    assert _body(p, text) == {"inputText": text, "dimensions": 256, "normalize": True}


def test_size_rules_are_documented():
    claude = providers.for_spec(make_spec(params={"max_tokens": 1000}))
    titan = providers.for_spec(make_spec(model_id=TITAN, params={}))
    assert claude.max_input_tokens == 199_000 and claude.max_input_chars is None
    assert titan.max_input_chars == 50_000 and titan.max_input_tokens == 8_192
    assert "50,000 characters" in titan.size_rule()
