"""Model families: resolve a model id to its provider, bound to a spec's params.

Adding a family = one module with a `Provider` subclass + one entry in `REGISTRY`.
"""

from __future__ import annotations

import re
from typing import Any

from bedrock_assets.providers.anthropic import AnthropicMessages
from bedrock_assets.providers.base import (
    BYTES_PER_TOKEN_ESTIMATE,
    Provider,
    ProviderError,
    json_object,
    json_value,
)
from bedrock_assets.providers.titan_embed import TitanTextEmbeddingsV2

REGISTRY: tuple[type[Provider], ...] = (AnthropicMessages, TitanTextEmbeddingsV2)

# `arn:aws:bedrock:us-east-1::foundation-model/<id>` or `...:inference-profile/<profile id>`.
_ARN = re.compile(r"^arn:aws(?:-[^:]+)?:bedrock:[^:]*:[^:]*:(?:foundation-model|inference-profile)/(.+)$")
# Cross-region inference profiles put a geography before the base id: `us.anthropic.claude-...`.
_PROFILE_PREFIX = re.compile(r"^(?:us|eu|apac|global|us-gov|jp|au|ca)\.")

__all__ = [
    "BYTES_PER_TOKEN_ESTIMATE",
    "REGISTRY",
    "Provider",
    "ProviderError",
    "base_model_id",
    "family_for",
    "for_spec",
    "json_object",
    "json_value",
]


def base_model_id(model_id: str) -> str:
    """The base model id behind a base id, foundation-model ARN or inference-profile id/ARN."""
    m = _ARN.match(model_id)
    bare = m.group(1) if m else model_id
    return _PROFILE_PREFIX.sub("", bare, count=1)


def family_for(model_id: str) -> type[Provider]:
    """The provider class for a model id; ProviderError listing supported families otherwise."""
    base = base_model_id(model_id)
    for cls in REGISTRY:
        if base.startswith(cls.model_prefixes):
            return cls
    supported = "; ".join(f"{c.family} ({', '.join(p + '*' for p in c.model_prefixes)})" for c in REGISTRY)
    raise ProviderError(f"unsupported model id {model_id!r}: no provider for it. Supported families: {supported}")


def for_spec(spec: Any) -> Provider:
    """Resolve spec.model_id and bind its params (validated here, before any spend)."""
    return family_for(spec.model_id).from_spec(spec)
