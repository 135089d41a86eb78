"""Job options real AWS accounts often require: a KMS key for the job's output, a VPC, user tags.

They are set per batch (spec fields `output_kms_key_id`, `vpc_config`, `job_tags`) or per
deployment (`BedrockBatch` resource fields, else environment variables), validated strictly
before any spend, merged here into one typed `JobOptions` per shard and passed to
CreateModelInvocationJob (`jobs.create_job`).

Precedence (docs/bedrock-facts.md §8):
- `output_kms_key_id` and `vpc_config`: the batch's value, else the deployment's (a VPC config is
  taken whole, never merged field by field: subnets of one VPC with security groups of another
  would be refused by Bedrock);
- tags: the deployment's, then the batch's over them (the batch wins per key), then the project's
  own `bedrock-assets/partition` and `bedrock-assets/shard`, which are always present: the
  `bedrock-assets/` key prefix is reserved, so a user can never override or fake them.

None of these change an answer, so none enters the request digest, the job name or the
clientRequestToken (docs/ledger.md: an answer is identified by model, invocation type and request
body). A changed option therefore does not create new jobs for work already submitted: a retry
re-attaches to the job it finds by name, created with the old options (docs/bedrock-facts.md §8.3).

The limits are botocore's bedrock service model (CreateModelInvocationJob input shapes KmsKeyId,
VpcConfig, SubnetId, SecurityGroupId, TagList, TagKey, TagValue); tests/pipeline/test_pl_job_options.py
compares the constants below with the installed botocore, so a change upstream shows up as a
failing test rather than as a ValidationException in production.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import pydantic
from pydantic import AfterValidator, ConfigDict, Field

from bedrock_assets.storage import input_folder

# botocore `KmsKeyId` (1..2048): a key id, key ARN, alias name or alias ARN.
KMS_KEY_ID = re.compile(
    r"(arn:aws(-[^:]+)?:kms:[a-zA-Z0-9-]*:[0-9]{12}:((key/[a-zA-Z0-9-]{36})|(alias/[a-zA-Z0-9-_/]+)))"
    r"|([a-zA-Z0-9-]{36})|(alias/[a-zA-Z0-9-_/]+)"
)
KMS_KEY_ID_MAX = 2048
# botocore `SubnetId` / `SecurityGroupId`: up to 32 characters of `[-0-9a-zA-Z]+`.
RESOURCE_ID = re.compile(r"[-0-9a-zA-Z]+")
RESOURCE_ID_MAX = 32
MAX_SUBNETS = 16  # botocore `SubnetIds`: 1..16
MAX_SECURITY_GROUPS = 5  # botocore `SecurityGroupIds`: 1..5
# botocore `TagKey` (1..128) and `TagValue` (0..256). AWS's pattern is a Java regex, where `\s`
# is ASCII whitespace; re.ASCII gives Python the same meaning.
TAG_TEXT = re.compile(r"[a-zA-Z0-9\s._:/=+@-]*", re.ASCII)
TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
MAX_TAGS = 200  # botocore `TagList`: 0..200 per job
# `aws:` is reserved for AWS on every taggable resource ("Tagging AWS resources", AWS General
# Reference, docs/bedrock-facts.md §8): refused here, before any upload, not by Bedrock later.
AWS_PREFIX = "aws:"

# The project's own tags: which partition and shard a job belongs to (jobs and costs can be
# found from the console or Cost Explorer). Always set, never overridable.
PROJECT_PREFIX = "bedrock-assets/"
PARTITION_TAG = "bedrock-assets/partition"
SHARD_TAG = "bedrock-assets/shard"
PROJECT_TAGS = (PARTITION_TAG, SHARD_TAG)
MAX_USER_TAGS = MAX_TAGS - len(PROJECT_TAGS)


class JobOptionsError(ValueError):
    """A job option is malformed or the merged options break a Bedrock limit; the message names
    the spec file and batch, the resource field or the environment variable (one line each)."""


# --- checks shared by the spec model, the resource/env values and the merge --------------------


def kms_key_problem(value: str) -> str | None:
    if not 1 <= len(value) <= KMS_KEY_ID_MAX or not KMS_KEY_ID.fullmatch(value):
        return ("must be a KMS key id (36 characters), key ARN (arn:aws:kms:<region>:<account>:key/<id>), alias "
                "(alias/<name>) or alias ARN (Bedrock's KmsKeyId pattern)")
    return None


def id_list_problems(values: list[str], kind: str, most: int) -> list[str]:
    """Problems of a list of subnet or security group ids (Bedrock's VpcConfig limits)."""
    out = []
    if not 1 <= len(values) <= most:
        out.append(f"needs 1..{most} {kind} ids, got {len(values)}")
    for i, v in enumerate(values):
        if not RESOURCE_ID.fullmatch(v) or len(v) > RESOURCE_ID_MAX:
            out.append(f"{kind} id #{i + 1} {v!r} must be 1..{RESOURCE_ID_MAX} characters of letters, digits and "
                       f"'-' (e.g. {'subnet-0123456789abcdef0' if kind == 'subnet' else 'sg-0123456789abcdef0'})")
    dupes = sorted({v for v in values if values.count(v) > 1})
    if dupes:
        out.append(f"{kind} id(s) given twice: {dupes}")
    return out


def tag_problems(tags: dict[str, str], most: int = MAX_USER_TAGS) -> list[tuple[str, str, str | None]]:
    """(key, problem, the bad key or value) for every bad tag; ('', problem, None) for too many."""
    out: list[tuple[str, str, str | None]] = []
    if len(tags) > most:
        out.append(("", f"at most {most} tags (Bedrock takes {MAX_TAGS} per job, {len(PROJECT_TAGS)} are the "
                        f"project's own), got {len(tags)}", None))
    for key, value in tags.items():
        if not 1 <= len(key) <= TAG_KEY_MAX or not TAG_TEXT.fullmatch(key):
            out.append((key, f"a tag key must be 1..{TAG_KEY_MAX} characters of letters, digits, spaces and . _ : / = + @ -", key))
        elif key.lower().startswith(AWS_PREFIX):
            out.append((key, "tag keys starting with `aws:` are reserved for AWS", key))
        elif key.startswith(PROJECT_PREFIX):
            out.append((key, f"tag keys starting with `{PROJECT_PREFIX}` are reserved for the project's own tags "
                             f"({', '.join(PROJECT_TAGS)}), which are always set", key))
        if len(value) > TAG_VALUE_MAX or not TAG_TEXT.fullmatch(value):
            out.append((key, f"a tag value must be 0..{TAG_VALUE_MAX} characters of letters, digits, spaces and "
                             f". _ : / = + @ -", value))
    return out


def _kms(value: str) -> str:
    problem = kms_key_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _resource_id(kind: str):
    def check(value: str) -> str:
        if not RESOURCE_ID.fullmatch(value) or len(value) > RESOURCE_ID_MAX:
            raise ValueError(f"a {kind} id must be 1..{RESOURCE_ID_MAX} characters of letters, digits and '-'")
        return value

    return check


def _unique(values: list[str]) -> list[str]:
    dupes = sorted({v for v in values if values.count(v) > 1})
    if dupes:
        raise ValueError(f"ids given twice: {dupes}")
    return values


KmsKeyId = Annotated[str, AfterValidator(_kms)]
SubnetId = Annotated[str, AfterValidator(_resource_id("subnet"))]
SecurityGroupId = Annotated[str, AfterValidator(_resource_id("security group"))]


class VpcConfig(pydantic.BaseModel):
    """Bedrock's `vpcConfig`: the job's network interfaces go into these subnets with these
    security groups (https://docs.aws.amazon.com/bedrock/latest/userguide/batch-vpc.html)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    subnet_ids: Annotated[list[SubnetId], AfterValidator(_unique)] = Field(
        min_length=1, max_length=MAX_SUBNETS,
        description=f"1..{MAX_SUBNETS} subnet ids (`subnet-...`); AWS recommends one per Availability Zone.",
    )
    security_group_ids: Annotated[list[SecurityGroupId], AfterValidator(_unique)] = Field(
        min_length=1, max_length=MAX_SECURITY_GROUPS,
        description=f"1..{MAX_SECURITY_GROUPS} security group ids (`sg-...`) for the job's network interfaces.",
    )

    def to_api(self) -> dict[str, list[str]]:
        return {"subnetIds": list(self.subnet_ids), "securityGroupIds": list(self.security_group_ids)}


class JobOptions(pydantic.BaseModel):
    """The options of one CreateModelInvocationJob call, merged and checked (`for_shard`)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    output_kms_key_id: KmsKeyId | None = None
    vpc_config: VpcConfig | None = None
    tags: dict[str, str] = Field(default_factory=dict, max_length=MAX_TAGS)

    def apply(self, request: dict[str, Any]) -> dict[str, Any]:
        """`request` (a CreateModelInvocationJob request) with these options set."""
        out = dict(request)
        if self.output_kms_key_id is not None:
            s3 = {**out["outputDataConfig"]["s3OutputDataConfig"], "s3EncryptionKeyId": self.output_kms_key_id}
            out["outputDataConfig"] = {"s3OutputDataConfig": s3}
        if self.vpc_config is not None:
            out["vpcConfig"] = self.vpc_config.to_api()
        if self.tags:
            out["tags"] = [{"key": k, "value": v} for k, v in sorted(self.tags.items())]
        return out

    def summary(self) -> dict[str, Any]:
        """For the job record (no secrets here: key ids, network ids and tags are not credentials)."""
        return {
            "output_kms_key_id": self.output_kms_key_id,
            "vpc_config": self.vpc_config.model_dump() if self.vpc_config else None,
            "tags": dict(sorted(self.tags.items())),
        }

    def differences(self, job: dict[str, Any]) -> list[str]:
        """How an existing job (a Get response or List summary) differs in KMS key and VPC. Tags
        are not compared: reading them needs ListTagsForResource, which the runtime role lacks."""
        out = []
        kms = ((job.get("outputDataConfig") or {}).get("s3OutputDataConfig") or {}).get("s3EncryptionKeyId")
        if kms != self.output_kms_key_id:
            out.append(f"output KMS key {kms!r}, now {self.output_kms_key_id!r}")
        vpc = job.get("vpcConfig") or None
        want = self.vpc_config.to_api() if self.vpc_config else None
        if vpc != want:
            out.append(f"VPC {vpc}, now {want}")
        return out


class JobDefaults(pydantic.BaseModel):
    """The deployment's job options (BedrockBatch resource fields, else environment variables)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    output_kms_key_id: str | None = None
    vpc_config: VpcConfig | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    # Where each value came from (a resource field or `$ENV_VAR`), for the merge's messages.
    tags_source: str = ""


# --- deployment values: resource fields or environment variables -------------------------------


def parse_id_list(text: str) -> list[str]:
    """`subnet-a, subnet-b` -> ['subnet-a', 'subnet-b'] (ids cannot hold commas or spaces)."""
    return [part.strip() for part in text.split(",")]


def parse_tags(text: str) -> dict[str, str]:
    """A JSON object of string values: `{"team": "search", "cost-center": "42"}`. JSON rather than
    `k=v,k=v` because tag keys and values may themselves contain `=`, `:`, `/` and spaces."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise JobOptionsError(f"not valid JSON ({exc}); expected an object such as {{\"team\": \"search\"}}") from None
    if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
        raise JobOptionsError("expected a JSON object of string values such as {\"team\": \"search\"}")
    return doc


def resolve_defaults(
    *,
    kms: tuple[str | None, str],
    subnets: tuple[list[str] | str | None, str],
    security_groups: tuple[list[str] | str | None, str],
    tags: tuple[dict[str, str] | str | None, str],
) -> JobDefaults:
    """Each argument is (value, where it came from); a str value is an environment variable's
    text, still to be parsed. Every problem becomes a line naming its source."""
    problems: list[str] = []
    kms_value, kms_where = kms
    if kms_value is not None and (problem := kms_key_problem(kms_value)):
        problems.append(f"{kms_where}: {problem}, got {kms_value!r}")

    lists: dict[str, list[str] | None] = {}
    for name, (value, where), most in (("subnet", subnets, MAX_SUBNETS),
                                       ("security group", security_groups, MAX_SECURITY_GROUPS)):
        ids = parse_id_list(value) if isinstance(value, str) else value
        lists[name] = ids
        if ids is not None:
            problems += [f"{where}: {p}" for p in id_list_problems(list(ids), name, most)]
    vpc = None
    if (lists["subnet"] is None) != (lists["security group"] is None):
        have, missing = (subnets[1], security_groups[1]) if lists["subnet"] is not None else (security_groups[1], subnets[1])
        problems.append(f"{have} is set but {missing} is not: a VPC config needs both subnets and security groups")
    elif lists["subnet"] is not None and not problems:
        vpc = VpcConfig(subnet_ids=list(lists["subnet"]), security_group_ids=list(lists["security group"] or []))

    tag_value, tag_where = tags
    tag_map: dict[str, str] = {}
    if tag_value is not None:
        try:
            tag_map = parse_tags(tag_value) if isinstance(tag_value, str) else dict(tag_value)
        except JobOptionsError as exc:
            problems.append(f"{tag_where}: {exc}")
        for key, problem, bad in tag_problems(tag_map):
            got = f", got {bad!r}" if bad is not None else ""
            problems.append(f"{tag_where}: " + (f"tag {key!r}: " if key else "") + problem + got)
    if problems:
        raise JobOptionsError("\n".join(problems))
    return JobDefaults(output_kms_key_id=kms_value, vpc_config=vpc, tags=tag_map, tags_source=tag_where)


# --- the merge ----------------------------------------------------------------------------------


def for_shard(spec: Any, defaults: JobDefaults, partition: str, shard: str, origin: str = "") -> JobOptions:
    """The options of a shard's jobs: batch over deployment for KMS and VPC; tags merged, the
    batch winning per key, the project's two tags always set. `spec` is a BatchSpec."""
    spec_tags = dict(getattr(spec, "job_tags", None) or {})
    tags = {**defaults.tags, **spec_tags, PARTITION_TAG: partition_tag(partition), SHARD_TAG: shard}
    if len(tags) > MAX_TAGS:
        where = f"{origin + ': ' if origin else ''}batch {spec.name!r}"
        raise JobOptionsError(
            f"{where}: field `job_tags`: {len(spec_tags)} batch tags and {len(defaults.tags)} deployment tags "
            f"({defaults.tags_source or 'BedrockBatch job_tags'}) make {len(tags)} distinct tags with the project's "
            f"{len(PROJECT_TAGS)}, more than Bedrock's {MAX_TAGS} per job"
        )
    vpc = getattr(spec, "vpc_config", None)
    if isinstance(vpc, dict):  # a BatchSpec built in code may hold the plain mapping
        vpc = VpcConfig(**vpc)
    return JobOptions(
        output_kms_key_id=getattr(spec, "output_kms_key_id", None) or defaults.output_kms_key_id,
        vpc_config=vpc or defaults.vpc_config,
        tags=tags,
    )


def partition_tag(partition: str) -> str:
    """The `bedrock-assets/partition` tag's value: the partition key when Bedrock's tag pattern
    takes it, else `<batch>/<the input's S3 folder name>` (storage.input_folder: ASCII plus a hash),
    since input names may hold unicode, `#`, `?` or parentheses that a tag value may not."""
    if TAG_TEXT.fullmatch(partition) and len(partition) <= TAG_VALUE_MAX:
        return partition
    batch, _, name = partition.partition("/")
    return f"{batch}/{input_folder(name)}"[:TAG_VALUE_MAX]


def project_only(partition: str, shard: str) -> JobOptions:
    """No user options: only the project's tags (what every job carried before these options)."""
    return JobOptions(tags={PARTITION_TAG: partition_tag(partition), SHARD_TAG: shard})
