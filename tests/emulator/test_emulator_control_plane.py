"""The four batch operations over HTTP with unmodified boto3: shapes, errors, idempotency, quotas."""

from __future__ import annotations

import datetime as dt
import re
import urllib.request

import boto3
import pytest
from botocore.exceptions import ClientError

from emulator_helpers import ANTHROPIC, REGION, ROLE_ARN, TITAN_V2, anthropic_input

JOB_ARN = re.compile(r"arn:aws:bedrock:us-west-2:123456789012:model-invocation-job/[a-z0-9]{12}")


def _input(harness, count: int = 6, key: str = "in/input.jsonl") -> str:
    return harness.write_jsonl(key, harness.records(count, lambda i: anthropic_input(f"question {i}")))


def test_create_get_by_arn_and_by_id(harness):
    uri = _input(harness)
    response = harness.bedrock.create_model_invocation_job(
        jobName="first-job.v1", roleArn=ROLE_ARN, modelId=ANTHROPIC, clientRequestToken="tok-1",
        inputDataConfig={"s3InputDataConfig": {"s3Uri": uri, "s3InputFormat": "JSONL"}},
        outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{harness.bucket}/out/"}},
        timeoutDurationInHours=72, tags=[{"key": "team", "value": "ml"}],
    )
    arn = response["jobArn"]
    assert JOB_ARN.fullmatch(arn)
    assert response["ResponseMetadata"]["RequestId"]
    by_arn = harness.bedrock.get_model_invocation_job(jobIdentifier=arn)
    by_id = harness.bedrock.get_model_invocation_job(jobIdentifier=arn.rsplit("/", 1)[1])
    assert by_arn["jobArn"] == by_id["jobArn"] == arn
    assert by_arn["jobName"] == "first-job.v1"
    # A base id reads back as its foundation-model ARN (docs/emulator.md, "Assumed behaviours").
    assert by_arn["modelId"] == f"arn:aws:bedrock:{REGION}::foundation-model/{ANTHROPIC}"
    assert by_arn["roleArn"] == ROLE_ARN
    assert by_arn["clientRequestToken"] == "tok-1"
    assert by_arn["timeoutDurationInHours"] == 72
    assert isinstance(by_arn["submitTime"], dt.datetime)
    assert by_arn["jobExpirationTime"] > by_arn["submitTime"]
    assert by_arn["inputDataConfig"]["s3InputDataConfig"]["s3Uri"] == uri
    done = harness.wait(arn)
    assert done["status"] == "Completed"
    assert done["endTime"] >= done["submitTime"]
    assert (done["totalRecordCount"], done["processedRecordCount"], done["successRecordCount"],
            done["errorRecordCount"]) == (6, 6, 6, 0)


def test_region_comes_from_the_credential_scope(harness):
    tokyo = boto3.client("bedrock", endpoint_url=harness.emulator.endpoint_url, region_name="ap-northeast-1",
                         aws_access_key_id="x", aws_secret_access_key="y")
    arn = harness.create_job(_input(harness), client=tokyo)
    assert arn.startswith("arn:aws:bedrock:ap-northeast-1:123456789012:model-invocation-job/")


def test_idempotent_create_replays_the_same_job(harness):
    uri = _input(harness)
    first = harness.create_job(uri, name="idem", clientRequestToken="same-token")
    second = harness.create_job(uri, name="idem", clientRequestToken="same-token")
    assert first == second
    jobs = harness.bedrock.list_model_invocation_jobs(nameContains="idem")["invocationJobSummaries"]
    assert len(jobs) == 1
    model = harness.emulator.stats()["models"][ANTHROPIC]
    assert model["jobs_created"] == 1 and model["create_replays"] == 1


def test_replay_is_neither_throttled_nor_counted_against_the_quota(make_harness):
    harness = make_harness(max_concurrent_jobs=1, queue_seconds=60)
    uri = _input(harness)
    arn = harness.create_job(uri, clientRequestToken="only-one")
    harness.emulator.configure(throttle_rate=1.0)
    assert harness.create_job(uri, clientRequestToken="only-one") == arn
    harness.emulator.configure(throttle_rate=0.0)
    with pytest.raises(harness.bedrock.exceptions.ServiceQuotaExceededException):
        harness.create_job(uri, clientRequestToken="another")


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"jobName": "bad_name"}, "jobName"),
        ({"jobName": "-starts-with-dash"}, "jobName"),
        ({"roleArn": "arn:aws:iam::123:user/bob"}, "roleArn"),
        ({"inputDataConfig": {"s3InputDataConfig": {"s3Uri": "s3://Upper_Bucket/in.jsonl"}}}, "s3Uri"),
        ({"outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "https://bucket/out/"}}}, "s3Uri"),
        ({"modelId": "acme.unknown-model-v1"}, "model identifier"),
        ({"modelId": TITAN_V2, "modelInvocationType": "Converse"}, "Converse"),
    ],
    ids=["underscore-name", "dash-name", "role", "input-uri", "output-uri", "unknown-model", "converse-embedding"],
)
def test_create_validation_errors(harness, overrides, fragment):
    request = dict(
        jobName="valid-name", roleArn=ROLE_ARN, modelId=ANTHROPIC,
        inputDataConfig={"s3InputDataConfig": {"s3Uri": f"s3://{harness.bucket}/in/input.jsonl"}},
        outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{harness.bucket}/out/"}},
    )
    request.update(overrides)
    with pytest.raises(harness.bedrock.exceptions.ValidationException) as caught:
        harness.bedrock.create_model_invocation_job(**request)
    assert fragment in str(caught.value)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert harness.emulator.stats()["totals"]["jobs_created"] == 0


def test_duplicate_job_name_is_a_conflict(harness):
    uri = _input(harness)
    harness.create_job(uri, name="dup-name")
    with pytest.raises(harness.bedrock.exceptions.ConflictException):
        harness.create_job(uri, name="dup-name")


@pytest.mark.parametrize("identifier", ["abcdefghijkl", "arn:aws:bedrock:us-west-2:123456789012:model-invocation-job/abcdefghijkl"])
def test_unknown_job_is_resource_not_found(harness, identifier):
    with pytest.raises(harness.bedrock.exceptions.ResourceNotFoundException) as caught:
        harness.bedrock.get_model_invocation_job(jobIdentifier=identifier)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(harness.bedrock.exceptions.ResourceNotFoundException):
        harness.bedrock.stop_model_invocation_job(jobIdentifier=identifier)


def test_malformed_job_identifier_is_a_validation_error(harness):
    with pytest.raises(harness.bedrock.exceptions.ValidationException):
        harness.bedrock.get_model_invocation_job(jobIdentifier="NOT-A-JOB")


def test_stop_on_an_ended_job_is_a_validation_error_naming_the_state(harness):
    arn = harness.create_job(_input(harness))
    assert harness.wait(arn)["status"] == "Completed"
    with pytest.raises(harness.bedrock.exceptions.ValidationException) as caught:
        harness.bedrock.stop_model_invocation_job(jobIdentifier=arn)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "State was: Completed" in str(caught.value)


def test_stop_job_treats_an_ended_job_as_stopped_already(harness):
    """A run cancelled just as its job finishes records the job's end instead of raising."""
    from bedrock_assets import jobs

    arn = harness.create_job(_input(harness))
    assert harness.wait(arn)["status"] == "Completed"
    lines: list[str] = []
    assert jobs.stop_job(harness.bedrock, arn, log=lines.append)["status"] == "Completed"
    assert any("already ended" in line for line in lines)


def test_stop_a_scheduled_job(make_harness):
    harness = make_harness(queue_seconds=60)
    arn = harness.create_job(_input(harness))
    harness.wait(arn, {"Scheduled"})
    assert harness.bedrock.stop_model_invocation_job(jobIdentifier=arn)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert harness.wait(arn)["status"] == "Stopped"


def test_list_filters_sorting_and_pagination(harness):
    uri = _input(harness)
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    arns = [harness.create_job(uri, name=f"alpha-{index}") for index in range(5)]
    other = harness.create_job(uri, name="beta-0")
    for arn in arns + [other]:
        harness.wait(arn)
    harness.bedrock.get_model_invocation_job(jobIdentifier=other)

    ascending = harness.bedrock.list_model_invocation_jobs(nameContains="alpha", sortOrder="Ascending", sortBy="CreationTime")
    assert [job["jobArn"] for job in ascending["invocationJobSummaries"]] == arns
    descending = harness.bedrock.list_model_invocation_jobs(nameContains="alpha")["invocationJobSummaries"]
    assert [job["jobArn"] for job in descending] == arns[::-1]  # default order: newest first

    page = harness.bedrock.list_model_invocation_jobs(nameContains="alpha", maxResults=2, sortOrder="Ascending")
    assert len(page["invocationJobSummaries"]) == 2 and page["nextToken"]
    paginator = harness.bedrock.get_paginator("list_model_invocation_jobs")
    pages = list(paginator.paginate(nameContains="alpha", sortOrder="Ascending", PaginationConfig={"PageSize": 2}))
    assert [len(p["invocationJobSummaries"]) for p in pages] == [2, 2, 1]
    assert [job["jobArn"] for p in pages for job in p["invocationJobSummaries"]] == arns

    completed = harness.bedrock.list_model_invocation_jobs(statusEquals="Completed", maxResults=100)
    assert len(completed["invocationJobSummaries"]) == 6
    assert harness.bedrock.list_model_invocation_jobs(statusEquals="Failed")["invocationJobSummaries"] == []
    after = harness.bedrock.list_model_invocation_jobs(submitTimeAfter=before)["invocationJobSummaries"]
    assert len(after) == 6
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    assert harness.bedrock.list_model_invocation_jobs(submitTimeAfter=future)["invocationJobSummaries"] == []
    assert len(harness.bedrock.list_model_invocation_jobs(submitTimeBefore=future)["invocationJobSummaries"]) == 6
    summary = descending[0]
    for key in ("jobArn", "jobName", "modelId", "roleArn", "status", "submitTime", "inputDataConfig", "outputDataConfig"):
        assert key in summary


def test_list_rejects_a_bad_next_token(harness):
    with pytest.raises(harness.bedrock.exceptions.ValidationException):
        harness.bedrock.list_model_invocation_jobs(nextToken="garbage!!")


def test_quota_counts_jobs_per_model(make_harness):
    harness = make_harness(max_concurrent_jobs=2, queue_seconds=60)
    uri = _input(harness)
    first = harness.create_job(uri)
    harness.create_job(uri)
    with pytest.raises(harness.bedrock.exceptions.ServiceQuotaExceededException) as caught:
        harness.create_job(uri)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # Another model has its own quota; a profile id counts against its base model.
    embed_uri = harness.write_jsonl("in/embed.jsonl", harness.records(6, lambda i: {"inputText": f"t{i}"}))
    harness.create_job(embed_uri, model_id=TITAN_V2)
    with pytest.raises(harness.bedrock.exceptions.ServiceQuotaExceededException):
        harness.create_job(uri, model_id=f"us.{ANTHROPIC}")
    harness.bedrock.stop_model_invocation_job(jobIdentifier=first)
    harness.wait(first)
    harness.create_job(uri)
    stats = harness.emulator.model_stats(f"us.{ANTHROPIC}")
    assert stats == harness.emulator.stats()["models"][ANTHROPIC]
    assert harness.emulator.model_stats("amazon.nova-pro-v1:0")["jobs_created"] == 0
    assert stats["quota_rejections"] == 2
    assert stats["peak_in_flight"] == 2 and stats["in_flight"] == 2
    assert stats["jobs_created"] == 3


def test_moderate_throttling_is_absorbed_by_boto3_retries(make_harness):
    harness = make_harness(throttle_rate=0.3, seed=5)
    client = harness.client("bedrock", retries={"mode": "standard", "max_attempts": 10})
    uri = _input(harness)
    arns = [harness.create_job(uri, client=client) for _ in range(6)]
    assert len(set(arns)) == 6
    stats = harness.emulator.stats()["models"][ANTHROPIC]
    assert stats["create_throttled"] >= 1
    assert stats["jobs_created"] == 6  # retries reuse botocore's token: never a duplicate job


def test_full_throttling_surfaces_the_error(make_harness):
    harness = make_harness(throttle_rate=1.0)
    client = harness.client("bedrock", retries={"mode": "standard", "max_attempts": 2})
    with pytest.raises(client.exceptions.ThrottlingException) as caught:
        harness.create_job(_input(harness), client=client)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert harness.emulator.stats()["models"][ANTHROPIC]["create_throttled"] == 3  # 1 call + 2 retries


def test_error_body_and_request_id_headers(harness):
    request = urllib.request.Request(
        harness.emulator.endpoint_url + "/model-invocation-job/abcdefghijkl",
        headers={"Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/bedrock/aws4_request, "
                                  "SignedHeaders=host, Signature=abc"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request)
    error = caught.value
    assert error.code == 404
    assert error.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    assert error.headers["x-amzn-RequestId"]
    assert b'"message"' in error.read()


def test_other_bedrock_apis_fall_through_to_moto(harness):
    try:
        harness.bedrock.list_custom_models()
    except ClientError as exc:  # moto may not implement it; the point is that it is not ours
        assert exc.response["Error"]["Code"] != "ResourceNotFoundException"


def test_concurrent_creates_never_exceed_the_quota(make_harness):
    harness = make_harness(max_concurrent_jobs=4, queue_seconds=60)
    uri = _input(harness)
    from concurrent.futures import ThreadPoolExecutor

    def attempt(index: int) -> str:
        client = harness.client("bedrock", retries={"mode": "standard", "max_attempts": 0})
        try:
            return harness.create_job(uri, client=client, name=f"race-{index}")
        except client.exceptions.ServiceQuotaExceededException:
            return "quota"

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(attempt, range(12)))
    assert results.count("quota") == 8
    stats = harness.emulator.stats()["models"][ANTHROPIC]
    assert stats["peak_in_flight"] == 4 and stats["jobs_created"] == 4 and stats["quota_rejections"] == 8


@pytest.mark.parametrize(
    "overrides",
    [{"timeoutDurationInHours": 2}, {"modelInvocationType": "Streaming"},
     {"inputDataConfig": {"s3InputDataConfig": {"s3Uri": "s3://bucket-name/in.jsonl", "s3InputFormat": "CSV"}}},
     {"clientRequestToken": "bad token!"}],
    ids=["timeout-range", "invocation-type", "input-format", "token-pattern"],
)
def test_server_side_checks_behind_client_validation(harness, overrides):
    client = harness.client("bedrock", parameter_validation=False)
    request = dict(
        jobName="checked", roleArn=ROLE_ARN, modelId=ANTHROPIC,
        inputDataConfig={"s3InputDataConfig": {"s3Uri": f"s3://{harness.bucket}/in/input.jsonl"}},
        outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{harness.bucket}/out/"}},
    )
    request.update(overrides)
    with pytest.raises(client.exceptions.ValidationException):
        client.create_model_invocation_job(**request)
