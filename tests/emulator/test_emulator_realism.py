"""Where the emulator behaves like real Bedrock because independent clients rely on it: the early
states, EventBridge events, modelId read back as an ARN, partial output, unknown model ids, JSONL
line splitting and botocore waiters. Unmodified boto3 over HTTP (docs/emulator.md, "Assumed
behaviours", names the public source of each)."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import botocore.waiter
import pytest

from bedrock_assets.emulator.catalog import is_known_model
from emulator_helpers import ANTHROPIC, REGION, anthropic_input

REPO = Path(__file__).resolve().parents[2]
PROFILE = "us.anthropic.claude-3-5-haiku-20241022-v1:0"


def _poll_statuses(harness, arn: str, timeout: float = 20.0) -> list[dict]:
    """Every distinct status Get reports, polled every 20 ms until the job ends."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = harness.bedrock.get_model_invocation_job(jobIdentifier=arn)
        if not seen or seen[-1]["status"] != job["status"]:
            seen.append(job)
        if job["status"] in ("Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"):
            return seen
        time.sleep(0.02)
    raise AssertionError(f"job never ended: {[j['status'] for j in seen]}")


def test_a_new_job_goes_submitted_validating_scheduled_inprogress_completed(make_harness):
    # One second per early state: a Get right after create must still find Submitted on a loaded
    # machine (0.3 s was missed once when the suite ran beside other work).
    harness = make_harness(submitted_seconds=1.0, validating_seconds=1.0, queue_seconds=0.5, records_per_second=100)
    arn = harness.create_job(harness.write_jsonl("in/input.jsonl", harness.records(40, lambda i: anthropic_input(f"q{i}"))))
    seen = _poll_statuses(harness, arn)
    assert [job["status"] for job in seen] == ["Submitted", "Validating", "Scheduled", "InProgress", "Completed"]
    for early in seen[:2]:  # nothing is counted before validation has read the input
        assert [early[k] for k in ("totalRecordCount", "processedRecordCount", "successRecordCount")] == [0, 0, 0]
    assert seen[2]["totalRecordCount"] == 40 and seen[-1]["successRecordCount"] == 40


def test_default_durations_show_the_early_states_briefly(harness):
    config = harness.emulator.configure()
    assert 0 < config["submitted_seconds"] <= 0.1 and 0 < config["validating_seconds"] <= 0.1
    arn = harness.create_job(harness.write_jsonl("in/input.jsonl", harness.records(5, lambda i: anthropic_input("x"))))
    assert harness.bedrock.get_model_invocation_job(jobIdentifier=arn)["status"] == "Submitted"
    assert harness.wait(arn)["status"] == "Completed"
    changed = harness.emulator.configure(submitted_seconds=2, validating_seconds=0.5, partial_output_seconds=0)
    assert (changed["submitted_seconds"], changed["validating_seconds"], changed["partial_output_seconds"]) == (2.0, 0.5, 0.0)


def test_state_changes_reach_an_sqs_queue_through_an_eventbridge_rule(harness):
    sqs, events = harness.client("sqs"), harness.client("events")
    queue_url = sqs.create_queue(QueueName=f"bedrock-events-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = f"batch-jobs-{uuid.uuid4().hex[:8]}"
    events.put_rule(Name=rule, EventPattern=json.dumps(
        {"source": ["aws.bedrock"], "detail-type": ["Batch Inference Job State Change"]}))
    events.put_targets(Rule=rule, Targets=[{"Id": "queue", "Arn": queue_arn}])

    arn = harness.create_job(harness.write_jsonl("in/input.jsonl", harness.records(5, lambda i: anthropic_input("x"))),
                             model_id=PROFILE, name="evented-job")
    assert harness.wait(arn)["status"] == "Completed"
    received: list[dict] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            break
        received += [json.loads(m["Body"]) for m in messages]
    mine = [event for event in received if event["detail"]["batchJobArn"] == arn]
    assert [e["detail"]["status"] for e in mine] == ["Submitted", "Validating", "Scheduled", "InProgress", "Completed"]
    last = mine[-1]
    assert last["source"] == "aws.bedrock" and last["detail-type"] == "Batch Inference Job State Change"
    assert last["resources"] == [arn] and last["region"] == REGION
    assert last["detail"]["batchJobName"] == "evented-job" and last["detail"]["batchModelId"] == PROFILE
    assert last["detail"]["accountId"] == arn.split(":")[4] and last["detail"]["failureMessage"] == ""
    assert re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d{2}:\d{2} [AP]M", last["detail"]["creationTime"])


def test_model_id_reads_back_as_an_arn(harness):
    uri = harness.write_jsonl("in/input.jsonl", harness.records(5, lambda i: anthropic_input("x")))
    profile_arn = harness.create_job(uri, model_id=PROFILE)
    base_arn = harness.create_job(uri, model_id=ANTHROPIC)
    account = profile_arn.split(":")[4]
    expected = {
        profile_arn: f"arn:aws:bedrock:{REGION}:{account}:inference-profile/{PROFILE}",
        base_arn: f"arn:aws:bedrock:{REGION}::foundation-model/{ANTHROPIC}",
    }
    for arn, model in expected.items():
        assert harness.bedrock.get_model_invocation_job(jobIdentifier=arn)["modelId"] == model
    listed = {s["jobArn"]: s["modelId"] for s in harness.bedrock.list_model_invocation_jobs()["invocationJobSummaries"]}
    assert {arn: listed[arn] for arn in expected} == expected
    # The ARN form is accepted back as a model id (a client may resubmit what it read).
    harness.wait(harness.create_job(uri, model_id=expected[profile_arn]))


def test_output_appears_while_in_progress_and_is_complete_only_at_the_end(make_harness):
    harness = make_harness(records_per_second=150, partial_output_seconds=0.2)
    arn = harness.create_job(harness.write_jsonl("in/input.jsonl", harness.records(300, lambda i: anthropic_input(f"q{i}"))))
    key = f"out/{arn.rsplit('/', 1)[1]}/input.jsonl.out"
    partial = None
    deadline = time.monotonic() + 15
    while partial is None and time.monotonic() < deadline:
        job = harness.bedrock.get_model_invocation_job(jobIdentifier=arn)
        listed = harness.s3.list_objects_v2(Bucket=harness.bucket, Prefix=key).get("KeyCount", 0)
        if job["status"] == "InProgress" and listed:
            partial = harness.output(arn)
        time.sleep(0.05)
    assert partial is not None, "no output object appeared while InProgress"
    assert 0 < len(partial) < 300  # a .out file exists, yet the job is not done
    assert harness.wait(arn)["status"] == "Completed"
    assert len(harness.output(arn)) == 300 and harness.manifest(arn)["processedRecordCount"] == 300


UNKNOWN = ("anthropic.claude-3-haiku-20990101-v1:0", "us.anthropic.claude-typo-v1:0", "acme.model-v1:0")


def test_unknown_model_ids_are_refused_at_create_with_aws_message(harness):
    uri = harness.write_jsonl("in/input.jsonl", harness.records(5, lambda i: anthropic_input("x")))
    for model in UNKNOWN:
        with pytest.raises(harness.bedrock.exceptions.ValidationException) as caught:
            harness.create_job(uri, model_id=model)
        assert caught.value.response["Error"]["Message"] == "The provided model identifier is invalid."
    with pytest.raises(harness.runtime.exceptions.ValidationException):
        harness.runtime.invoke_model(modelId=UNKNOWN[0], body=json.dumps(anthropic_input("x")))


# A model id as this repository writes them: provider.name-version[:n], optionally with a region prefix.
MODEL_ID = re.compile(
    r"(?<![\w.-])(?:(?:us|eu|apac|global|us-gov|jp|au|ca)\.)?"
    r"(?:anthropic|amazon|meta|mistral|cohere|ai21|deepseek|qwen|openai|writer)\.[a-z0-9][a-z0-9.-]*-v?\d+(?::\d+)"
)
# Ids the repository uses on purpose as *unsupported* or made-up examples.
NOT_SERVED = {*UNKNOWN, "meta.llama2-13b-chat-v1", "amazon.titan-embed-text-v1", "cohere.embed-english-v3", "amazon.nova-canvas-v1:0",
              "anthropic.claude-sonnet-4-v1:0", "global.anthropic.claude-sonnet-4-v1:0",
              # the spec tests' typo, made-up and newer-than-the-list ids (refused before any job)
              "anthropic.claude-3-haiku-20240307-v1:1", "anthropic.claude-9-imaginary-v1:0", "anthropic.claude-9-v1:0",
              # bedrock-assets smoke's made-up id (Create must refuse it)
              "amazon.smoke-check-no-such-model-v9:0"}


def test_every_model_id_used_in_the_repository_is_known_to_the_catalog():
    used: set[str] = set()
    for folder in ("tests", "bench", "docs", "bedrock_assets"):
        for path in (REPO / folder).rglob("*"):
            if "data" in path.relative_to(REPO).parts[:2]:
                continue  # bench/data: generated benchmark inputs and shards (gigabytes, not ours)
            if path.suffix in (".py", ".md", ".yaml", ".yml", ".json", ".jsonl") and path.is_file():
                used.update(MODEL_ID.findall(path.read_text(encoding="utf-8", errors="replace")))
    used.update(MODEL_ID.findall((REPO / "README.md").read_text(encoding="utf-8")))
    assert len(used) > 10
    assert sorted(m for m in used - NOT_SERVED if not is_known_model(m)) == []


def test_every_model_the_pipeline_accepts_runs_on_the_emulator():
    """The pipeline's list of known ids (providers/known_models.py) is a subset of the emulator's
    catalog, so any spec that passes validation can be tried locally."""
    from bedrock_assets.providers import known_models  # the test may import both sides

    accepted = set(known_models.BASE_IDS) | set(known_models.PROFILE_IDS)
    assert len(accepted) > 50
    assert sorted(m for m in accepted if not is_known_model(m)) == []


def test_jsonl_is_split_on_newline_only(harness):
    """U+2028, U+2029 and U+0085 may stand unescaped inside JSON strings: they are not line ends."""
    odd = "line\u2028separator\u2029paragraph\x85next-line"
    records = harness.records(5, lambda i: anthropic_input(f"plain {i}"))
    records[2]["modelInput"] = anthropic_input(odd)
    text = "\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n"
    assert "\u2028" in text and len(text.splitlines()) > 5  # str.splitlines would break the record
    harness.s3.put_object(Bucket=harness.bucket, Key="in/odd.jsonl", Body=text.encode("utf-8"))
    arn = harness.create_job(f"s3://{harness.bucket}/in/odd.jsonl")
    job = harness.wait(arn)
    assert (job["status"], job["totalRecordCount"], job["successRecordCount"]) == ("Completed", 5, 5)
    lines = {line["recordId"]: line for line in harness.output(arn, file_name="odd.jsonl.out")}
    answered = lines[records[2]["recordId"]]
    assert answered["modelInput"]["messages"][0]["content"][0]["text"] == odd
    assert answered["modelOutput"]["content"][0]["text"]


# Acceptors of the `batch_inference_complete` and `batch_inference_scheduled` waiters that the
# Apache Airflow Amazon provider ships (providers/amazon/.../aws/waiters/bedrock.json): written
# out here, not copied, with short delays for the emulator.
_FAILURES = ("Failed", "Stopped", "PartiallyCompleted", "Expired")


def _acceptors(success: tuple[str, ...], retry: tuple[str, ...], failure: tuple[str, ...]) -> list[dict]:
    return [{"matcher": "path", "argument": "status", "expected": status, "state": state}
            for state, statuses in (("success", success), ("retry", retry), ("failure", failure)) for status in statuses]


WAITERS = {"version": 2, "waiters": {
    "BatchInferenceComplete": {
        "operation": "GetModelInvocationJob", "delay": 1, "maxAttempts": 30,
        "acceptors": _acceptors(("Completed",), ("Submitted", "Validating", "Scheduled", "InProgress"), _FAILURES + ("Stopping",)),
    },
    "BatchInferenceScheduled": {
        "operation": "GetModelInvocationJob", "delay": 1, "maxAttempts": 30,
        "acceptors": _acceptors(("Scheduled", "Completed"), ("Submitted", "Validating", "InProgress", "Stopping"), _FAILURES),
    },
}}


def test_airflow_style_botocore_waiters_work(make_harness):
    harness = make_harness(queue_seconds=3)
    model = botocore.waiter.WaiterModel(WAITERS)
    scheduled = botocore.waiter.create_waiter_with_client("BatchInferenceScheduled", model, harness.bedrock)
    complete = botocore.waiter.create_waiter_with_client("BatchInferenceComplete", model, harness.bedrock)
    arn = harness.create_job(harness.write_jsonl("in/input.jsonl", harness.records(5, lambda i: anthropic_input("x"))))
    scheduled.wait(jobIdentifier=arn)
    assert harness.bedrock.get_model_invocation_job(jobIdentifier=arn)["status"] == "Scheduled"
    complete.wait(jobIdentifier=arn)
    assert harness.bedrock.get_model_invocation_job(jobIdentifier=arn)["status"] == "Completed"
    # A failure acceptor ends the wait with WaiterError: stop a job, then wait for completion.
    stopped = harness.create_job(harness.write_jsonl("in/stop.jsonl", harness.records(5, lambda i: anthropic_input("y"))))
    harness.bedrock.stop_model_invocation_job(jobIdentifier=stopped)
    with pytest.raises(botocore.exceptions.WaiterError):
        complete.wait(jobIdentifier=stopped)
