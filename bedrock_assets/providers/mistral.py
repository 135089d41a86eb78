"""Mistral AI models, InvokeModel type. The body shape is chosen by model id (docs/bedrock-facts.md §5):

* Text completion (Mistral 7B, Mixtral 8x7B, Mistral Large 24.02, Mistral Small 24.02):
  `{"max_tokens", ["temperature","top_p","top_k","stop"], "prompt": "<s>[INST] {text} [/INST]"}`
  -> `outputs[0].text`, `outputs[0].stop_reason` (`stop|length`). The template has no system
  role, so a system prompt is put inside the instruction, before the text, separated by a blank
  line.
* Chat (Mistral Large 2, 24.07): `{"max_tokens", ["temperature","top_p"], "messages":
  [{"role":"system","content"}, {"role":"user","content"}]}` -> `choices[0].message.content`,
  `choices[0].stop_reason`. **Unconfirmed**: this shape was not checked against AWS's docs (unconfirmed in
  docs/bedrock-facts.md §5); the emulator answers it.

Neither response carries token counts in the body, so `input_tokens` / `output_tokens` are null
per record (a `usage{prompt_tokens,completion_tokens}` is read if a response has one); the job's
`manifest.json.out` totals are the token record. Use `invocation_type: Converse` for per-record
counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from bedrock_assets.providers import common
from bedrock_assets.providers.base import Provider, ProviderError, estimated_tokens, json_object, json_value

INST_OPEN = "<s>[INST] "
INST_CLOSE = " [/INST]"
# (base id prefix, context window, largest max_tokens)
_TEXT_LIMITS = (
    ("mistral.mistral-7b-instruct", 32_000, 8_192),
    ("mistral.mixtral-8x7b-instruct", 32_000, 4_096),
    ("mistral.mistral-large-2402", 32_000, 8_192),
    ("mistral.mistral-small-2402", 32_000, 8_192),
)
_CHAT_LIMITS = (("mistral.mistral-large-2407", 128_000, 8_192),)


def _limits(base_id: str, table: tuple[tuple[str, int, int], ...]) -> tuple[int, int]:
    for prefix, context, max_out in table:
        if base_id.startswith(prefix):
            return context, max_out
    return 32_000, 8_192


class MistralText(common.TemplatedPrompt, Provider):
    family = "mistral-text"
    kind = "text"
    model_prefixes = tuple(prefix for prefix, _, _ in _TEXT_LIMITS)
    output_schema = pl.Struct({"outputs": pl.List(pl.Struct({"text": pl.String, "stop_reason": pl.String}))})
    ALLOWED_PARAMS = ("max_tokens", "temperature", "top_p", "top_k", "stop_sequences")
    ALIASES = {"stop": "stop_sequences"}

    def __init__(self, model_id: str, params: Mapping[str, Any], system: str | None) -> None:
        super().__init__(model_id, params, system)
        f = self.family
        p = common.known_params(f, self.params, self.ALLOWED_PARAMS, self.ALIASES)
        self.context_tokens, max_out = _limits(common.base_model_id(model_id), _TEXT_LIMITS)
        body: dict[str, Any] = {
            "max_tokens": common.integer(f, "max_tokens", p.get("max_tokens", common.DEFAULT_MAX_TOKENS), 1, max_out)
        }
        body |= common.sampling_fields(
            f, p, {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "stop_sequences": "stop"},
            top_k_range=(1, 200), max_stop_sequences=10,
        )
        self.max_tokens: int = body["max_tokens"]
        self.system = common.system_text(f, system)
        self._head = INST_OPEN + (self.system + "\n\n" if self.system else "")
        self._tail = INST_CLOSE
        self._prefix = json_value(body)[:-1] + ","

    def output_columns(self, model_output: pl.Expr) -> dict[str, pl.Expr]:
        first = model_output.struct.field("outputs").list.first()
        return {
            "response": first.struct.field("text"),
            "stop_reason": first.struct.field("stop_reason"),
            # Not in the response body: see the module doc (manifest totals hold the counts).
            "input_tokens": pl.lit(None, pl.Int64),
            "output_tokens": pl.lit(None, pl.Int64),
        }


class MistralChat(Provider):
    family = "mistral-chat"
    kind = "text"
    model_prefixes = tuple(prefix for prefix, _, _ in _CHAT_LIMITS)
    output_schema = pl.Struct(
        {
            "choices": pl.List(
                pl.Struct({"message": pl.Struct({"content": pl.String}), "stop_reason": pl.String})
            ),
            "usage": pl.Struct({"prompt_tokens": pl.Int64, "completion_tokens": pl.Int64}),
        }
    )
    ALLOWED_PARAMS = ("max_tokens", "temperature", "top_p")

    def __init__(self, model_id: str, params: Mapping[str, Any], system: str | None) -> None:
        super().__init__(model_id, params, system)
        f = self.family
        for unsupported in ("top_k", "stop_sequences", "stop"):
            if unsupported in self.params:
                raise ProviderError(
                    f"{f}: the Mistral chat body takes max_tokens, temperature, top_p only (no {unsupported}); "
                    "use invocation_type: Converse for stop sequences"
                )
        p = common.known_params(f, self.params, self.ALLOWED_PARAMS)
        self.context_tokens, max_out = _limits(common.base_model_id(model_id), _CHAT_LIMITS)
        body: dict[str, Any] = {
            "max_tokens": common.integer(f, "max_tokens", p.get("max_tokens", common.DEFAULT_MAX_TOKENS), 1, max_out)
        }
        body |= common.sampling_fields(f, p, {"temperature": "temperature", "top_p": "top_p"})
        self.max_tokens: int = body["max_tokens"]
        self.system = common.system_text(f, system)
        messages = [{"role": "system", "content": self.system}] if self.system else []
        head = json_value(messages)[:-1] + ("," if messages else "")
        self._prefix = json_value(body)[:-1] + ',"messages":' + head
        self._suffix = "]}"

    @property
    def prompt_constant_text(self) -> str:
        return self.system or ""

    def model_input(self, text: pl.Expr) -> pl.Expr:
        user = json_object({"role": pl.lit("user"), "content": text})
        return pl.concat_str([pl.lit(self._prefix), user, pl.lit(self._suffix)])

    def text_slot(self) -> tuple[str, str]:
        return self._prefix + '{"role":"user","content":', "}" + self._suffix

    @property
    def max_input_tokens(self) -> int:
        return self.context_tokens - self.max_tokens - estimated_tokens(len(self.prompt_constant_text.encode()))

    def output_columns(self, model_output: pl.Expr) -> dict[str, pl.Expr]:
        first = model_output.struct.field("choices").list.first()
        usage = model_output.struct.field("usage")
        return {
            "response": first.struct.field("message").struct.field("content"),
            "stop_reason": first.struct.field("stop_reason"),
            "input_tokens": usage.struct.field("prompt_tokens"),
            "output_tokens": usage.struct.field("completion_tokens"),
        }
