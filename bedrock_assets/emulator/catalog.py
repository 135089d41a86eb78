"""Builds engines for model ids, sharing one text generator and one embedder per emulator."""

from __future__ import annotations

import threading

from .config import EmulatorConfig
from .embeddings import Embedder, make_embedder
from .engines import Engine, resolve_engine
from .text_generation import EmulatedTextGenerator, OpenAICompatibleGenerator


class ModelCatalog:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._embedder: Embedder | None = None
        if config.openai_base_url:
            self.generator = OpenAICompatibleGenerator(
                config.openai_base_url, config.openai_model, config.openai_timeout_seconds
            )
        else:
            self.generator = EmulatedTextGenerator()
        if config.embedding_engine != "hash":
            # Fail at start-up (missing optional extra, unknown name), not inside the first job.
            self.embedder()

    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = make_embedder(self.config.embedding_engine, self.config.seed)
            return self._embedder

    def engine(self, model_id: str, invocation_type: str = "InvokeModel") -> Engine:
        """Raises engines.UnknownModel for ids no engine serves."""
        return resolve_engine(model_id, invocation_type, lambda: self.generator, self.embedder)
