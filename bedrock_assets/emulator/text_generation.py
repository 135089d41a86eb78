"""Text generators behind every chat engine: a deterministic emulated one and an OpenAI forwarder."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .tokens import count_tokens, truncate_to_tokens


@dataclass
class ChatRequest:
    """A provider-neutral chat request extracted from any provider's modelInput."""

    model_id: str
    messages: list[tuple[str, str]]  # (role, text) with role "user" | "assistant"
    system: str = ""
    max_tokens: int = 512
    stop_sequences: list[str] = field(default_factory=list)
    temperature: float | None = None
    top_p: float | None = None

    def input_tokens(self) -> int:
        return count_tokens(self.system) + sum(count_tokens(text) for _, text in self.messages)


@dataclass
class Generation:
    """Generated text plus the neutral stop reason: "end" | "max_tokens" | "stop_sequence"."""

    text: str
    stop_reason: str
    input_tokens: int
    output_tokens: int
    stop_sequence: str | None = None


class GenerationError(Exception):
    """A record-level failure of the generator (becomes an error line / a runtime error)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def apply_limits(request: ChatRequest, text: str) -> tuple[str, str, str | None]:
    """Apply stop sequences then max_tokens the way a model server does."""
    for stop in request.stop_sequences:
        if stop and stop in text:
            return text[: text.index(stop)], "stop_sequence", stop
    text, truncated = truncate_to_tokens(text, request.max_tokens)
    return text, ("max_tokens" if truncated else "end"), None


class EmulatedTextGenerator:
    """Deterministic text derived from the prompt, clearly marked as emulated.

    The reply quotes the start of the last user message and a short digest of the whole request,
    so equal prompts give equal replies and different prompts differ.
    """

    name = "emulated"

    def generate(self, requests: list[ChatRequest]) -> list[Generation | GenerationError]:
        return [self._generate_one(request) for request in requests]

    def _generate_one(self, request: ChatRequest) -> Generation:
        last_user = next((text for role, text in reversed(request.messages) if role == "user"), "")
        words = last_user.split()
        quoted = " ".join(words[:24]) + (" ..." if len(words) > 24 else "")
        digest = hashlib.blake2b(
            json.dumps([request.system, request.messages]).encode(), digest_size=4
        ).hexdigest()
        text = (
            f"[emulated {request.model_id}] Deterministic reply {digest} to a prompt of "
            f"{len(words)} words: {quoted}"
        )
        text, stop_reason, stop_sequence = apply_limits(request, text)
        return Generation(text, stop_reason, request.input_tokens(), count_tokens(text), stop_sequence)


class OpenAICompatibleGenerator:
    """Forwards each request to `<base_url>/chat/completions` (vLLM, llama.cpp, Ollama, ...)."""

    name = "openai"

    def __init__(self, base_url: str, model: str | None, timeout: float = 120.0, parallel: int = 4):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.timeout = timeout
        self.parallel = parallel

    def generate(self, requests: list[ChatRequest]) -> list[Generation | GenerationError]:
        if len(requests) <= 1:
            return [self._generate_one(request) for request in requests]
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            return list(pool.map(self._generate_one, requests))

    def _generate_one(self, request: ChatRequest) -> Generation | GenerationError:
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages += [{"role": role, "content": text} for role, text in request.messages]
        payload: dict = {
            "model": self.model or request.model_id,
            "messages": messages,
            "max_tokens": request.max_tokens,
        }
        if request.temperature is not None:
            payload["temperature"] = request.temperature
        if request.top_p is not None:
            payload["top_p"] = request.top_p
        if request.stop_sequences:
            payload["stop"] = request.stop_sequences
        http_request = urllib.request.Request(
            self.url,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(http_request, timeout=self.timeout) as response:
                body = json.loads(response.read())
            choice = body["choices"][0]
            text = choice["message"].get("content") or ""
        except urllib.error.HTTPError as exc:
            code = 429 if exc.code == 429 else 500
            return GenerationError(code, f"Upstream model server answered HTTP {exc.code}.")
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            return GenerationError(500, f"Upstream model server failed: {type(exc).__name__}.")
        finish = choice.get("finish_reason")
        usage = body.get("usage") or {}
        input_tokens = usage.get("prompt_tokens") or request.input_tokens()
        output_tokens = usage.get("completion_tokens") or count_tokens(text)
        stop_reason = "max_tokens" if finish == "length" else "end"
        return Generation(text, stop_reason, int(input_tokens), int(output_tokens))
