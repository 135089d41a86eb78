"""bedrock-runtime InvokeModel and Converse against the emulator with unmodified boto3."""

from __future__ import annotations

import json

import pytest

from emulator_helpers import ANTHROPIC, TITAN_V2, anthropic_input

INVOKE_CASES = {
    "anthropic": (ANTHROPIC, anthropic_input("Why is the sky blue?"), lambda out: out["content"][0]["text"]),
    "anthropic-profile-arn": (
        f"arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.{ANTHROPIC}",
        anthropic_input("Hello"), lambda out: out["content"][0]["text"]),
    "titan-v2": (TITAN_V2, {"inputText": "hello world", "dimensions": 512, "embeddingTypes": ["float", "binary"]},
                 lambda out: out["embeddingsByType"]["binary"]),
    "nova": ("us.amazon.nova-pro-v1:0", {"messages": [{"role": "user", "content": [{"text": "Hi"}]}]},
             lambda out: out["output"]["message"]["content"][0]["text"]),
    "llama": ("meta.llama3-3-70b-instruct-v1:0", {"prompt": "Hi there"}, lambda out: out["generation"]),
    "mistral-text": ("mistral.mixtral-8x7b-instruct-v0:1", {"prompt": "<s>[INST] Hi [/INST]"}, lambda out: out["outputs"][0]["text"]),
    "mistral-chat": ("mistral.mistral-large-2407-v1:0", {"messages": [{"role": "user", "content": "Hi"}]},
                     lambda out: out["choices"][0]["message"]["content"]),
}


@pytest.mark.parametrize("case", list(INVOKE_CASES))
def test_invoke_model_per_provider(harness, case):
    model_id, body, pick = INVOKE_CASES[case]
    response = harness.runtime.invoke_model(modelId=model_id, body=json.dumps(body),
                                            contentType="application/json", accept="application/json")
    output = json.loads(response["body"].read())
    assert pick(output)
    assert response["contentType"] == "application/json"
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert int(headers["x-amzn-bedrock-input-token-count"]) > 0
    assert "x-amzn-bedrock-output-token-count" in headers
    assert response["ResponseMetadata"]["RequestId"]


def test_invoke_matches_batch_engine_output(harness):
    body = {"inputText": "the same text", "dimensions": 256}
    first = json.loads(harness.runtime.invoke_model(modelId=TITAN_V2, body=json.dumps(body))["body"].read())
    second = json.loads(harness.runtime.invoke_model(modelId=TITAN_V2, body=json.dumps(body))["body"].read())
    assert first == second and len(first["embedding"]) == 256 and "usage" not in first


def test_converse(harness):
    response = harness.runtime.converse(
        modelId=f"eu.{ANTHROPIC}",
        system=[{"text": "You are terse."}],
        messages=[{"role": "user", "content": [{"text": "Name three colours"}]}],
        inferenceConfig={"maxTokens": 5},
    )
    assert response["output"]["message"]["role"] == "assistant"
    assert response["stopReason"] == "max_tokens"
    assert response["usage"]["outputTokens"] == 5
    assert response["usage"]["inputTokens"] == 7  # "You are terse." (4) + "Name three colours" (3)
    assert "latencyMs" in response["metrics"]


@pytest.mark.parametrize(
    "model_id, body",
    [(ANTHROPIC, {"messages": [{"role": "user", "content": "no version or max_tokens"}]}),
     (TITAN_V2, {"inputText": "x", "dimensions": 100}),
     (TITAN_V2, {"inputText": "x", "unexpected": True}),
     ("acme.mystery-model-v1", {"prompt": "x"})],
    ids=["anthropic-schema", "titan-dimensions", "titan-extra-key", "unknown-model"],
)
def test_invoke_validation_errors(harness, model_id, body):
    with pytest.raises(harness.runtime.exceptions.ValidationException) as caught:
        harness.runtime.invoke_model(modelId=model_id, body=json.dumps(body))
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_converse_bad_body_is_a_validation_error(harness):
    with pytest.raises(harness.runtime.exceptions.ValidationException):
        harness.runtime.converse(modelId=ANTHROPIC, messages=[{"role": "robot", "content": [{"text": "x"}]}])


def test_runtime_throttling(make_harness):
    harness = make_harness(throttle_rate=1.0)
    client = harness.client("bedrock-runtime", retries={"mode": "standard", "max_attempts": 0})
    with pytest.raises(client.exceptions.ThrottlingException) as caught:
        client.invoke_model(modelId=ANTHROPIC, body=json.dumps(anthropic_input("x")))
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    with pytest.raises(client.exceptions.ThrottlingException):
        client.converse(modelId=ANTHROPIC, messages=[{"role": "user", "content": [{"text": "x"}]}])
    harness.emulator.configure(runtime_throttle_rate=0.0)
    assert client.converse(modelId=ANTHROPIC, messages=[{"role": "user", "content": [{"text": "x"}]}])["output"]
    stats = harness.emulator.stats()["models"][ANTHROPIC]
    assert stats["runtime_throttled"] == 2 and stats["runtime_invocations"] == 1
