"""Model engines: embedding signal, tokenizer, stop/max-token handling, OpenAI-compatible forwarding."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from bedrock_assets.emulator.embeddings import HashEmbedder
from bedrock_assets.emulator.engines import base_model_id
from bedrock_assets.emulator.tokens import count_tokens, truncate_to_tokens
from emulator_helpers import ANTHROPIC, TITAN_V2, anthropic_input


def embed(harness, text: str, **extra) -> np.ndarray:
    body = {"inputText": text, "dimensions": 1024, **extra}
    output = json.loads(harness.runtime.invoke_model(modelId=TITAN_V2, body=json.dumps(body))["body"].read())
    return np.array(output["embedding"])


def test_hash_embeddings_carry_similarity_signal(harness):
    cat = embed(harness, "The cat sat on the warm mat by the fire")
    cat_again = embed(harness, "A cat was sitting on the warm mat near the fire")
    finance = embed(harness, "Quarterly revenue grew eleven percent year over year")
    assert abs(np.linalg.norm(cat) - 1.0) < 1e-4
    assert cat @ cat_again > 0.4
    assert abs(cat @ finance) < 0.15
    assert cat @ cat_again > abs(cat @ finance) + 0.3


def test_embeddings_normalize_flag_and_determinism():
    embedder = HashEmbedder(seed=1)
    first = embedder.embed(["same text here", "other words entirely"], 512)
    again = embedder.embed(["same text here", "other words entirely"], 512)
    assert first.shape == (2, 512) and np.array_equal(first, again)
    assert np.linalg.norm(first[0]) > 1.5  # unnormalised until the engine applies `normalize`
    assert not np.array_equal(first, HashEmbedder(seed=2).embed(["same text here", "other words entirely"], 512))


def test_unnormalised_embedding_over_runtime(harness):
    vector = embed(harness, "several words in a sentence", normalize=False)
    assert np.linalg.norm(vector) > 1.5


@pytest.mark.parametrize("text, tokens", [("Hello, world!", 4), ("", 0), ("naïve café—ok", 4), ("a_b c123 ...", 5)])
def test_regex_tokenizer(text, tokens):
    assert count_tokens(text) == tokens


def test_truncate_to_tokens():
    assert truncate_to_tokens("one two, three four", 3) == ("one two,", True)
    assert truncate_to_tokens("one two", 5) == ("one two", False)


@pytest.mark.parametrize(
    "model_id, base",
    [("us.anthropic.claude-3-5-haiku-20241022-v1:0", "anthropic.claude-3-5-haiku-20241022-v1:0"),
     ("apac.amazon.nova-lite-v1:0", "amazon.nova-lite-v1:0"),
     ("arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0", "amazon.titan-embed-text-v2:0"),
     ("arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.anthropic.claude-sonnet-4-v1:0",
      "anthropic.claude-sonnet-4-v1:0")],
)
def test_base_model_id(model_id, base):
    assert base_model_id(model_id) == base


def test_stop_sequences_in_anthropic_output(harness):
    body = anthropic_input("Stop here please")
    body["stop_sequences"] = ["reply"]
    output = json.loads(harness.runtime.invoke_model(modelId=ANTHROPIC, body=json.dumps(body))["body"].read())
    assert output["stop_reason"] == "stop_sequence" and output["stop_sequence"] == "reply"
    assert not output["content"][0]["text"].endswith("reply")


class _StubOpenAI(BaseHTTPRequestHandler):
    """A tiny OpenAI-compatible /v1/chat/completions server."""

    requests: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _StubOpenAI.requests.append({"path": self.path, **payload})
        question = payload["messages"][-1]["content"]
        if "explode" in question:
            self.send_response(500)
            self.end_headers()
            return
        body = json.dumps({
            "id": "chatcmpl-1", "object": "chat.completion", "model": payload["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": f"REAL ANSWER to {question}"}}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def stub_openai():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StubOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _StubOpenAI.requests = []
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    server.server_close()


def test_openai_forwarding_for_runtime_and_jobs(make_harness, stub_openai):
    harness = make_harness(openai_base_url=stub_openai, openai_model="local-llm")
    body = anthropic_input("What is 2+2?", max_tokens=64)
    body["system"] = "Be exact."
    output = json.loads(harness.runtime.invoke_model(modelId=ANTHROPIC, body=json.dumps(body))["body"].read())
    assert output["content"][0]["text"] == "REAL ANSWER to What is 2+2?"
    assert output["usage"] == {"input_tokens": 11, "output_tokens": 7}
    sent = _StubOpenAI.requests[0]
    assert sent["path"] == "/v1/chat/completions" and sent["model"] == "local-llm" and sent["max_tokens"] == 64
    assert sent["messages"][0] == {"role": "system", "content": "Be exact."}

    records = harness.records(6, lambda i: anthropic_input(f"question {i}"))
    records[2]["modelInput"] = anthropic_input("please explode")
    arn = harness.create_job(harness.write_jsonl("in/input.jsonl", records))
    job = harness.wait(arn)
    assert (job["successRecordCount"], job["errorRecordCount"]) == (5, 1)
    lines = {line["recordId"]: line for line in harness.output(arn)}
    assert lines["R0000000000"]["modelOutput"]["content"][0]["text"] == "REAL ANSWER to question 0"
    assert lines["R0000000002"]["error"]["errorCode"] == 500
    assert harness.manifest(arn)["inputTokenCount"] == 55
