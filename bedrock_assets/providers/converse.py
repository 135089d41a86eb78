"""The Converse invocation type (`invocation_type: Converse` in the spec): one body for every
chat model (docs/bedrock-facts.md §5).

Request: `{["system":[{"text"}]], "inferenceConfig":{"maxTokens",["temperature","topP",
"stopSequences"]}, ["additionalModelRequestFields":{...}], "messages":[{"role":"user",
"content":[{"text":...}]}]}`. The same keys are the keyword arguments of bedrock-runtime
`converse`, so the on-demand fallback sends the body as is. Response: `output.message.content[]
.text`, `stopReason`, `usage{inputTokens,outputTokens,totalTokens}` (read with Nova's parser: same
fields).

Params are the uniform ones (`max_tokens`, `temperature`, `top_p`, `stop_sequences`, `top_k`)
plus `additional_model_request_fields` (a mapping passed through verbatim, for provider-specific
fields). `top_k` is not a Converse field: it goes into additionalModelRequestFields in the
model's own spelling (Anthropic/Mistral `top_k`, Nova `inferenceConfig.topK`). The numeric ranges
are checked by the model's InvokeModel provider when there is one (same limits).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import polars as pl

from bedrock_assets.providers import common
from bedrock_assets.providers.anthropic import CONTEXT_TOKENS as ANTHROPIC_CONTEXT
from bedrock_assets.providers.anthropic import AnthropicMessages
from bedrock_assets.providers.base import Provider, ProviderError, estimated_tokens, json_value
from bedrock_assets.providers.nova import MESSAGES_V1_OUTPUT, messages_v1_output_columns

FAMILY = "converse"
# Chat models with batch support but no InvokeModel provider here (docs/bedrock-facts.md §5: Llama 4 and the
# later additions). Converse is their only shape in this project.
CONVERSE_ONLY_PREFIXES = ("meta.llama4-", "qwen.", "deepseek.", "openai.gpt-oss")
DEFAULT_CONTEXT = 128_000

# How top_k reaches each family through additionalModelRequestFields.
_TOP_K = {
    "anthropic-messages": lambda k: {"top_k": k},
    "mistral-text": lambda k: {"top_k": k},
    "amazon-nova": lambda k: {"inferenceConfig": {"topK": k}},
}


def _merge(a: dict[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


class ConverseChat(common.UserTextMessage, Provider):
    family = FAMILY
    kind = "text"
    model_prefixes = ()  # chosen by the spec's invocation_type, not by model id
    output_schema = MESSAGES_V1_OUTPUT
    ALLOWED_PARAMS = ("max_tokens", "temperature", "top_p", "top_k", "stop_sequences", "additional_model_request_fields")

    def __init__(
        self,
        model_id: str,
        params: Mapping[str, Any],
        system: str | None,
        native_family: type[Provider] | None = None,
    ) -> None:
        super().__init__(model_id, params, system)
        p = common.known_params(FAMILY, self.params, self.ALLOWED_PARAMS)
        self.native_family = native_family
        self.system = common.system_text(FAMILY, system)
        native_name = native_family.family if native_family else "?"

        # Numeric limits: the model's InvokeModel provider checks the params it also takes.
        native: Provider | None = None
        if native_family is not None:
            allowed = getattr(native_family, "ALLOWED_PARAMS", ())
            checked = {k: v for k, v in p.items() if k in ("max_tokens", "temperature", "top_p", "top_k") and k in allowed}
            try:
                native = native_family(model_id, checked, system)
            except ProviderError as exc:
                raise ProviderError(f"{FAMILY} ({native_name}): {exc}") from None
        self.native = native

        max_tokens = p.get("max_tokens", common.DEFAULT_MAX_TOKENS)
        config: dict[str, Any] = {
            "maxTokens": common.integer(FAMILY, "max_tokens", max_tokens, 1, DEFAULT_CONTEXT - 1)
        }
        # top_k has no Converse inferenceConfig field: it is mapped per model below.
        config |= common.sampling_fields(
            FAMILY, p, {"temperature": "temperature", "top_p": "topP", "stop_sequences": "stopSequences"}
        )
        extra: dict[str, Any] = {}
        if "additional_model_request_fields" in p:
            raw = p["additional_model_request_fields"]
            if not isinstance(raw, Mapping):
                raise ProviderError(f"{FAMILY}: additional_model_request_fields must be a mapping, got {raw!r}")
            try:
                json_value(raw)
            except (TypeError, ValueError) as exc:
                raise ProviderError(f"{FAMILY}: additional_model_request_fields is not JSON: {exc}") from None
            extra = json.loads(json_value(raw))
        if "top_k" in p:
            to_field = _TOP_K.get(native_name)
            if to_field is None:
                raise ProviderError(
                    f"{FAMILY}: top_k has no known Converse mapping for model {model_id!r} ({native_name}); "
                    "put the model's own field in additional_model_request_fields"
                )
            extra = _merge(to_field(common.integer(FAMILY, "top_k", p["top_k"], 0, 500)), extra)
        self.max_tokens: int = config["maxTokens"]
        body: dict[str, Any] = {}
        if self.system is not None:
            body["system"] = [{"text": self.system}]
        body["inferenceConfig"] = config
        if extra:
            body["additionalModelRequestFields"] = extra
        self.body_constants = body
        self._set_constant_body(body)

    @property
    def max_input_tokens(self) -> int:
        if self.native is not None:
            context = getattr(self.native, "context_tokens", None) or (
                ANTHROPIC_CONTEXT if isinstance(self.native, AnthropicMessages) else DEFAULT_CONTEXT
            )
        else:
            context = DEFAULT_CONTEXT
        system_tokens = estimated_tokens(len(self.system.encode())) if self.system else 0
        return context - self.max_tokens - system_tokens

    def output_columns(self, model_output: pl.Expr) -> dict[str, pl.Expr]:
        return messages_v1_output_columns(model_output)
