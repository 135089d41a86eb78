"""The provider interface: one model family's request body and response parsing.

A provider turns a text expression (the rendered prompt, or the column to embed) into the JSON
text of Bedrock's `modelInput`, and turns the parsed `modelOutput` struct into uniform columns.
Both sides are polars expressions, so a provider never sees a single row in Python.

Instances are *bound* to a spec's params: `Family.from_spec(spec)` checks the params once (before
any spend) and the instance then renders every record with them.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import polars as pl

# Token counts are not known before the model's tokenizer runs, so record limits use an estimate.
# 3 UTF-8 bytes per token over-estimates tokens for English (~4+ bytes/token), code and numbers
# (~3), and matches CJK (3 bytes/char, ~1 token/char): a record we accept should fit; a record we
# reject may in rare cases have fitted. Conservative on purpose: a rejected record costs nothing,
# an oversized one costs a failed record after hours in the queue.
BYTES_PER_TOKEN_ESTIMATE = 3


class ProviderError(ValueError):
    """A model id or model parameter the provider cannot use; raised before anything is spent."""


def json_value(value: Any) -> str:
    """Compact JSON text for a constant (params, system prompt): UTF-8 kept, no spaces."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def json_object(fields: Mapping[str, pl.Expr]) -> pl.Expr:
    """JSON text `{"k":v,...}` of expressions, escaped by polars' serializer (exact JSON)."""
    return pl.struct([expr.alias(name) for name, expr in fields.items()]).struct.json_encode()


def estimated_tokens(utf8_bytes: int) -> int:
    return math.ceil(utf8_bytes / BYTES_PER_TOKEN_ESTIMATE)


class Provider(ABC):
    """One model family. Subclasses set the class attributes and implement the methods below.

    To add a family: write a module with a subclass, then add it to `REGISTRY` in
    `bedrock_assets/providers/__init__.py`, and list its model ids in `known_models.py`. Nothing
    else in the data plane changes.
    """

    family: ClassVar[str]  # short name shown in errors, e.g. "anthropic-messages"
    kind: ClassVar[Literal["text", "embedding"]]
    # Base model ids start with one of these (after stripping ARN and inference-profile prefixes).
    model_prefixes: ClassVar[tuple[str, ...]]
    # The dtype of `modelOutput` to parse; fields not listed are skipped by the JSON reader.
    output_schema: ClassVar[pl.Struct]

    def __init__(self, model_id: str, params: Mapping[str, Any], system: str | None) -> None:
        self.model_id = model_id
        self.params = dict(params)
        self.system = system

    @classmethod
    def from_spec(cls, spec: Any) -> "Provider":
        """Bind to a BatchSpec (model_id, params, system), raising ProviderError on bad params."""
        return cls(spec.model_id, spec.params or {}, spec.system)

    # --- request -----------------------------------------------------------------------------
    @abstractmethod
    def model_input(self, text: pl.Expr) -> pl.Expr:
        """JSON text of `modelInput` for each row, from the (unescaped) text expression."""

    def text_slot(self) -> tuple[str, str] | None:
        """Optional fast path: `(prefix, suffix)` such that `prefix + <JSON string of the text> +
        suffix` is exactly `model_input(text)`, with the text the last member of its object (so
        `suffix` starts with `}`). The data plane then JSON-escapes only the column values, not
        the template's constant text, on every row. None = always use `model_input`."""
        return None

    @property
    def max_input_chars(self) -> int | None:
        """Largest accepted input text in characters, or None when only tokens are limited."""
        return None

    @property
    @abstractmethod
    def max_input_tokens(self) -> int:
        """Largest accepted input text, in (estimated) tokens; see BYTES_PER_TOKEN_ESTIMATE."""

    def size_rule(self) -> str:
        chars = f"at most {self.max_input_chars:,} characters and " if self.max_input_chars else ""
        return (
            f"{self.family}: input text {chars}at most {self.max_input_tokens:,} tokens "
            f"(estimated as UTF-8 bytes / {BYTES_PER_TOKEN_ESTIMATE})"
        )

    # --- response ----------------------------------------------------------------------------
    @abstractmethod
    def output_columns(self, model_output: pl.Expr) -> dict[str, pl.Expr]:
        """Uniform result columns from the parsed `modelOutput` struct (null on error lines)."""
