"""Amazon Nova understanding models (Micro, Lite, Pro, Premier, Nova 2 Lite), InvokeModel type.

Request (messages-v1, docs/bedrock-facts.md §5): `{"schemaVersion":"messages-v1", ["system":[{"text"}]],
"inferenceConfig":{"maxTokens",["temperature","topP","topK","stopSequences"]},
"messages":[{"role":"user","content":[{"text":...}]}]}`. `maxTokens` is used, not the older
`max_new_tokens` spelling (which one the service honours for every Nova version is unconfirmed;
AWS's current schema page shows `maxTokens`). `messages` is last so everything before it is one
constant string per spec.

Response: `output.message.content[].text`, `stopReason` (`end_turn|max_tokens|stop_sequence|
content_filtered|...`), `usage{inputTokens,outputTokens,totalTokens}`. The Converse response has
the same fields, so `converse.py` reuses `messages_v1_output_*` below.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from bedrock_assets.providers import common
from bedrock_assets.providers.base import Provider, estimated_tokens

FAMILY = "amazon-nova"
SCHEMA_VERSION = "messages-v1"
# (base id prefix, context window tokens, largest maxTokens)
_LIMITS = (
    ("amazon.nova-micro", 128_000, 10_000),
    ("amazon.nova-lite", 300_000, 10_000),
    ("amazon.nova-pro", 300_000, 10_000),
    ("amazon.nova-premier", 1_000_000, 32_000),
    ("amazon.nova-2-lite", 300_000, 32_000),
)

# The messages-v1 / Converse response, text blocks only (image/tool/reasoning blocks are skipped).
MESSAGES_V1_OUTPUT = pl.Struct(
    {
        "output": pl.Struct({"message": pl.Struct({"content": pl.List(pl.Struct({"text": pl.String}))})}),
        "stopReason": pl.String,
        "usage": pl.Struct({"inputTokens": pl.Int64, "outputTokens": pl.Int64}),
    }
)


def messages_v1_output_columns(model_output: pl.Expr) -> dict[str, pl.Expr]:
    """`response` (all text blocks joined), `stop_reason`, `input_tokens`, `output_tokens`."""
    blocks = model_output.struct.field("output").struct.field("message").struct.field("content")
    text = blocks.list.eval(pl.element().struct.field("text").drop_nulls()).list.join("")
    usage = model_output.struct.field("usage")
    return {
        "response": pl.when(model_output.is_not_null()).then(text),
        "stop_reason": model_output.struct.field("stopReason"),
        "input_tokens": usage.struct.field("inputTokens"),
        "output_tokens": usage.struct.field("outputTokens"),
    }


def _limits(base_id: str) -> tuple[int, int]:
    for prefix, context, max_out in _LIMITS:
        if base_id.startswith(prefix):
            return context, max_out
    return 128_000, 10_000


class NovaMessages(common.UserTextMessage, Provider):
    family = FAMILY
    kind = "text"
    model_prefixes = tuple(prefix for prefix, _, _ in _LIMITS)
    output_schema = MESSAGES_V1_OUTPUT
    ALLOWED_PARAMS = ("max_tokens", "temperature", "top_p", "top_k", "stop_sequences")

    def __init__(self, model_id: str, params: Mapping[str, Any], system: str | None) -> None:
        super().__init__(model_id, params, system)
        p = common.known_params(FAMILY, self.params, self.ALLOWED_PARAMS)
        self.context_tokens, max_out = _limits(common.base_model_id(model_id))
        config: dict[str, Any] = {
            "maxTokens": common.integer(FAMILY, "max_tokens", p.get("max_tokens", common.DEFAULT_MAX_TOKENS), 1, max_out)
        }
        config |= common.sampling_fields(
            FAMILY, p, {"temperature": "temperature", "top_p": "topP", "top_k": "topK", "stop_sequences": "stopSequences"},
            top_k_range=(0, 500),
        )
        self.max_tokens: int = config["maxTokens"]
        self.system = common.system_text(FAMILY, system)
        body: dict[str, Any] = {"schemaVersion": SCHEMA_VERSION}
        if self.system is not None:
            body["system"] = [{"text": self.system}]
        body["inferenceConfig"] = config
        self._set_constant_body(body)

    @property
    def max_input_tokens(self) -> int:
        system_tokens = estimated_tokens(len(self.system.encode())) if self.system else 0
        return self.context_tokens - self.max_tokens - system_tokens

    def output_columns(self, model_output: pl.Expr) -> dict[str, pl.Expr]:
        return messages_v1_output_columns(model_output)
