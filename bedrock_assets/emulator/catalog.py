"""The models the emulator knows, and their engines (one text generator and one embedder per emulator).

A model id is known when, after removing an ARN prefix and a cross-region prefix, it is one of
KNOWN_MODELS. Anything else -- a typo, a retired or made-up id, an application-inference-profile
ARN -- is refused with ValidationException "The provided model identifier is invalid." at
CreateModelInvocationJob and on the runtime, the message real Bedrock gives for an unknown
identifier (quoted in public reports of InvokeModel errors, e.g.
https://github.com/aws-samples/amazon-bedrock-workshop/issues/315; for CreateModelInvocationJob the
same text is assumed: unconfirmed). Refusing unknown ids keeps a misspelt id from "working" locally
and failing only on AWS.
"""

from __future__ import annotations

import threading

from .config import EmulatorConfig
from .embeddings import Embedder, make_embedder
from .engines import Engine, UnknownModel, base_model_id, resolve_engine
from .text_generation import EmulatedTextGenerator, OpenAICompatibleGenerator


# Base ids of real Bedrock models (https://docs.aws.amazon.com/bedrock/latest/userguide/models-supported.html)
# that this emulator can serve. Every id used in the repository's tests, samples, docs and bench is
# here (tests/emulator/test_emulator_realism.py checks that); add a model here when you use a new one.
KNOWN_MODELS = frozenset({
    # Anthropic (InvokeModel: Messages API; Converse)
    "anthropic.claude-3-haiku-20240307-v1:0",
    "anthropic.claude-3-sonnet-20240229-v1:0",
    "anthropic.claude-3-opus-20240229-v1:0",
    "anthropic.claude-3-5-haiku-20241022-v1:0",
    "anthropic.claude-3-5-sonnet-20240620-v1:0",
    "anthropic.claude-3-5-sonnet-20241022-v2:0",
    "anthropic.claude-3-7-sonnet-20250219-v1:0",
    "anthropic.claude-sonnet-4-20250514-v1:0",
    "anthropic.claude-opus-4-20250514-v1:0",
    "anthropic.claude-opus-4-1-20250805-v1:0",
    "anthropic.claude-sonnet-4-5-20250929-v1:0",
    "anthropic.claude-haiku-4-5-20251001-v1:0",
    "anthropic.claude-opus-4-5-20251101-v1:0",
    # Amazon
    "amazon.titan-embed-text-v2:0",
    "amazon.nova-micro-v1:0",
    "amazon.nova-lite-v1:0",
    "amazon.nova-pro-v1:0",
    "amazon.nova-premier-v1:0",
    "amazon.nova-2-lite-v1:0",
    # Meta
    "meta.llama3-8b-instruct-v1:0",
    "meta.llama3-70b-instruct-v1:0",
    "meta.llama3-1-8b-instruct-v1:0",
    "meta.llama3-1-70b-instruct-v1:0",
    "meta.llama3-1-405b-instruct-v1:0",
    "meta.llama3-2-1b-instruct-v1:0",
    "meta.llama3-2-3b-instruct-v1:0",
    "meta.llama3-2-11b-instruct-v1:0",
    "meta.llama3-2-90b-instruct-v1:0",
    "meta.llama3-3-70b-instruct-v1:0",
    "meta.llama4-scout-17b-instruct-v1:0",
    "meta.llama4-maverick-17b-instruct-v1:0",
    # Mistral
    "mistral.mistral-7b-instruct-v0:2",
    "mistral.mixtral-8x7b-instruct-v0:1",
    "mistral.mistral-small-2402-v1:0",
    "mistral.mistral-large-2402-v1:0",
    "mistral.mistral-large-2407-v1:0",
    # Converse-only chat models
    "cohere.command-r-v1:0",
    "cohere.command-r-plus-v1:0",
    "ai21.jamba-1-5-mini-v1:0",
    "ai21.jamba-1-5-large-v1:0",
    "deepseek.r1-v1:0",
    "deepseek.v3-v1:0",
    "qwen.qwen3-32b-v1:0",
    "qwen.qwen3-coder-30b-a3b-v1:0",
    "qwen.qwen3-235b-a22b-2507-v1:0",
    "qwen.qwen3-coder-480b-a35b-v1:0",
    "openai.gpt-oss-20b-1:0",
    "openai.gpt-oss-120b-1:0",
    "writer.palmyra-x4-v1:0",
    "writer.palmyra-x5-v1:0",
})

INVALID_MODEL_MESSAGE = "The provided model identifier is invalid."


def is_known_model(model_id: str) -> bool:
    return base_model_id(model_id) in KNOWN_MODELS


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
        """Raises engines.UnknownModel for ids not in KNOWN_MODELS or that no engine serves."""
        if not is_known_model(model_id):
            raise UnknownModel(INVALID_MODEL_MESSAGE)
        return resolve_engine(model_id, invocation_type, lambda: self.generator, self.embedder)
