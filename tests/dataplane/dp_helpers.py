"""Shared helpers for the data-plane tests: specs built in code and nasty strings."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from bedrock_assets.specs import BatchSpec

CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"
TITAN = "amazon.titan-embed-text-v2:0"

NASTY = [
    'say "hi"',
    "back\\slash \\n not a newline",
    "line one\nline two\r\nthree",
    "tab\there",
    "ctl \x00\x01\x07\x08\x0b\x0c\x1b\x1f\x7f end",
    "emoji 😀🎉 and flags 🇩🇪",
    "non-ASCII: naïve café Ærøskøbing 東京 Привет",
    "\u2028 line sep \u2029 para sep",
    "{not a placeholder} {{double}}",
    "</script><!-- -->",
    "trailing backslash \\",
    " leading space",
]


def make_spec(**overrides: Any) -> BatchSpec:
    base = dict(name="t", model_id=CLAUDE, prompt="Q: {q}", min_records_per_job=100)
    base.update(overrides)
    return BatchSpec(**base)


@pytest.fixture
def spec_factory():
    return make_spec


def replace(spec: BatchSpec, **kw: Any) -> BatchSpec:
    return dataclasses.replace(spec, **kw)
