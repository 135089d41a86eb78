"""Model engines: turn a batch of modelInput bodies into provider-shaped modelOutput JSON.

The engine is picked from the model id (docs/bedrock-facts.md §5): base ids, foundation-model / inference-profile
ARNs and cross-region profile ids (`us.`, `eu.`, `apac.`, `global.` ...) all resolve to a base id.
A body that does not match the provider's schema becomes a 400 record error, the way the real
service writes a per-record ValidationException instead of failing the job.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import polars as pl

from .embeddings import Embedder, token_counts
from .provider_codecs import (
    AnthropicCodec, ConverseCodec, LlamaCodec, MistralCodec, NovaCodec, RecordError, malformed, require,
)
from .text_generation import ChatRequest, Generation, GenerationError

GEO_PREFIXES = ("us-gov.", "us.", "eu.", "apac.", "global.", "jp.", "au.", "ca.")
CHAT_PROVIDER_PREFIXES = (
    "anthropic.", "amazon.nova-", "meta.llama", "mistral.", "cohere.command", "ai21.",
    "deepseek.", "qwen.", "openai.", "writer.",
)
EMBEDDING_DIMENSIONS = (256, 512, 1024)


@dataclass
class Outcome:
    """One record's result: modelOutput as JSON text, or an error."""

    output_json: str | None = None
    error_code: int | None = None
    error_message: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def ok(self) -> bool:
        return self.output_json is not None


def base_model_id(model_id: str) -> str:
    """Strip ARN and cross-region prefixes: `arn:...:inference-profile/us.x.y` -> `x.y`."""
    identifier = model_id
    if identifier.startswith("arn:"):
        resource = identifier.split(":", 5)[-1]
        identifier = resource.split("/", 1)[1] if "/" in resource else resource
        # custom-model/<base id>/<suffix>: the base id is the first path part.
        identifier = identifier.split("/", 1)[0]
    for prefix in GEO_PREFIXES:
        if identifier.startswith(prefix):
            return identifier[len(prefix):]
    return identifier


# ---------------------------------------------------------------------------------- engines

class TextEngine:
    """A chat engine: provider codec + a text generator (emulated or OpenAI-compatible)."""

    kind = "text"

    def __init__(self, model_id: str, codec: Any, generator_source: Callable[[], Any]) -> None:
        self.model_id = model_id
        self.codec = codec
        self._generator_source = generator_source

    def run(self, bodies: list[Any]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(bodies)
        requests: list[ChatRequest] = []
        positions: list[int] = []
        for position, body in enumerate(bodies):
            try:
                requests.append(self.codec.parse(self.model_id, body))
                positions.append(position)
            except RecordError as exc:
                outcomes[position] = Outcome(error_code=exc.code, error_message=exc.message)
        started = time.monotonic()
        generations = self._generator_source().generate(requests) if requests else []
        latency_ms = int((time.monotonic() - started) * 1000 / max(len(requests), 1))
        for position, request, generation in zip(positions, requests, generations):
            if isinstance(generation, GenerationError):
                outcomes[position] = Outcome(
                    error_code=generation.code, error_message=generation.message
                )
                continue
            output = self._render(bodies[position], request, generation, latency_ms)
            outcomes[position] = Outcome(
                output_json=json.dumps(output, ensure_ascii=False),
                input_tokens=generation.input_tokens,
                output_tokens=generation.output_tokens,
            )
        return [outcome for outcome in outcomes if outcome is not None]

    def _render(self, body: Any, request: ChatRequest, generation: Generation, latency: int) -> dict:
        if isinstance(self.codec, MistralCodec):
            return self.codec.render_for(body, request, generation)
        if isinstance(self.codec, ConverseCodec):
            return self.codec.render(request, generation, latency)
        return self.codec.render(request, generation)


TITAN_V2_KEYS = {"inputText", "dimensions", "normalize", "embeddingTypes"}


class TitanEmbedV2Engine:
    """Titan Text Embeddings V2: `embedding`, `inputTextTokenCount`, `embeddingsByType`, no usage."""

    kind = "embedding"

    def __init__(self, model_id: str, embedder: Embedder) -> None:
        self.model_id = model_id
        self.embedder = embedder

    def run(self, bodies: list[Any]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(bodies)
        groups: dict[tuple[int, bool, tuple[str, ...]], list[tuple[int, str]]] = {}
        for position, body in enumerate(bodies):
            try:
                key, text = self._parse(body)
            except RecordError as exc:
                outcomes[position] = Outcome(error_code=exc.code, error_message=exc.message)
                continue
            groups.setdefault(key, []).append((position, text))
        for (dimensions, normalize, types), members in groups.items():
            positions = [position for position, _ in members]
            texts = [text for _, text in members]
            rendered = self._render_group(texts, dimensions, normalize, types)
            for position, outcome in zip(positions, rendered):
                outcomes[position] = outcome
        return [outcome for outcome in outcomes if outcome is not None]

    @staticmethod
    def _parse(body: Any) -> tuple[tuple[int, bool, tuple[str, ...]], str]:
        text = require(body, "inputText")
        extraneous = sorted(set(body) - TITAN_V2_KEYS)
        if extraneous:
            raise malformed(f"extraneous key [{extraneous[0]}] is not permitted")
        if not isinstance(text, str) or not text:
            raise malformed("#/inputText: expected minLength: 1")
        dimensions = body.get("dimensions", 1024)
        if dimensions not in EMBEDDING_DIMENSIONS or isinstance(dimensions, bool):
            raise malformed(f"#/dimensions: {dimensions} is not a valid enum value")
        normalize = body.get("normalize", True)
        if not isinstance(normalize, bool):
            raise malformed("#/normalize: expected type: Boolean")
        types = body.get("embeddingTypes", ["float"])
        if not isinstance(types, list) or not types or not set(types) <= {"float", "binary"}:
            raise malformed("#/embeddingTypes: expected a non-empty subset of [float, binary]")
        return (dimensions, normalize, tuple(sorted(set(types)))), text

    def _render_group(
        self, texts: list[str], dimensions: int, normalize: bool, types: tuple[str, ...]
    ) -> list[Outcome]:
        matrix = self.embedder.embed(texts, dimensions)
        if normalize:
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            matrix = matrix / np.where(norms == 0, 1.0, norms)
        floats = _json_float_arrays(matrix)
        binaries = _json_int_arrays((matrix > 0).astype(np.int8)) if "binary" in types else None
        counts = token_counts(texts)
        outcomes = []
        for index, (float_json, token_count) in enumerate(zip(floats, counts.tolist())):
            by_type = []
            if "binary" in types:
                by_type.append(f'"binary":[{binaries[index]}]')
            if "float" in types:
                by_type.append(f'"float":[{float_json}]')
            output = (
                f'{{"embedding":[{float_json}],"inputTextTokenCount":{token_count},'
                f'"embeddingsByType":{{{",".join(by_type)}}}}}'
            )
            outcomes.append(Outcome(output_json=output, input_tokens=token_count))
        return outcomes


def _json_float_arrays(matrix: np.ndarray) -> list[str]:
    """Comma-joined decimal text per row, formatted by polars (far faster than json.dumps)."""
    if matrix.shape[0] == 0:
        return []
    series = pl.Series(matrix.astype(np.float32)).cast(pl.List(pl.Float32))
    return series.list.eval(pl.element().cast(pl.String)).list.join(",").to_list()


def _json_int_arrays(matrix: np.ndarray) -> list[str]:
    series = pl.Series(matrix.astype(np.int8)).cast(pl.List(pl.Int8))
    return series.list.eval(pl.element().cast(pl.String)).list.join(",").to_list()


Engine = TextEngine | TitanEmbedV2Engine


class UnknownModel(Exception):
    """The model id names no model the emulator can serve (a ValidationException at create)."""


def resolve_engine(
    model_id: str,
    invocation_type: str,
    generator_source: Callable[[], Any],
    embedder_source: Callable[[], Embedder],
) -> Engine:
    """Pick the engine for a model id and invocation type (InvokeModel | Converse)."""
    base = base_model_id(model_id)
    if base.startswith("amazon.titan-embed-text-v2"):
        if invocation_type == "Converse":
            raise UnknownModel(f"The model {model_id} does not support the Converse invocation type.")
        return TitanEmbedV2Engine(base, _LazyEmbedder(embedder_source))
    if invocation_type == "Converse":
        if base.startswith(CHAT_PROVIDER_PREFIXES) and "embed" not in base:
            return TextEngine(base, ConverseCodec(), generator_source)
        raise UnknownModel("The provided model identifier is invalid.")
    chat_codecs = {
        "anthropic.": AnthropicCodec,
        "amazon.nova-": NovaCodec,
        "meta.llama": LlamaCodec,
        "mistral.": MistralCodec,
    }
    for prefix, codec in chat_codecs.items():
        if base.startswith(prefix) and "embed" not in base and "canvas" not in base:
            return TextEngine(base, codec(), generator_source)
    raise UnknownModel("The provided model identifier is invalid.")


class _LazyEmbedder:
    """Defers building the embedder (MiniLM loads a model) until the first record needs it."""

    def __init__(self, source: Callable[[], Embedder]) -> None:
        self._source = source

    @property
    def name(self) -> str:
        return self._source().name

    def embed(self, texts: list[str], dimensions: int) -> np.ndarray:
        return self._source().embed(texts, dimensions)
