"""Batch jobs end to end: lifecycle, output layout and shapes, validation, stop, expiry, faults."""

from __future__ import annotations

import json

import pytest

from emulator_helpers import ANTHROPIC, TITAN_V2, anthropic_input, titan_input

LLAMA_PROMPT = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"

PROVIDERS = {
    "anthropic": (ANTHROPIC, None, lambda i: anthropic_input(f"Tell me about topic {i}")),
    "anthropic-profile": (f"us.{ANTHROPIC}", None, lambda i: anthropic_input(f"Topic {i}")),
    "titan-v2": (TITAN_V2, None, lambda i: titan_input(f"document number {i}", 256)),
    "nova": ("amazon.nova-lite-v1:0", None, lambda i: {
        "schemaVersion": "messages-v1", "system": [{"text": "Be brief."}],
        "messages": [{"role": "user", "content": [{"text": f"Question {i}"}]}],
        "inferenceConfig": {"maxTokens": 100}}),
    "llama": ("meta.llama3-1-8b-instruct-v1:0", None, lambda i: {"prompt": LLAMA_PROMPT.format(f"Question {i}"), "max_gen_len": 100}),
    "mistral-text": ("mistral.mistral-7b-instruct-v0:2", None, lambda i: {"prompt": f"<s>[INST] Question {i} [/INST]", "max_tokens": 100}),
    "mistral-chat": ("mistral.mistral-large-2407-v1:0", None, lambda i: {"messages": [{"role": "user", "content": f"Question {i}"}], "max_tokens": 100}),
    "converse": ("global.anthropic.claude-sonnet-4-20250514-v1:0", "Converse", lambda i: {
        "messages": [{"role": "user", "content": [{"text": f"Question {i}"}]}],
        "inferenceConfig": {"maxTokens": 100}}),
    "converse-arn": ("arn:aws:bedrock:us-west-2::foundation-model/amazon.nova-micro-v1:0", "Converse", lambda i: {
        "messages": [{"role": "user", "content": [{"text": f"Question {i}"}]}]}),
}


def check_shape(provider: str, output: dict) -> tuple[int, int]:
    """Assert the provider's exact modelOutput shape; return (input tokens, output tokens)."""
    if provider.startswith("anthropic"):
        assert output["type"] == "message" and output["role"] == "assistant"
        assert output["content"][0]["type"] == "text" and "[emulated" in output["content"][0]["text"]
        assert output["stop_reason"] in ("end_turn", "max_tokens", "stop_sequence")
        return output["usage"]["input_tokens"], output["usage"]["output_tokens"]
    if provider == "titan-v2":
        assert "usage" not in output
        assert len(output["embedding"]) == 256
        assert output["embeddingsByType"]["float"] == output["embedding"]
        assert abs(sum(value * value for value in output["embedding"]) - 1.0) < 1e-3
        return output["inputTextTokenCount"], 0
    if provider in ("nova", "converse", "converse-arn"):
        assert output["output"]["message"]["role"] == "assistant"
        assert output["output"]["message"]["content"][0]["text"]
        assert output["stopReason"] in ("end_turn", "max_tokens")
        usage = output["usage"]
        assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
        if provider.startswith("converse"):
            assert "latencyMs" in output["metrics"]
        return usage["inputTokens"], usage["outputTokens"]
    if provider == "llama":
        assert output["stop_reason"] in ("stop", "length") and output["generation"]
        assert "<|" not in output["generation"]
        return output["prompt_token_count"], output["generation_token_count"]
    if provider == "mistral-text":
        assert set(output) == {"outputs"} and output["outputs"][0]["stop_reason"] in ("stop", "length")
        return 0, 0
    assert output["choices"][0]["message"]["role"] == "assistant"
    return 0, 0


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_job_end_to_end_per_provider(harness, provider):
    model_id, invocation_type, make_input = PROVIDERS[provider]
    records = harness.records(40, make_input)
    uri = harness.write_jsonl("batch/input.jsonl", records)
    extra = {"modelInvocationType": invocation_type} if invocation_type else {}
    arn = harness.create_job(uri, model_id=model_id, output_prefix="results/", **extra)
    job = harness.wait(arn)
    assert job["status"] == "Completed", job.get("message")
    lines = harness.output(arn, "results/")
    ids = [line["recordId"] for line in lines]
    assert sorted(ids) == [record["recordId"] for record in records]  # every id exactly once
    assert ids != sorted(ids)  # not in input order
    inputs = {record["recordId"]: record["modelInput"] for record in records}
    input_tokens = output_tokens = 0
    for line in lines:
        assert set(line) == {"recordId", "modelInput", "modelOutput"}
        assert line["modelInput"] == inputs[line["recordId"]]
        tokens = check_shape(provider, line["modelOutput"])
        input_tokens += tokens[0]
        output_tokens += tokens[1]
    manifest = harness.manifest(arn, "results/")
    assert manifest["totalRecordCount"] == manifest["processedRecordCount"] == manifest["successRecordCount"] == 40
    assert manifest["errorRecordCount"] == 0
    if provider in ("anthropic", "titan-v2", "nova", "llama", "converse"):
        assert (manifest["inputTokenCount"], manifest["outputTokenCount"]) == (input_tokens, output_tokens)
    job_id = arn.rsplit("/", 1)[1]
    keys = {item["Key"] for item in harness.s3.list_objects_v2(Bucket=harness.bucket, Prefix="results/")["Contents"]}
    assert keys == {f"results/{job_id}/input.jsonl.out", f"results/{job_id}/manifest.json.out"}


def test_prefix_input_writes_one_out_file_per_input_file(harness):
    first = harness.records(6, lambda i: anthropic_input(f"a{i}"), prefix="A")
    second = harness.records(7, lambda i: anthropic_input(f"b{i}"), prefix="B")
    harness.write_jsonl("many/part-1.jsonl", first)
    harness.write_jsonl("many/nested/part-2.jsonl", second)
    arn = harness.create_job(f"s3://{harness.bucket}/many/")
    assert harness.wait(arn)["totalRecordCount"] == 13
    assert len(harness.output(arn, file_name="part-1.jsonl.out")) == 6
    assert len(harness.output(arn, file_name="nested/part-2.jsonl.out")) == 7


def test_records_without_record_id_get_one_and_bad_bodies_become_error_lines(harness):
    records = [{"modelInput": anthropic_input(f"q{i}")} for i in range(5)]
    records += [
        {"recordId": "BAD0000001", "modelInput": {"messages": [{"role": "user", "content": "no version"}]}},
        {"recordId": "BAD0000002", "modelInput": {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": []}},
        {"recordId": "BAD0000003"},
    ]
    arn = harness.create_job(harness.write_jsonl("in/input.jsonl", records))
    job = harness.wait(arn)
    assert job["status"] == "Completed"
    assert (job["successRecordCount"], job["errorRecordCount"]) == (5, 3)
    lines = harness.output(arn)
    assigned = [line["recordId"] for line in lines if not line["recordId"].startswith("BAD")]
    assert len(set(assigned)) == 5 and all(len(record_id) == 11 for record_id in assigned)
    errors = {line["recordId"]: line["error"] for line in lines if "error" in line}
    assert set(errors) == {"BAD0000001", "BAD0000002", "BAD0000003"}
    assert all(error["errorCode"] == 400 and "Malformed input request" in error["errorMessage"] for error in errors.values())
    assert "anthropic_version" in errors["BAD0000001"]["errorMessage"]


@pytest.mark.parametrize(
    "case, fragment",
    [("non-json", "not valid JSON"), ("not-jsonl", "not a .jsonl"), ("too-few", "minimum"),
     ("too-many", "more than"), ("missing", "No input files"), ("too-large", "input file size"),
     ("no-bucket", "bucket"), ("not-object", "not a JSON object")],
)
def test_validation_failures_fail_the_job(make_harness, case, fragment):
    harness = make_harness(min_records=10, max_records=50)
    good = harness.records(12, lambda i: anthropic_input(f"q{i}"))
    if case == "non-json":
        uri = harness.write_jsonl("in/input.jsonl", [json.dumps(r) for r in good] + ['{"recordId": "x", broken'])
    elif case == "not-jsonl":
        uri = harness.write_jsonl("in/input.json", good)
    elif case == "too-few":
        uri = harness.write_jsonl("in/input.jsonl", good[:5])
    elif case == "too-many":
        uri = harness.write_jsonl("in/input.jsonl", harness.records(51, lambda i: anthropic_input("x")))
    elif case == "missing":
        uri = f"s3://{harness.bucket}/in/absent.jsonl"
    elif case == "too-large":
        harness.emulator.configure(max_input_file_bytes=100)
        uri = harness.write_jsonl("in/input.jsonl", good)
    elif case == "no-bucket":
        uri = "s3://no-such-bucket-anywhere/in/input.jsonl"
    else:
        uri = harness.write_jsonl("in/input.jsonl", [json.dumps(r) for r in good] + ["[1, 2]"])
    arn = harness.create_job(uri)
    job = harness.wait(arn)
    assert job["status"] == "Failed"
    assert fragment in job["message"]
    assert job["totalRecordCount"] == 0 and job["processedRecordCount"] == 0


def test_counts_progress_and_stop_keeps_partial_output(make_harness):
    harness = make_harness(records_per_second=100)
    records = harness.records(1000, lambda i: anthropic_input(f"q{i}"))
    arn = harness.create_job(harness.write_jsonl("in/input.jsonl", records))
    seen = harness.wait_until(arn, lambda job: job["status"] == "InProgress" and job["processedRecordCount"] >= 20)
    assert seen["totalRecordCount"] == 1000
    harness.bedrock.stop_model_invocation_job(jobIdentifier=arn)
    assert harness.bedrock.get_model_invocation_job(jobIdentifier=arn)["status"] in ("Stopping", "Stopped")
    job = harness.wait(arn)
    assert job["status"] == "Stopped"
    processed = job["processedRecordCount"]
    assert 20 <= processed < 1000
    lines = harness.output(arn)
    assert len(lines) == processed == harness.manifest(arn)["processedRecordCount"]
    assert len({line["recordId"] for line in lines}) == processed


def test_records_counts_are_zero_while_validating(make_harness):
    harness = make_harness(queue_seconds=30)
    arn = harness.create_job(harness.write_jsonl("in/input.jsonl", harness.records(8, lambda i: anthropic_input("x"))))
    job = harness.bedrock.get_model_invocation_job(jobIdentifier=arn)
    if job["status"] in ("Submitted", "Validating"):
        assert job["totalRecordCount"] == 0
    scheduled = harness.wait(arn, {"Scheduled"})
    assert scheduled["totalRecordCount"] == 8 and scheduled["processedRecordCount"] == 0


def test_scheduled_job_expires_in_scaled_time(make_harness):
    # 24 emulated hours = 0.48 real seconds; the job would wait 30 s in the queue.
    harness = make_harness(queue_seconds=30, seconds_per_hour=0.02)
    arn = harness.create_job(harness.write_jsonl("in/input.jsonl", harness.records(8, lambda i: anthropic_input("x"))),
                             timeoutDurationInHours=24)
    job = harness.wait(arn, timeout=10)
    assert job["status"] == "Expired"
    assert job["processedRecordCount"] == 0


def test_timeout_mid_run_is_partially_completed(make_harness):
    harness = make_harness(records_per_second=100, seconds_per_hour=0.1)  # 24 h = 2.4 s
    records = harness.records(1000, lambda i: anthropic_input(f"q{i}"))
    arn = harness.create_job(harness.write_jsonl("in/input.jsonl", records), timeoutDurationInHours=24)
    job = harness.wait(arn, timeout=10)
    assert job["status"] == "PartiallyCompleted"
    assert 0 < job["processedRecordCount"] < 1000
    assert len(harness.output(arn)) == job["processedRecordCount"]
    assert harness.manifest(arn)["totalRecordCount"] == 1000


def test_record_faults_transient_retry_mostly_succeeds(make_harness):
    harness = make_harness(record_error_rate=0.3, record_error_codes=(429, 500))
    records = harness.records(200, lambda i: titan_input(f"text {i}"))
    arn = harness.create_job(harness.write_jsonl("in/input.jsonl", records), model_id=TITAN_V2)
    job = harness.wait(arn)
    assert job["status"] == "Completed"
    failed = [line for line in harness.output(arn) if "error" in line]
    assert 30 <= len(failed) <= 90 and job["errorRecordCount"] == len(failed)
    assert {line["error"]["errorCode"] for line in failed} == {429, 500}
    # Resubmit only the failures in a new job: each is a fresh attempt.
    failed_ids = {line["recordId"] for line in failed}
    retry = [record for record in records if record["recordId"] in failed_ids]
    retry_arn = harness.create_job(harness.write_jsonl("retry/input.jsonl", retry), model_id=TITAN_V2, output_prefix="retry-out/")
    harness.wait(retry_arn)
    still_failing = [line for line in harness.output(retry_arn, "retry-out/") if "error" in line]
    assert len(still_failing) < len(failed) / 2


def test_record_faults_permanent_errors_are_sticky(make_harness):
    harness = make_harness(record_error_rate=0.2, record_error_codes=(400,))
    records = harness.records(100, lambda i: titan_input(f"text {i}"))
    uri = harness.write_jsonl("in/input.jsonl", records)
    first = harness.create_job(uri, model_id=TITAN_V2)
    harness.wait(first)
    second = harness.create_job(uri, model_id=TITAN_V2)
    harness.wait(second)
    failed_first = {line["recordId"] for line in harness.output(first) if "error" in line}
    failed_second = {line["recordId"] for line in harness.output(second) if "error" in line}
    assert failed_first and failed_first == failed_second


def test_processing_speed_can_change_mid_job(make_harness):
    harness = make_harness(records_per_second=20)
    arn = harness.create_job(harness.write_jsonl("in/input.jsonl", harness.records(400, lambda i: anthropic_input("x"))))
    harness.wait_until(arn, lambda job: job["processedRecordCount"] >= 2)
    harness.emulator.configure(records_per_second=0)
    assert harness.wait(arn, timeout=10)["status"] == "Completed"
