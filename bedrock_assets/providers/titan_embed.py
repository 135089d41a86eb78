"""Amazon Titan Text Embeddings V2 (`amazon.titan-embed-text-v2:0`).

Request: `{"inputText", "dimensions" (256|512|1024, default 1024), "normalize" (default true)}`.
Response: `embedding` (floats), `inputTextTokenCount`. There is no `usage` key, so token
accounting must read `inputTextTokenCount` (litellm#41750 recorded 0 tokens by reading `usage`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from bedrock_assets.providers.base import Provider, ProviderError, json_object, json_value

DIMENSIONS = (256, 512, 1024)


class TitanTextEmbeddingsV2(Provider):
    family = "titan-embed-text-v2"
    kind = "embedding"
    model_prefixes = ("amazon.titan-embed-text-v2",)
    output_schema = pl.Struct({"embedding": pl.List(pl.Float32), "inputTextTokenCount": pl.Int64})
    ALLOWED_PARAMS = ("dimensions", "normalize")

    def __init__(self, model_id: str, params: Mapping[str, Any], system: str | None) -> None:
        super().__init__(model_id, params, system)
        unknown = sorted(set(self.params) - set(self.ALLOWED_PARAMS))
        if unknown:
            raise ProviderError(
                f"titan-embed-text-v2: unknown param(s) {unknown}; allowed: {list(self.ALLOWED_PARAMS)}"
            )
        if system is not None:
            raise ProviderError("titan-embed-text-v2: embedding models take no system prompt")
        self.dimensions = self.params.get("dimensions", 1024)
        if isinstance(self.dimensions, bool) or self.dimensions not in DIMENSIONS:
            raise ProviderError(
                f"titan-embed-text-v2: dimensions must be one of {list(DIMENSIONS)}, got {self.dimensions!r}"
            )
        self.normalize = self.params.get("normalize", True)
        if not isinstance(self.normalize, bool):
            raise ProviderError(f"titan-embed-text-v2: normalize must be true or false, got {self.normalize!r}")

    def model_input(self, text: pl.Expr) -> pl.Expr:
        # inputText last: the text is then the last member, which text_slot relies on.
        return json_object(
            {"dimensions": pl.lit(self.dimensions), "normalize": pl.lit(self.normalize), "inputText": text}
        )

    def text_slot(self) -> tuple[str, str]:
        return f'{{"dimensions":{self.dimensions},"normalize":{json_value(self.normalize)},"inputText":', "}"

    @property
    def max_input_chars(self) -> int:
        return 50_000  # documented limit of inputText

    @property
    def max_input_tokens(self) -> int:
        return 8_192  # documented limit of inputText

    def output_columns(self, model_output: pl.Expr) -> dict[str, pl.Expr]:
        return {
            # Fixed-size array: every embedding of a job has `dimensions` floats.
            "embedding": model_output.struct.field("embedding").list.to_array(self.dimensions),
            "input_tokens": model_output.struct.field("inputTextTokenCount"),
        }
