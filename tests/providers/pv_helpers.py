"""Helpers for the provider tests: specs in code, expected bodies written out by
hand (independently of the providers' own code)."""

from __future__ import annotations

from typing import Any

from bedrock_assets.specs import BatchSpec

NOVA = "amazon.nova-lite-v1:0"
LLAMA = "meta.llama3-1-8b-instruct-v1:0"
MISTRAL_TEXT = "mistral.mistral-7b-instruct-v0:2"
MISTRAL_CHAT = "mistral.mistral-large-2407-v1:0"
CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"
TITAN = "amazon.titan-embed-text-v2:0"


SYSTEM = 'Answer in "one" line — ünï.\nNo lists.'

LLAMA_HEAD = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n" + SYSTEM + "<|eot_id|>"
LLAMA_USER = "<|start_header_id|>user<|end_header_id|>\n\n"
LLAMA_TAIL = "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"


def make_spec(**overrides: Any) -> BatchSpec:
    base: dict[str, Any] = dict(name="t", model_id=NOVA, prompt="Q: {q}", min_records_per_job=100)
    base.update(overrides)
    return BatchSpec(**base)


# (case id, spec kwargs, expected modelInput for the rendered text `t`)
def expected_bodies() -> list[tuple[str, dict[str, Any], Any]]:
    return [
        (
            "nova",
            dict(model_id="us.amazon.nova-lite-v1:0", system=SYSTEM,
                 params={"max_tokens": 300, "temperature": 0.5, "top_p": 0.9, "top_k": 40, "stop_sequences": ["END"]}),
            lambda t: {
                "schemaVersion": "messages-v1",
                "system": [{"text": SYSTEM}],
                "inferenceConfig": {"maxTokens": 300, "temperature": 0.5, "topP": 0.9, "topK": 40, "stopSequences": ["END"]},
                "messages": [{"role": "user", "content": [{"text": t}]}],
            },
        ),
        (
            "nova-defaults",
            dict(model_id="amazon.nova-micro-v1:0", params={}),
            lambda t: {
                "schemaVersion": "messages-v1",
                "inferenceConfig": {"maxTokens": 1024},
                "messages": [{"role": "user", "content": [{"text": t}]}],
            },
        ),
        (
            "llama",
            dict(model_id=LLAMA, system=SYSTEM, params={"max_gen_len": 256, "temperature": 0.2, "top_p": 0.8}),
            lambda t: {
                "max_gen_len": 256,
                "temperature": 0.2,
                "top_p": 0.8,
                "prompt": LLAMA_HEAD + LLAMA_USER + t + LLAMA_TAIL,
            },
        ),
        (
            "llama-no-system",
            dict(model_id="eu.meta.llama3-2-3b-instruct-v1:0", params={"max_tokens": 64}),
            lambda t: {"max_gen_len": 64, "prompt": "<|begin_of_text|>" + LLAMA_USER + t + LLAMA_TAIL},
        ),
        (
            "mistral-text",
            dict(model_id=MISTRAL_TEXT, system=SYSTEM,
                 params={"max_tokens": 200, "temperature": 0.3, "top_p": 0.7, "top_k": 50, "stop": ["###"]}),
            lambda t: {
                "max_tokens": 200,
                "temperature": 0.3,
                "top_p": 0.7,
                "top_k": 50,
                "stop": ["###"],
                "prompt": "<s>[INST] " + SYSTEM + "\n\n" + t + " [/INST]",
            },
        ),
        (
            "mistral-chat",
            dict(model_id=MISTRAL_CHAT, system=SYSTEM, params={"max_tokens": 200, "temperature": 0.3, "top_p": 0.7}),
            lambda t: {
                "max_tokens": 200,
                "temperature": 0.3,
                "top_p": 0.7,
                "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": t}],
            },
        ),
        (
            "converse-llama",
            dict(model_id="us.meta.llama3-3-70b-instruct-v1:0", invocation_type="Converse", system=SYSTEM,
                 params={"max_tokens": 100, "temperature": 0.1, "top_p": 0.5, "stop_sequences": ["\n\n"]}),
            lambda t: {
                "system": [{"text": SYSTEM}],
                "inferenceConfig": {"maxTokens": 100, "temperature": 0.1, "topP": 0.5, "stopSequences": ["\n\n"]},
                "messages": [{"role": "user", "content": [{"text": t}]}],
            },
        ),
        (
            "converse-nova-top-k",
            dict(model_id="amazon.nova-pro-v1:0", invocation_type="Converse", params={"max_tokens": 100, "top_k": 20}),
            lambda t: {
                "inferenceConfig": {"maxTokens": 100},
                "additionalModelRequestFields": {"inferenceConfig": {"topK": 20}},
                "messages": [{"role": "user", "content": [{"text": t}]}],
            },
        ),
        (
            "converse-claude-extra",
            dict(model_id="global.anthropic.claude-sonnet-4-20250514-v1:0", invocation_type="Converse",
                 params={"top_k": 5, "additional_model_request_fields": {"anthropic_beta": ["x"]}}),
            lambda t: {
                "inferenceConfig": {"maxTokens": 1024},
                "additionalModelRequestFields": {"top_k": 5, "anthropic_beta": ["x"]},
                "messages": [{"role": "user", "content": [{"text": t}]}],
            },
        ),
        (
            "converse-llama4",
            dict(model_id="us.meta.llama4-scout-17b-instruct-v1:0", invocation_type="Converse"),
            lambda t: {
                "inferenceConfig": {"maxTokens": 1024},
                "messages": [{"role": "user", "content": [{"text": t}]}],
            },
        ),
        (
            "anthropic",
            dict(model_id=CLAUDE, system=SYSTEM,
                 params={"max_tokens": 50, "temperature": 1.0, "top_p": 0.9, "top_k": 3, "stop_sequences": ["x"]}),
            lambda t: {
                "anthropic_version": "bedrock-2023-05-31",
                "max_tokens": 50,
                "system": SYSTEM,
                "temperature": 1.0,
                "top_p": 0.9,
                "top_k": 3,
                "stop_sequences": ["x"],
                "messages": [{"role": "user", "content": [{"type": "text", "text": t}]}],
            },
        ),
    ]
