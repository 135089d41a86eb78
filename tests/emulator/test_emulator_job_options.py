"""Job options on CreateModelInvocationJob (docs/bedrock-facts.md §8): the emulator echoes the
output KMS key and the VPC config in Get and List as given, keeps tags readable with
ListTagsForResource, and refuses what the service model's patterns refuse (botocore checks sizes
but not patterns, so the server must)."""

from __future__ import annotations

import pytest

from emulator_helpers import ANTHROPIC, ROLE_ARN, anthropic_input

KEY_ARN = "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
VPC = {"subnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"], "securityGroupIds": ["sg-0123456789abcdef0"]}
TAGS = [{"key": "team", "value": "search"}, {"key": "cost center", "value": "42/a=b"}]


def _request(harness, **overrides):
    uri = harness.write_jsonl("in/input.jsonl", harness.records(6, lambda i: anthropic_input(f"q {i}")))
    request = dict(
        jobName="with-options", roleArn=ROLE_ARN, modelId=ANTHROPIC,
        inputDataConfig={"s3InputDataConfig": {"s3Uri": uri}},
        outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{harness.bucket}/out/", "s3EncryptionKeyId": KEY_ARN}},
        vpcConfig=VPC, tags=TAGS,
    )
    request.update(overrides)
    return request


def test_kms_key_vpc_and_tags_are_echoed(harness):
    arn = harness.bedrock.create_model_invocation_job(**_request(harness))["jobArn"]
    job = harness.bedrock.get_model_invocation_job(jobIdentifier=arn)
    assert job["outputDataConfig"]["s3OutputDataConfig"]["s3EncryptionKeyId"] == KEY_ARN
    assert job["vpcConfig"] == VPC
    (summary,) = harness.bedrock.list_model_invocation_jobs(nameContains="with-options")["invocationJobSummaries"]
    assert summary["vpcConfig"] == VPC
    assert summary["outputDataConfig"]["s3OutputDataConfig"]["s3EncryptionKeyId"] == KEY_ARN
    assert harness.bedrock.list_tags_for_resource(resourceARN=arn)["tags"] == TAGS
    assert harness.wait(arn)["status"] == "Completed"  # the options change nothing about the work


def test_a_job_without_options_has_none(harness):
    request = _request(harness, vpcConfig=None, tags=None)
    request["outputDataConfig"]["s3OutputDataConfig"].pop("s3EncryptionKeyId")
    arn = harness.bedrock.create_model_invocation_job(**{k: v for k, v in request.items() if v is not None})["jobArn"]
    job = harness.bedrock.get_model_invocation_job(jobIdentifier=arn)
    assert "vpcConfig" not in job and "s3EncryptionKeyId" not in job["outputDataConfig"]["s3OutputDataConfig"]
    assert harness.bedrock.list_tags_for_resource(resourceARN=arn)["tags"] == []


def test_tags_of_an_unknown_job_are_not_found(harness):
    with pytest.raises(harness.bedrock.exceptions.ResourceNotFoundException):
        harness.bedrock.list_tags_for_resource(resourceARN="arn:aws:bedrock:us-west-2:123456789012:model-invocation-job/abcdefabcdef")


@pytest.mark.parametrize(
    "overrides",
    [
        {"outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://bucket-name/out/", "s3EncryptionKeyId": "not a key"}}},
        {"vpcConfig": {"subnetIds": ["subnet_0"], "securityGroupIds": ["sg-1"]}},
        {"tags": [{"key": "bad*key", "value": "x"}]},
        {"tags": [{"key": "ok", "value": "café"}]},
    ],
    ids=["kms-pattern", "subnet-pattern", "tag-key-pattern", "tag-value-pattern"],
)
def test_patterns_botocore_does_not_check_are_checked(harness, overrides):
    with pytest.raises(harness.bedrock.exceptions.ValidationException):
        harness.bedrock.create_model_invocation_job(**_request(harness, **overrides))
    assert harness.emulator.stats()["totals"]["jobs_created"] == 0
