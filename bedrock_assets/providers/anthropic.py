"""Anthropic Claude through the Messages API body (InvokeModel type).

Request: `{"anthropic_version","max_tokens",["system"],[sampling params],"messages":[{"role":"user",
"content":[{"type":"text","text":...}]}]}`. `messages` is last so everything before it is one
constant string per spec. Response: `content` blocks, `stop_reason`, `usage{input_tokens,output_tokens}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from bedrock_assets.providers import common
from bedrock_assets.providers.base import (
    Provider,
    ProviderError,
    estimated_tokens,
    json_object,
    json_value,
)

ANTHROPIC_VERSION = "bedrock-2023-05-31"
DEFAULT_MAX_TOKENS = 1024
# Claude 3+ context window. Prompt tokens + max_tokens must fit in it.
CONTEXT_TOKENS = 200_000


class AnthropicMessages(Provider):
    family = "anthropic-messages"
    kind = "text"
    model_prefixes = ("anthropic.claude-",)
    output_schema = pl.Struct(
        {
            "content": pl.List(pl.Struct({"type": pl.String, "text": pl.String})),
            "stop_reason": pl.String,
            "usage": pl.Struct({"input_tokens": pl.Int64, "output_tokens": pl.Int64}),
        }
    )
    ALLOWED_PARAMS = ("max_tokens", "temperature", "top_p", "top_k", "stop_sequences")

    def __init__(self, model_id: str, params: Mapping[str, Any], system: str | None) -> None:
        super().__init__(model_id, params, system)
        unknown = sorted(set(self.params) - set(self.ALLOWED_PARAMS))
        if unknown:
            raise ProviderError(
                f"anthropic-messages: unknown param(s) {unknown}; allowed: {list(self.ALLOWED_PARAMS)}"
            )
        body: dict[str, Any] = {
            "anthropic_version": ANTHROPIC_VERSION,
            "max_tokens": common.integer(
                self.family, "max_tokens", self.params.get("max_tokens", DEFAULT_MAX_TOKENS), 1, CONTEXT_TOKENS - 1
            ),
        }
        if system is not None:
            if not isinstance(system, str) or not system.strip():
                raise ProviderError("anthropic-messages: system must be a non-empty string")
            body["system"] = system
        body |= common.sampling_fields(
            self.family, self.params,
            {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "stop_sequences": "stop_sequences"},
            top_k_range=(0, 500),
        )
        self.max_tokens: int = body["max_tokens"]
        # Constant JSON before the per-record content block: `{..., "messages":[{"role":"user","content":[`
        self._prefix = json_value(body)[:-1] + ',"messages":[{"role":"user","content":['
        self._suffix = "]}]}"

    def model_input(self, text: pl.Expr) -> pl.Expr:
        block = json_object({"type": pl.lit("text"), "text": text})
        return pl.concat_str([pl.lit(self._prefix), block, pl.lit(self._suffix)])

    def text_slot(self) -> tuple[str, str]:
        return self._prefix + '{"type":"text","text":', "}" + self._suffix

    @property
    def max_input_tokens(self) -> int:
        # The system prompt shares the context window with the user text and the answer.
        system_tokens = estimated_tokens(len(self.system.encode())) if self.system else 0
        return CONTEXT_TOKENS - self.max_tokens - system_tokens

    def output_columns(self, model_output: pl.Expr) -> dict[str, pl.Expr]:
        blocks = model_output.struct.field("content")
        # Concatenate every text block (a response may carry several, or none on tool_use).
        text = blocks.list.eval(
            pl.element().filter(pl.element().struct.field("type") == "text").struct.field("text")
        ).list.join("")
        usage = model_output.struct.field("usage")
        return {
            "response": pl.when(model_output.is_not_null()).then(text),
            "stop_reason": model_output.struct.field("stop_reason"),
            "input_tokens": usage.struct.field("input_tokens"),
            "output_tokens": usage.struct.field("output_tokens"),
        }
