"""Job options real AWS accounts require (output KMS key, VPC, tags; docs/bedrock-facts.md §8):
Bedrock's limits as botocore models them, deployment values from the BedrockBatch resource or the
environment with messages naming the variable, the merge with a batch's own values, and an end
to end run on the emulator whose jobs are read back with unmodified boto3."""

from __future__ import annotations

import boto3
import botocore.session
import dagster as dg
import polars as pl
import pytest

from bedrock_assets import job_options
from bedrock_assets.job_options import JobOptionsError, VpcConfig
from bedrock_assets.resources import BedrockBatch
from bedrock_assets.runner import materialize_partition
from bedrock_assets.specs import parse_specs

from .helpers import check_outcomes, failed_steps, jobs_for_bucket, put_input

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ENV_KMS, ENV_SUBNETS, ENV_GROUPS, ENV_TAGS = (
    "BEDROCK_ASSETS_OUTPUT_KMS_KEY_ID", "BEDROCK_ASSETS_VPC_SUBNET_IDS", "BEDROCK_ASSETS_VPC_SECURITY_GROUP_IDS",
    "BEDROCK_ASSETS_JOB_TAGS",
)


def test_the_limits_are_botocores():
    """Drift guard: the constants in job_options.py are the service model's."""
    model = botocore.session.get_session().get_service_model("bedrock")
    shapes = {name: model.shape_for(name) for name in ("KmsKeyId", "SubnetIds", "SubnetId", "SecurityGroupIds",
                                                        "SecurityGroupId", "TagList", "TagKey", "TagValue")}
    meta = {name: shape.metadata for name, shape in shapes.items()}
    assert meta["KmsKeyId"]["pattern"] == job_options.KMS_KEY_ID.pattern
    assert meta["KmsKeyId"]["max"] == job_options.KMS_KEY_ID_MAX
    assert (meta["SubnetIds"]["min"], meta["SubnetIds"]["max"]) == (1, job_options.MAX_SUBNETS)
    assert (meta["SecurityGroupIds"]["min"], meta["SecurityGroupIds"]["max"]) == (1, job_options.MAX_SECURITY_GROUPS)
    for name in ("SubnetId", "SecurityGroupId"):
        assert meta[name]["pattern"] == job_options.RESOURCE_ID.pattern and meta[name]["max"] == job_options.RESOURCE_ID_MAX
    assert meta["TagList"]["max"] == job_options.MAX_TAGS
    assert meta["TagKey"]["pattern"] == meta["TagValue"]["pattern"] == job_options.TAG_TEXT.pattern
    assert (meta["TagKey"]["max"], meta["TagValue"]["max"]) == (job_options.TAG_KEY_MAX, job_options.TAG_VALUE_MAX)
    request = model.operation_model("CreateModelInvocationJob").input_shape
    assert {"vpcConfig", "tags"} <= set(request.members)
    s3_out = model.shape_for("ModelInvocationJobS3OutputDataConfig")
    assert s3_out.members["s3EncryptionKeyId"].name == "KmsKeyId"


def test_deployment_values_come_from_the_environment(monkeypatch):
    monkeypatch.setenv(ENV_KMS, "alias/bedrock-outputs")
    monkeypatch.setenv(ENV_SUBNETS, "subnet-a, subnet-b")
    monkeypatch.setenv(ENV_GROUPS, "sg-1")
    monkeypatch.setenv(ENV_TAGS, '{"team": "search", "cost center": "a=b:c"}')
    defaults = BedrockBatch().job_defaults()
    assert defaults.output_kms_key_id == "alias/bedrock-outputs"
    assert defaults.vpc_config == VpcConfig(subnet_ids=["subnet-a", "subnet-b"], security_group_ids=["sg-1"])
    assert defaults.tags == {"team": "search", "cost center": "a=b:c"}
    # A resource field wins over its variable.
    mine = BedrockBatch(output_kms_key_id=KEY_ARN, vpc_subnet_ids=["subnet-z"], job_tags={"team": "ads"}).job_defaults()
    assert (mine.output_kms_key_id, mine.vpc_config.subnet_ids, mine.tags) == (KEY_ARN, ["subnet-z"], {"team": "ads"})
    for name in (ENV_KMS, ENV_SUBNETS, ENV_GROUPS, ENV_TAGS):
        monkeypatch.delenv(name)
    assert BedrockBatch().job_defaults() == job_options.JobDefaults(tags_source=f"${ENV_TAGS}")


@pytest.mark.parametrize(
    "env, fragments",
    [
        ({ENV_KMS: "my key"}, [f"${ENV_KMS}: must be a KMS key id", "'my key'"]),
        ({ENV_SUBNETS: "subnet-a,,subnet-b", ENV_GROUPS: "sg-1"}, [f"${ENV_SUBNETS}: subnet id #2 ''"]),
        ({ENV_SUBNETS: "subnet-a", ENV_GROUPS: "sg-1,sg-2,sg-3,sg-4,sg-5,sg-6"}, [f"${ENV_GROUPS}: needs 1..5 security group ids, got 6"]),
        ({ENV_SUBNETS: "subnet-a"}, [f"${ENV_SUBNETS} is set but ${ENV_GROUPS} is not"]),
        ({ENV_TAGS: "team=search"}, [f"${ENV_TAGS}: not valid JSON"]),
        ({ENV_TAGS: '{"aws:team": "x", "ok": "v,w"}'}, [f"${ENV_TAGS}: tag 'aws:team': tag keys starting with `aws:`",
                                                       f"${ENV_TAGS}: tag 'ok': a tag value must be"]),
        ({ENV_TAGS: '{"n": 1}'}, [f"${ENV_TAGS}: expected a JSON object of string values"]),
    ],
    ids=["kms", "empty-subnet", "six-groups", "subnets-only", "not-json", "reserved-key-and-bad-value", "number-value"],
)
def test_a_bad_deployment_value_names_the_variable(monkeypatch, env, fragments):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(JobOptionsError) as err:
        BedrockBatch().job_defaults()
    assert all(f in str(err.value) for f in fragments), str(err.value)


def test_a_bad_resource_field_names_the_field():
    with pytest.raises(JobOptionsError, match=r"BedrockBatch resource config `job_tags`: tag 'bedrock-assets/shard'"):
        BedrockBatch(job_tags={"bedrock-assets/shard": "x"}).job_defaults()


def test_batch_wins_over_deployment_and_the_project_tags_always_win():
    spec = parse_specs(
        f"batches:\n  jokes:\n    model_id: {HAIKU}\n    prompt: 'x {{t}}'\n    output_kms_key_id: {KEY_ARN}\n"
        "    vpc_config: {subnet_ids: [subnet-b1], security_group_ids: [sg-b1]}\n"
        "    job_tags: {team: batch-team, batch-only: '1'}\n", origin="b.yaml")["jokes"]
    defaults = job_options.resolve_defaults(
        kms=("alias/deploy", "$K"), subnets=("subnet-d1,subnet-d2", "$S"), security_groups=("sg-d1", "$G"),
        tags=('{"team": "deploy-team", "env": "prod"}', "$T"))
    options = job_options.for_shard(spec, defaults, "jokes/topics.csv", "shard-00000.jsonl")
    assert options.output_kms_key_id == KEY_ARN
    assert options.vpc_config == VpcConfig(subnet_ids=["subnet-b1"], security_group_ids=["sg-b1"])  # whole, not merged
    assert options.tags == {"env": "prod", "team": "batch-team", "batch-only": "1",
                            "bedrock-assets/partition": "jokes/topics.csv", "bedrock-assets/shard": "shard-00000.jsonl"}
    bare = parse_specs(f"batches:\n  jokes:\n    model_id: {HAIKU}\n    prompt: 'x {{t}}'\n", origin="b.yaml")["jokes"]
    inherited = job_options.for_shard(bare, defaults, "jokes/a.csv", "shard-00001.jsonl")
    assert inherited.output_kms_key_id == "alias/deploy" and inherited.vpc_config == defaults.vpc_config
    # A job created with other options is reported on re-attach, not replaced.
    job = {"outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://b/o/"}}}
    assert len(inherited.differences(job)) == 2 and job_options.project_only("p/a", "s").differences(job) == []


def test_batch_and_deployment_tags_together_stay_within_200():
    many = {f"b{i}": "v" for i in range(150)}
    spec = parse_specs(f"batches:\n  jokes:\n    model_id: {HAIKU}\n    prompt: 'x {{t}}'\n    job_tags: {many}\n",
                       origin="team/batches.yaml")["jokes"]
    defaults = job_options.resolve_defaults(kms=(None, ""), subnets=(None, ""), security_groups=(None, ""),
                                            tags=({f"d{i}": "v" for i in range(60)}, "$BEDROCK_ASSETS_JOB_TAGS"))
    with pytest.raises(JobOptionsError, match=r"team/batches.yaml: batch 'jokes': field `job_tags`: 150 batch tags and 60 "
                                              r"deployment tags \(\$BEDROCK_ASSETS_JOB_TAGS\) make 212"):
        job_options.for_shard(spec, defaults, "jokes/a.csv", "shard-00000.jsonl", origin="team/batches.yaml")


# --- end to end on the emulator ------------------------------------------------------------------

SPECS = f"""
batches:
  jokes:
    model_id: {HAIKU}
    prompt: "Tell me a joke about {{topic}}."
    params: {{max_tokens: 50}}
    output_kms_key_id: {KEY_ARN}
    vpc_config: {{subnet_ids: [subnet-batch1, subnet-batch2], security_group_ids: [sg-batch]}}
    job_tags: {{team: jokes-team, project: humor}}
  plain:
    model_id: {HAIKU}
    prompt: "Say something about {{topic}}."
    params: {{max_tokens: 50}}
"""


def _topics(n: int) -> pl.DataFrame:
    return pl.DataFrame({"topic": [f"topic {i}" for i in range(n)]})


def test_jobs_carry_exactly_the_merged_options(aws_env, write_specs, instance, monkeypatch):
    write_specs(SPECS)
    monkeypatch.setenv(ENV_KMS, "alias/deployment-outputs")
    monkeypatch.setenv(ENV_SUBNETS, "subnet-deploy")
    monkeypatch.setenv(ENV_GROUPS, "sg-deploy1,sg-deploy2")
    monkeypatch.setenv(ENV_TAGS, '{"team": "platform", "env": "prod"}')
    keys = [put_input(aws_env, "jokes", "topics.csv", _topics(120)), put_input(aws_env, "plain", "topics.csv", _topics(110))]
    for key in keys:
        run = materialize_partition(instance, key, in_process=True)
        assert run.status == dg.DagsterRunStatus.SUCCESS, failed_steps(instance, run.run_id)
        assert all(check_outcomes(instance, run.run_id).values())

    bedrock = boto3.client("bedrock", region_name="us-east-1")  # unmodified boto3 against the emulator
    seen = {}
    for summary in jobs_for_bucket(aws_env):
        job = bedrock.get_model_invocation_job(jobIdentifier=summary["jobArn"])
        tags = {t["key"]: t["value"] for t in bedrock.list_tags_for_resource(resourceARN=job["jobArn"])["tags"]}
        seen[tags["bedrock-assets/partition"]] = (
            job["outputDataConfig"]["s3OutputDataConfig"].get("s3EncryptionKeyId"), job.get("vpcConfig"), tags)
    assert seen == {
        "jokes/topics.csv": (
            KEY_ARN,  # the batch's key and VPC win over the deployment's
            {"subnetIds": ["subnet-batch1", "subnet-batch2"], "securityGroupIds": ["sg-batch"]},
            {"team": "jokes-team", "env": "prod", "project": "humor",  # merged, the batch wins per key
             "bedrock-assets/partition": "jokes/topics.csv", "bedrock-assets/shard": "shard-00000.jsonl"},
        ),
        "plain/topics.csv": (
            "alias/deployment-outputs",  # nothing in the batch: the deployment's values
            {"subnetIds": ["subnet-deploy"], "securityGroupIds": ["sg-deploy1", "sg-deploy2"]},
            {"team": "platform", "env": "prod",
             "bedrock-assets/partition": "plain/topics.csv", "bedrock-assets/shard": "shard-00000.jsonl"},
        ),
    }


def test_a_bad_deployment_value_fails_the_run_before_any_upload_or_job(aws_env, write_specs, instance, monkeypatch):
    write_specs(SPECS)
    monkeypatch.setenv(ENV_TAGS, '{"aws:created-by": "me"}')
    key = put_input(aws_env, "plain", "topics.csv", _topics(110))
    run = materialize_partition(instance, key, in_process=True)
    assert run.status == dg.DagsterRunStatus.FAILURE
    message = "\n".join(failed_steps(instance, run.run_id).values())
    assert f"${ENV_TAGS}: tag 'aws:created-by': tag keys starting with `aws:` are reserved" in message, message
    assert jobs_for_bucket(aws_env) == []
    assert aws_env.s3.list_objects_v2(Bucket=aws_env.bucket, Prefix="shards/").get("KeyCount", 0) == 0
