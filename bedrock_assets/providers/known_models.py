"""The model ids this package knows, per family, with their cross-region inference profiles.

A batch spec's `model_id` must be one of these (as a base id, a foundation-model ARN, a
cross-region profile id such as `us.anthropic.claude-3-haiku-20240307-v1:0`, or an
inference-profile ARN), or the spec is refused when it is read, before any input is touched or
anything is spent. The family prefixes in each provider are wide (`anthropic.claude-*`), so
without this list a plausible but non-existent id (`anthropic.claude-9-imaginary-v1:0`) would
render, upload and wait in Bedrock's queue before failing.

A model newer than this list: set `allow_unlisted_model_id: true` in the spec. It is accepted
when its family is recognised (the same prefix rule `providers.for_spec` applies), and its
params are checked by that family's provider like any other. Add it here when you can
(docs/models.md lists the ids).

Sources: the AWS model cards and "Supported Regions and models for inference profiles"
(https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-support.html), as
compiled 2026-12-07. Profile geographies vary by Region and change often; a missing profile
form is what `allow_unlisted_model_id` is for.
"""

from __future__ import annotations

import difflib
import re

# family -> {base model id: geographies that have a cross-region profile for it}.
# Families are the providers' `family` names; `converse-only` holds the chat models that have no
# InvokeModel provider here and run with `invocation_type: Converse` only
# (converse.CONVERSE_ONLY_PREFIXES).
KNOWN_MODELS: dict[str, dict[str, tuple[str, ...]]] = {
    "anthropic-messages": {
        "anthropic.claude-3-haiku-20240307-v1:0": ("us", "eu", "apac"),
        "anthropic.claude-3-sonnet-20240229-v1:0": ("us", "eu", "apac"),
        "anthropic.claude-3-opus-20240229-v1:0": ("us",),
        "anthropic.claude-3-5-sonnet-20240620-v1:0": ("us", "eu", "apac"),
        "anthropic.claude-3-5-sonnet-20241022-v2:0": ("us", "apac"),
        "anthropic.claude-3-5-haiku-20241022-v1:0": ("us",),
        "anthropic.claude-3-7-sonnet-20250219-v1:0": ("us", "eu", "apac"),
        "anthropic.claude-sonnet-4-20250514-v1:0": ("us", "eu", "apac", "global"),
        "anthropic.claude-opus-4-20250514-v1:0": ("us",),
        "anthropic.claude-opus-4-1-20250805-v1:0": ("us",),
        "anthropic.claude-sonnet-4-5-20250929-v1:0": ("us", "eu", "jp", "au", "global"),
        "anthropic.claude-haiku-4-5-20251001-v1:0": ("us", "eu", "jp", "au", "global"),
        "anthropic.claude-opus-4-5-20251101-v1:0": ("us", "eu", "global"),
    },
    "amazon-nova": {
        "amazon.nova-micro-v1:0": ("us", "eu", "apac"),
        "amazon.nova-lite-v1:0": ("us", "eu", "apac"),
        "amazon.nova-pro-v1:0": ("us", "eu", "apac"),
        "amazon.nova-premier-v1:0": ("us",),
        "amazon.nova-2-lite-v1:0": ("us", "eu", "jp", "global"),
    },
    "meta-llama3": {
        "meta.llama3-8b-instruct-v1:0": (),
        "meta.llama3-70b-instruct-v1:0": (),
        "meta.llama3-1-8b-instruct-v1:0": ("us",),
        "meta.llama3-1-70b-instruct-v1:0": ("us",),
        "meta.llama3-1-405b-instruct-v1:0": (),
        "meta.llama3-2-1b-instruct-v1:0": ("us", "eu"),
        "meta.llama3-2-3b-instruct-v1:0": ("us", "eu"),
        "meta.llama3-2-11b-instruct-v1:0": ("us",),
        "meta.llama3-2-90b-instruct-v1:0": ("us",),
        "meta.llama3-3-70b-instruct-v1:0": ("us",),
    },
    "mistral-text": {
        "mistral.mistral-7b-instruct-v0:2": (),
        "mistral.mixtral-8x7b-instruct-v0:1": (),
        "mistral.mistral-large-2402-v1:0": (),
        "mistral.mistral-small-2402-v1:0": (),
    },
    "mistral-chat": {
        "mistral.mistral-large-2407-v1:0": (),
    },
    "titan-embed-text-v2": {
        "amazon.titan-embed-text-v2:0": (),
    },
    "converse-only": {
        "meta.llama4-scout-17b-instruct-v1:0": ("us",),
        "meta.llama4-maverick-17b-instruct-v1:0": ("us",),
        "deepseek.r1-v1:0": ("us",),
        "deepseek.v3-v1:0": (),
        "openai.gpt-oss-20b-1:0": (),
        "openai.gpt-oss-120b-1:0": (),
        "qwen.qwen3-32b-v1:0": (),
        "qwen.qwen3-coder-30b-a3b-v1:0": (),
        "qwen.qwen3-235b-a22b-2507-v1:0": (),
        "qwen.qwen3-coder-480b-a35b-v1:0": (),
    },
}

BASE_IDS: frozenset[str] = frozenset(base for models in KNOWN_MODELS.values() for base in models)
PROFILE_IDS: frozenset[str] = frozenset(
    f"{geo}.{base}" for models in KNOWN_MODELS.values() for base, geos in models.items() for geo in geos
)

# `arn:aws:bedrock:<region>:<account or empty>:foundation-model/<base id>` or
# `...:inference-profile/<profile id>` (the forms providers.common.base_model_id unwraps).
_ARN = re.compile(r"^arn:aws(?:-[^:]+)?:bedrock:[^:]*:[^:]*:(foundation-model|inference-profile)/(.+)$")


def is_known(model_id: str) -> bool:
    """A listed base id or profile id, bare or as the matching kind of ARN (a foundation-model
    ARN wraps a base id; an inference-profile ARN wraps a profile id)."""
    m = _ARN.match(model_id)
    if m is None:
        return model_id in BASE_IDS or model_id in PROFILE_IDS
    kind, inner = m.groups()
    return inner in (BASE_IDS if kind == "foundation-model" else PROFILE_IDS)


def close_matches(model_id: str, n: int = 3) -> list[str]:
    """The listed ids nearest to `model_id` (ARN wrapper ignored), best first."""
    m = _ARN.match(model_id)
    bare = m.group(2) if m else model_id
    return difflib.get_close_matches(bare, sorted(BASE_IDS | PROFILE_IDS), n=n, cutoff=0.6)
