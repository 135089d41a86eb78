"""Model families: resolve a model id (and the spec's invocation type) to its provider, bound to
the spec's params.

Adding a family = one module with a `Provider` subclass + one entry in `REGISTRY` + its model ids in
`known_models.KNOWN_MODELS` (a spec's model_id must be listed there, or allowed unlisted).
`invocation_type: Converse` specs get the Converse provider for any chat model id (see
`converse.py`); an embedding model with Converse is an error before any spend.
"""

from __future__ import annotations

from typing import Any

from bedrock_assets.providers.anthropic import AnthropicMessages
from bedrock_assets.providers.base import (
    BYTES_PER_TOKEN_ESTIMATE,
    Provider,
    ProviderError,
    json_object,
    json_value,
)
from bedrock_assets.providers.common import bare_model_id, base_model_id
from bedrock_assets.providers.converse import CONVERSE_ONLY_PREFIXES, ConverseChat
from bedrock_assets.providers.llama import Llama3
from bedrock_assets.providers.mistral import MistralChat, MistralText
from bedrock_assets.providers.nova import NovaMessages
from bedrock_assets.providers.titan_embed import TitanTextEmbeddingsV2

# InvokeModel families, matched by base model id prefix. Order only matters for the error text.
REGISTRY: tuple[type[Provider], ...] = (
    AnthropicMessages,
    NovaMessages,
    Llama3,
    MistralText,
    MistralChat,
    TitanTextEmbeddingsV2,
)
INVOCATION_TYPES = ("InvokeModel", "Converse")

__all__ = [
    "BYTES_PER_TOKEN_ESTIMATE",
    "CONVERSE_ONLY_PREFIXES",
    "INVOCATION_TYPES",
    "REGISTRY",
    "ConverseChat",
    "Provider",
    "ProviderError",
    "bare_model_id",
    "base_model_id",
    "family_for",
    "for_spec",
    "json_object",
    "json_value",
    "supported_families",
]


def supported_families() -> str:
    """`family (prefix*, ...); ...` of every InvokeModel family, plus the Converse note."""
    return "; ".join(f"{c.family} ({', '.join(p + '*' for p in c.model_prefixes)})" for c in REGISTRY)


def family_for(model_id: str) -> type[Provider]:
    """The InvokeModel provider class for a model id; ProviderError listing supported families otherwise."""
    base = base_model_id(model_id)
    for cls in REGISTRY:
        if base.startswith(cls.model_prefixes):
            return cls
    converse_note = ""
    if base.startswith(CONVERSE_ONLY_PREFIXES):
        converse_note = " This model is supported with `invocation_type: Converse` only."
    raise ProviderError(
        f"unsupported model id {model_id!r}: no provider for it. Supported families: {supported_families()}. "
        f"With invocation_type Converse: any chat model of those families, or "
        f"{', '.join(p + '*' for p in CONVERSE_ONLY_PREFIXES)}.{converse_note}"
    )


def converse_for(model_id: str, params: Any, system: str | None) -> ConverseChat:
    """The Converse provider for a chat model id; ProviderError for embedding or unknown models."""
    base = base_model_id(model_id)
    if base.startswith(CONVERSE_ONLY_PREFIXES):
        return ConverseChat(model_id, params or {}, system, native_family=None)
    native = family_for(model_id)  # raises with the supported list
    if native.kind != "text":
        raise ProviderError(
            f"model {model_id!r} is an embedding model ({native.family}); the Converse invocation type is for "
            "chat models only. Use invocation_type: InvokeModel"
        )
    return ConverseChat(model_id, params or {}, system, native_family=native)


def for_spec(spec: Any) -> Provider:
    """Resolve spec.model_id (and spec.invocation_type) and bind its params, validated here,
    before any spend."""
    invocation = getattr(spec, "invocation_type", None) or "InvokeModel"
    if invocation == "Converse":
        return converse_for(spec.model_id, spec.params, spec.system)
    if invocation != "InvokeModel":
        raise ProviderError(f"invocation_type must be one of {list(INVOCATION_TYPES)}, got {invocation!r}")
    return family_for(spec.model_id).from_spec(spec)
