"""Shared helpers for the data-plane tests: specs built in code."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from bedrock_assets.specs import BatchSpec

CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"
TITAN = "amazon.titan-embed-text-v2:0"


def make_spec(**overrides: Any) -> BatchSpec:
    base = dict(name="t", model_id=CLAUDE, prompt="Q: {q}", min_records_per_job=100)
    base.update(overrides)
    return BatchSpec(**base)


@pytest.fixture
def spec_factory():
    return make_spec


def replace(spec: BatchSpec, **kw: Any) -> BatchSpec:
    return dataclasses.replace(spec, **kw)
