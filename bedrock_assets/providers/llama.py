"""Meta Llama 3.x instruct models (3, 3.1, 3.2, 3.3), InvokeModel type.

Request (docs/bedrock-facts.md §5): `{"max_gen_len", ["temperature","top_p"], "prompt"}` where `prompt` is the
record's text wrapped in the Llama 3 chat template:

    <|begin_of_text|>[<|start_header_id|>system<|end_header_id|>\\n\\n{system}<|eot_id|>]
    <|start_header_id|>user<|end_header_id|>\\n\\n{text}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\\n\\n

Response: `generation`, `prompt_token_count`, `generation_token_count`, `stop_reason`
(`stop|length`). Llama 4 uses a different template and is reached through the Converse type.
The InvokeModel body has no stop sequences or top_k, so those params are errors here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from bedrock_assets.providers import common
from bedrock_assets.providers.base import Provider, ProviderError, json_value

FAMILY = "meta-llama3"
BEGIN = "<|begin_of_text|>"
USER_HEADER = "<|start_header_id|>user<|end_header_id|>\n\n"
SYSTEM_HEADER = "<|start_header_id|>system<|end_header_id|>\n\n"
EOT = "<|eot_id|>"
ASSISTANT_HEADER = "<|start_header_id|>assistant<|end_header_id|>\n\n"
MAX_GEN_LEN = 2048  # documented maximum of max_gen_len
# Llama 3 (8B/70B) has an 8k window; 3.1, 3.2 and 3.3 have 128k.
_CONTEXT = (("meta.llama3-8b", 8_192), ("meta.llama3-70b", 8_192))


def chat_template(system: str | None) -> tuple[str, str]:
    """(text before the record's text, text after it) of the Llama 3 chat template."""
    head = BEGIN + (SYSTEM_HEADER + system + EOT if system else "") + USER_HEADER
    return head, EOT + ASSISTANT_HEADER


class Llama3(common.TemplatedPrompt, Provider):
    family = FAMILY
    kind = "text"
    model_prefixes = ("meta.llama3-",)
    output_schema = pl.Struct(
        {
            "generation": pl.String,
            "prompt_token_count": pl.Int64,
            "generation_token_count": pl.Int64,
            "stop_reason": pl.String,
        }
    )
    ALLOWED_PARAMS = ("max_tokens", "temperature", "top_p")
    ALIASES = {"max_gen_len": "max_tokens"}

    def __init__(self, model_id: str, params: Mapping[str, Any], system: str | None) -> None:
        super().__init__(model_id, params, system)
        for unsupported in ("top_k", "stop_sequences", "stop"):
            if unsupported in self.params:
                raise ProviderError(
                    f"{FAMILY}: the Llama InvokeModel body has no {unsupported}; allowed params: max_tokens "
                    "(or max_gen_len), temperature, top_p. Use invocation_type: Converse for stop sequences"
                )
        p = common.known_params(FAMILY, self.params, self.ALLOWED_PARAMS, self.ALIASES)
        self.context_tokens = common.context_for(common.base_model_id(model_id), _CONTEXT, 128_000)
        body: dict[str, Any] = {
            "max_gen_len": common.integer(FAMILY, "max_tokens", p.get("max_tokens", common.DEFAULT_MAX_TOKENS), 1, MAX_GEN_LEN)
        }
        body |= common.sampling_fields(FAMILY, p, {"temperature": "temperature", "top_p": "top_p"})
        self.max_tokens: int = body["max_gen_len"]
        self.system = common.system_text(FAMILY, system)
        self._head, self._tail = chat_template(self.system)
        self._prefix = json_value(body)[:-1] + ","

    def output_columns(self, model_output: pl.Expr) -> dict[str, pl.Expr]:
        return {
            "response": model_output.struct.field("generation"),
            "stop_reason": model_output.struct.field("stop_reason"),
            "input_tokens": model_output.struct.field("prompt_token_count"),
            "output_tokens": model_output.struct.field("generation_token_count"),
        }

