"""Provider request/response codecs (docs/bedrock-facts.md §5): read a modelInput into a neutral ChatRequest
and write a Generation back in that provider's exact response shape.

Parse errors are RecordErrors with Bedrock's per-record ValidationException wording.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from .text_generation import ChatRequest, Generation


class RecordError(Exception):
    """A record the model rejects; written as {"errorCode": code, "errorMessage": message}."""

    def __init__(self, message: str, code: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message



def malformed(detail: str) -> RecordError:
    # Wording modelled on Bedrock's per-record ValidationException text.
    return RecordError(f"Malformed input request: {detail}, please reformat your input and try again.")


def require(body: Any, key: str) -> Any:
    if not isinstance(body, dict):
        raise malformed("#: expected type: JSONObject")
    if key not in body:
        raise malformed(f"#: required key [{key}] not found")
    return body[key]


def _int_field(body: dict, key: str, default: int | None = None, minimum: int = 1) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise malformed(f"#/{key}: expected an integer >= {minimum}")
    return value


def _float_field(body: dict, key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise malformed(f"#/{key}: expected type: Number")
    return float(value)


def _string_list(body: dict, key: str) -> list[str]:
    value = body.get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise malformed(f"#/{key}: expected an array of strings")
    return value


def _blocks_text(content: Any, path: str, text_key_style: str) -> str:
    """Join the text of a content field: a string or a list of blocks (Anthropic or Converse)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise malformed(f"{path}: expected type: String or JSONArray")
    texts = []
    for index, block in enumerate(content):
        if not isinstance(block, dict):
            raise malformed(f"{path}/{index}: expected type: JSONObject")
        if text_key_style == "anthropic":
            kind = block.get("type")
            if kind == "text":
                if not isinstance(block.get("text"), str):
                    raise malformed(f"{path}/{index}: required key [text] not found")
                texts.append(block["text"])
            elif kind not in ("image", "document", "tool_use", "tool_result"):
                raise malformed(f"{path}/{index}/type: {kind!r} is not a valid enum value")
        elif "text" in block:
            if not isinstance(block["text"], str):
                raise malformed(f"{path}/{index}/text: expected type: String")
            texts.append(block["text"])
    return "\n".join(texts)


def _messages(body: dict, style: str) -> list[tuple[str, str]]:
    messages = require(body, "messages")
    if not isinstance(messages, list) or not messages:
        raise malformed("#/messages: expected a non-empty array")
    parsed = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise malformed(f"#/messages/{index}: expected type: JSONObject")
        role = message.get("role")
        allowed = ("user", "assistant", "system") if style == "openai" else ("user", "assistant")
        if role not in allowed:
            raise malformed(f"#/messages/{index}/role: {role!r} is not a valid enum value")
        if "content" not in message:
            raise malformed(f"#/messages/{index}: required key [content] not found")
        blocks = "anthropic" if style == "anthropic" else "converse"
        parsed.append((role, _blocks_text(message["content"], f"#/messages/{index}/content", blocks)))
    return parsed


def _system_blocks(body: dict) -> str:
    system = body.get("system")
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        return "\n".join(block.get("text", "") for block in system if isinstance(block, dict))
    raise malformed("#/system: expected type: JSONArray")


def _stable_id(prefix: str, payload: Any) -> str:
    return prefix + hashlib.blake2b(json.dumps(payload).encode(), digest_size=12).hexdigest()


class AnthropicCodec:
    """Anthropic Messages API (`anthropic_version`, `max_tokens`, `messages`)."""

    def parse(self, model_id: str, body: Any) -> ChatRequest:
        require(body, "anthropic_version")
        max_tokens = _int_field(body, "max_tokens") if "max_tokens" in body else None
        if max_tokens is None:
            raise malformed("#: required key [max_tokens] not found")
        system = body.get("system") or ""
        if isinstance(system, list):
            system = _blocks_text(system, "#/system", "anthropic")
        return ChatRequest(
            model_id=model_id,
            messages=_messages(body, "anthropic"),
            system=system,
            max_tokens=max_tokens,
            stop_sequences=_string_list(body, "stop_sequences"),
            temperature=_float_field(body, "temperature"),
            top_p=_float_field(body, "top_p"),
        )

    def render(self, request: ChatRequest, generation: Generation) -> dict:
        stop_reason = {"end": "end_turn"}.get(generation.stop_reason, generation.stop_reason)
        return {
            "id": _stable_id("msg_bdrk_", [request.messages, request.system]),
            "type": "message",
            "role": "assistant",
            "model": request.model_id,
            "content": [{"type": "text", "text": generation.text}],
            "stop_reason": stop_reason,
            "stop_sequence": generation.stop_sequence,
            "usage": {
                "input_tokens": generation.input_tokens,
                "output_tokens": generation.output_tokens,
            },
        }


class NovaCodec:
    """Amazon Nova messages-v1 (`messages`, `system`, `inferenceConfig`)."""

    def parse(self, model_id: str, body: Any) -> ChatRequest:
        require(body, "messages")
        config = body.get("inferenceConfig") or {}
        if not isinstance(config, dict):
            raise malformed("#/inferenceConfig: expected type: JSONObject")
        max_tokens_key = "maxTokens" if "maxTokens" in config else "max_new_tokens"
        return ChatRequest(
            model_id=model_id,
            messages=_messages(body, "converse"),
            system=_system_blocks(body),
            max_tokens=_int_field(config, max_tokens_key, default=5000),
            stop_sequences=_string_list(config, "stopSequences"),
            temperature=_float_field(config, "temperature"),
            top_p=_float_field(config, "topP"),
        )

    def render(self, request: ChatRequest, generation: Generation) -> dict:
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": generation.text}]}},
            "stopReason": "max_tokens" if generation.stop_reason == "max_tokens" else "end_turn",
            "usage": {
                "inputTokens": generation.input_tokens,
                "outputTokens": generation.output_tokens,
                "totalTokens": generation.input_tokens + generation.output_tokens,
            },
        }


LLAMA_HEADERS = re.compile(r"<\|start_header_id\|>\w+<\|end_header_id\|>")
LLAMA_SPECIAL_TOKENS = re.compile(r"<\|[a-z_]+\|>")


class LlamaCodec:
    """Meta Llama 3.x/4 (`prompt` with the chat template, `max_gen_len`)."""

    def parse(self, model_id: str, body: Any) -> ChatRequest:
        prompt = require(body, "prompt")
        if not isinstance(prompt, str):
            raise malformed("#/prompt: expected type: String")
        # The template's header tokens are markup, not content: drop them before "reading".
        text = LLAMA_SPECIAL_TOKENS.sub(" ", LLAMA_HEADERS.sub(" ", prompt)).strip()
        return ChatRequest(
            model_id=model_id,
            messages=[("user", text)],
            max_tokens=_int_field(body, "max_gen_len", default=512),
            temperature=_float_field(body, "temperature"),
            top_p=_float_field(body, "top_p"),
        )

    def render(self, request: ChatRequest, generation: Generation) -> dict:
        return {
            "generation": generation.text,
            "prompt_token_count": generation.input_tokens,
            "generation_token_count": generation.output_tokens,
            "stop_reason": "length" if generation.stop_reason == "max_tokens" else "stop",
        }


MISTRAL_INSTRUCTION_MARKUP = re.compile(r"</?s>|\[/?INST\]")


class MistralCodec:
    """Mistral text completion (`prompt`) or chat (`messages`), chosen per record by the body."""

    def parse(self, model_id: str, body: Any) -> ChatRequest:
        if not isinstance(body, dict):
            raise malformed("#: expected type: JSONObject")
        if "messages" in body:
            messages = _messages(body, "openai")
            system = "\n".join(text for role, text in messages if role == "system")
            messages = [(role, text) for role, text in messages if role != "system"]
        else:
            prompt = require(body, "prompt")
            if not isinstance(prompt, str):
                raise malformed("#/prompt: expected type: String")
            messages = [("user", MISTRAL_INSTRUCTION_MARKUP.sub(" ", prompt).strip())]
            system = ""
        return ChatRequest(
            model_id=model_id,
            messages=messages,
            system=system,
            max_tokens=_int_field(body, "max_tokens", default=512),
            stop_sequences=_string_list(body, "stop"),
            temperature=_float_field(body, "temperature"),
            top_p=_float_field(body, "top_p"),
        )

    def render_for(self, body: dict, request: ChatRequest, generation: Generation) -> dict:
        stop_reason = "length" if generation.stop_reason == "max_tokens" else "stop"
        if "messages" in body:
            return {
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": generation.text},
                        "stop_reason": stop_reason,
                    }
                ]
            }
        return {"outputs": [{"text": generation.text, "stop_reason": stop_reason}]}


class ConverseCodec:
    """The Converse request/response shape, valid for any chat model."""

    def parse(self, model_id: str, body: Any) -> ChatRequest:
        require(body, "messages")
        config = body.get("inferenceConfig") or {}
        if not isinstance(config, dict):
            raise malformed("#/inferenceConfig: expected type: JSONObject")
        return ChatRequest(
            model_id=model_id,
            messages=_messages(body, "converse"),
            system=_system_blocks(body),
            max_tokens=_int_field(config, "maxTokens", default=1024),
            stop_sequences=_string_list(config, "stopSequences"),
            temperature=_float_field(config, "temperature"),
            top_p=_float_field(config, "topP"),
        )

    def render(self, request: ChatRequest, generation: Generation, latency_ms: int = 0) -> dict:
        stop_reason = {"end": "end_turn"}.get(generation.stop_reason, generation.stop_reason)
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": generation.text}]}},
            "stopReason": stop_reason,
            "usage": {
                "inputTokens": generation.input_tokens,
                "outputTokens": generation.output_tokens,
                "totalTokens": generation.input_tokens + generation.output_tokens,
            },
            "metrics": {"latencyMs": latency_ms},
        }


