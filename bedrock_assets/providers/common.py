"""Shared parameter checks for the chat providers.

Every text provider takes the same spec param names, whatever the model's own spelling:
`max_tokens`, `temperature`, `top_p`, `top_k`, `stop_sequences` (each provider maps them onto
its body: Nova `inferenceConfig.maxTokens`, Llama `max_gen_len`, Mistral `stop`, ...). A param a
model does not take is an error before any spend, naming the params it does take.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from bedrock_assets.providers.base import ProviderError, estimated_tokens, json_object, json_value

# Written into every text body when the spec gives none, so the output-token upper bound used by
# the cost estimate is the body's own value (not a model default that may change).
DEFAULT_MAX_TOKENS = 1024


def number(family: str, name: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ProviderError(f"{family}: {name} must be a number in [{lo}, {hi}], got {value!r}")
    return value


def integer(family: str, name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ProviderError(f"{family}: {name} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


def string_list(family: str, name: str, value: Any, max_items: int | None = None) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
        raise ProviderError(f"{family}: {name} must be a list of non-empty strings, got {value!r}")
    if max_items is not None and len(value) > max_items:
        raise ProviderError(f"{family}: {name} takes at most {max_items} strings, got {len(value)}")
    return list(value)


def sampling_fields(
    family: str,
    params: Mapping[str, Any],
    fields: Mapping[str, str],
    top_k_range: tuple[int, int] | None = None,
    max_stop_sequences: int | None = None,
) -> dict[str, Any]:
    """The spec's sampling params that are set, checked and renamed to the body's own fields.

    `fields` maps each uniform name this family accepts (temperature, top_p, top_k,
    stop_sequences) to its field in the request body; temperature and top_p are in [0, 1]."""
    out: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in params:
            continue
        value = params[name]
        if name in ("temperature", "top_p"):
            out[field] = number(family, name, value, 0.0, 1.0)
        elif name == "top_k":
            assert top_k_range is not None, f"{family}: top_k needs a range"
            out[field] = integer(family, name, value, *top_k_range)
        elif name == "stop_sequences":
            out[field] = string_list(family, name, value, max_items=max_stop_sequences)
        else:
            raise AssertionError(f"{family}: no rule for sampling param {name!r}")
    return out


def known_params(
    family: str, params: Mapping[str, Any], allowed: Sequence[str], aliases: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Params with aliases folded into their uniform name; unknown names raise ProviderError."""
    aliases = dict(aliases or {})
    out: dict[str, Any] = {}
    unknown = []
    for key, value in params.items():
        name = aliases.get(key, key)
        if name not in allowed:
            unknown.append(key)
            continue
        if name in out:
            raise ProviderError(f"{family}: give {name} once (also given as {key!r})")
        out[name] = value
    if unknown:
        extra = f" (aliases: {', '.join(f'{a}={n}' for a, n in aliases.items())})" if aliases else ""
        raise ProviderError(f"{family}: unknown param(s) {sorted(unknown)}; allowed: {list(allowed)}{extra}")
    return out


def system_text(family: str, system: Any) -> str | None:
    if system is None:
        return None
    if not isinstance(system, str) or not system.strip():
        raise ProviderError(f"{family}: system must be a non-empty string")
    return system


def context_for(base_id: str, table: Sequence[tuple[str, int]], default: int) -> int:
    """Context window of a base model id: the first prefix of `table` it starts with."""
    for prefix, tokens in table:
        if base_id.startswith(prefix):
            return tokens
    return default


# `arn:aws:bedrock:us-east-1::foundation-model/<id>` or `...:inference-profile/<profile id>`.
_ARN = re.compile(r"^arn:aws(?:-[^:]+)?:bedrock:[^:]*:[^:]*:(?:foundation-model|inference-profile)/(.+)$")
# Cross-region inference profiles put a geography before the base id: `us.anthropic.claude-...`.
_PROFILE_PREFIX = re.compile(r"^(?:us|eu|apac|global|us-gov|jp|au|ca)\.")


def base_model_id(model_id: str) -> str:
    """The base model id behind a base id, foundation-model ARN or inference-profile id/ARN."""
    m = _ARN.match(model_id)
    bare = m.group(1) if m else model_id
    return _PROFILE_PREFIX.sub("", bare, count=1)


def bare_model_id(model_id: str) -> str:
    """The id without an ARN wrapper but with its geography prefix (`us.anthropic...`)."""
    m = _ARN.match(model_id)
    return m.group(1) if m else model_id


class TemplatedPrompt:
    """Mixin for bodies `{<constant params>, "prompt": head + text + tail}` (Llama, Mistral text).

    The subclass sets `_head`, `_tail` (the chat template around the text), `_prefix` (the JSON of
    the constant params without its closing brace, plus a comma), `max_tokens` and
    `context_tokens`."""

    _head: str
    _tail: str
    _prefix: str
    max_tokens: int
    context_tokens: int

    @property
    def prompt_constant_text(self) -> str:
        return self._head + self._tail

    def model_input(self, text: pl.Expr) -> pl.Expr:
        prompt = pl.concat_str([pl.lit(self._head), text, pl.lit(self._tail)])
        # `{"prompt":"..."}` minus its opening brace, after the constant params.
        return pl.concat_str([pl.lit(self._prefix), json_object({"prompt": prompt}).str.slice(1)])

    @property
    def max_input_tokens(self) -> int:
        return self.context_tokens - self.max_tokens - estimated_tokens(len(self.prompt_constant_text.encode()))


class UserTextMessage:
    """Mixin for bodies `{<constant fields>, "messages":[{"role":"user","content":[{"text":...}]}]}`
    (Nova messages-v1, Converse). The subclass calls `_set_constant_body(body)` and sets `system`."""

    _prefix: str
    _suffix: str
    system: str | None

    def _set_constant_body(self, body: Mapping[str, Any]) -> None:
        self._prefix = json_value(dict(body))[:-1] + ',"messages":[{"role":"user","content":['
        self._suffix = "]}]}"

    @property
    def prompt_constant_text(self) -> str:
        return self.system or ""

    def model_input(self, text: pl.Expr) -> pl.Expr:
        return pl.concat_str([pl.lit(self._prefix), json_object({"text": text}), pl.lit(self._suffix)])

    def text_slot(self) -> tuple[str, str]:
        return self._prefix + '{"text":', "}" + self._suffix
