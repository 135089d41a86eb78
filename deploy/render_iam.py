#!/usr/bin/env python3
"""Render the IAM policy templates in deploy/iam/ into concrete JSON for one deployment.

    python deploy/render_iam.py --account-id 123456789012 --region us-east-1 \
        --bucket my-bedrock-assets --models-from-specs bedrock_assets/batches.yaml \
        --logs-bucket my-dagster-logs --logs-prefix compute-logs --out-dir build/iam

Templates use ``${NAME}`` placeholders (scalars, substituted inside strings) plus one list
placeholder, ``"${MODEL_ARNS}"``, which must be a whole list element and expands to every ARN
the configured models need (foundation models and inference profiles).  The rendered documents
are linted (``lint_policy``) before anything is written: the renderer refuses to emit a policy
that grants a wildcard action, a ``*`` resource outside the one documented exception, or S3
access outside the configured bucket prefixes.  The same lint runs in tests/deploy.

Job options (docs/bedrock-facts.md §8) add statements from ``iam/optional/statements.json``
only when configured: ``--output-kms-key-arn`` (repeatable) gives the service role
kms:GenerateDataKey + kms:Decrypt and the runtime role kms:Decrypt on those keys, via S3 only;
``--vpc-subnet-id`` / ``--vpc-security-group-id`` (repeatable, together) give the service role
the EC2 network-interface permissions Bedrock's batch-in-a-VPC guide lists, scoped to those
subnets and security groups.  Without them no kms: or ec2: statement is rendered.

Standard library only (plus PyYAML for --models-from-specs), so it runs in any CI image.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IAM_DIR = Path(__file__).resolve().parent / "iam"

# The S3 layout of docs/ARCHITECTURE.md.  Nothing else in the bucket is touched.
PROJECT_PREFIXES = ("inputs", "records", "shards", "outputs", "jobs", "answers", "results")
# Prefixes the runtime writes.  inputs/ belongs to the users who drop files, outputs/ to Bedrock.
RUNTIME_WRITE_PREFIXES = ("records", "shards", "jobs", "answers", "results")

TEMPLATES = {
    "bedrock-batch-service-role-trust.json": "trust",
    "bedrock-batch-service-role-policy.json": "service",
    "dagster-runtime-role-policy.json": "runtime",
    "dagster-runtime-role-trust-ecs.json": "trust",
}

OPTIONAL_STATEMENTS = IAM_DIR / "optional" / "statements.json"

# Actions that have no resource-level permissions, so "Resource": "*" is the only valid form, by
# the Sid allowed to hold them.  Sources: AWS Service Authorization Reference, Amazon Bedrock
# ListModelInvocationJobs row (access level List, no resource types), as mirrored in
# iann0036/iam-dataset aws/iam_definition.json (checked 2026-11-24); Amazon EC2 Describe* rows
# (no resource types), and Bedrock's batch-in-a-VPC policy, which grants exactly these five on "*"
# (https://docs.aws.amazon.com/bedrock/latest/userguide/batch-vpc.html).  Keep this minimal.
STAR_RESOURCE_BY_SID = {
    "ListBatchJobsNoResourceLevelPermissions": {"bedrock:ListModelInvocationJobs"},
    "DescribeVpcResourcesNoResourceLevelPermissions": {
        "ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs", "ec2:DescribeDhcpOptions", "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups",
    },
}
# "*" narrowed by conditions, exactly as Bedrock's batch-in-a-VPC policy does (same source): the
# lint checks the conditions (configured subnets, ENIs tagged with a batch job ARN).
CONDITIONED_STAR_BY_SID = {
    "ManageBedrockEnisInConfiguredSubnetsOnly": {
        "ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface", "ec2:DeleteNetworkInterfacePermission",
    },
}
STAR_RESOURCE_ACTIONS = set().union(*STAR_RESOURCE_BY_SID.values(), *CONDITIONED_STAR_BY_SID.values())
STAR_RESOURCE_SIDS = set(STAR_RESOURCE_BY_SID) | set(CONDITIONED_STAR_BY_SID)
# The tags Bedrock puts on the network interfaces it creates for a batch job (batch-vpc.html).
BEDROCK_ENI_TAG_KEYS = ["BedrockManaged", "BedrockModelInvocationJobArn"]

_PLACEHOLDER = re.compile(r"\$\{([A-Z_]+)\}")
_LIST_PLACEHOLDERS = {"MODEL_ARNS", "KMS_KEY_ARNS", "VPC_SUBNET_ARNS", "VPC_SECURITY_GROUP_ARNS"}
# Cross-region inference profile ids start with a geography: us.anthropic..., eu.amazon..., ...
_PROFILE_ID = re.compile(r"^(us|us-gov|eu|apac|ca|jp|au|global)\.(.+)$")
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_ROLE_NAME = re.compile(r"^[A-Za-z0-9+=,.@_-]{1,64}$")
_S3_PREFIX = re.compile(r"^[A-Za-z0-9!_.'()/-]+$")
# A KMS key ARN (not an alias: an alias ARN in a policy's Resource controls the alias only, not
# the key's use; https://docs.aws.amazon.com/kms/latest/developerguide/cmks-in-iam-policies.html).
_KMS_KEY_ARN = re.compile(r"^arn:(aws|aws-cn|aws-us-gov):kms:[a-z]{2}(-gov)?-[a-z]+-\d:\d{12}:key/[a-zA-Z0-9-]{36}$")
# botocore's SubnetId / SecurityGroupId pattern (docs/bedrock-facts.md §8).
_VPC_ID = re.compile(r"^[-0-9a-zA-Z]{1,32}$")


@dataclass(frozen=True)
class IamConfig:
    account_id: str
    region: str
    bucket: str
    model_ids: tuple[str, ...]
    service_role_name: str = "bedrock-assets-batch-service"
    logs_bucket: str = ""  # default: the data bucket
    logs_prefix: str = "dagster-compute-logs"
    partition: str = "aws"
    # Regions a cross-region inference profile may route to; each needs the foundation-model ARN.
    # Default: only `region` (fails closed: other regions answer AccessDenied).
    profile_regions: tuple[str, ...] = field(default_factory=tuple)
    # Job options (docs/bedrock-facts.md §8): every output KMS key and every VPC subnet / security
    # group any batch or the deployment uses.  Empty: no kms: / ec2: statements at all.
    output_kms_key_arns: tuple[str, ...] = field(default_factory=tuple)
    vpc_subnet_ids: tuple[str, ...] = field(default_factory=tuple)
    vpc_security_group_ids: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        problems = []
        if not re.fullmatch(r"\d{12}", self.account_id):
            problems.append(f"account_id must be 12 digits, got {self.account_id!r}")
        for r in (self.region, *self.profile_regions):
            if not _REGION.match(r):
                problems.append(f"not an AWS region: {r!r}")
        for b in (self.bucket, self.logs_bucket or self.bucket):
            if not _BUCKET.match(b):
                problems.append(f"not a valid S3 bucket name: {b!r}")
        if not self.model_ids:
            problems.append("at least one model id is required (least privilege: no model wildcard)")
        for m in self.model_ids:
            if not _MODEL_ID.match(m) and not m.startswith("arn:"):
                problems.append(f"model id {m!r} is not a model/profile id or ARN (wildcards are refused)")
            if "*" in m or "?" in m:
                problems.append(f"model id {m!r} contains a wildcard")
        if not _ROLE_NAME.match(self.service_role_name):
            problems.append(f"not an IAM role name: {self.service_role_name!r}")
        lp = self.logs_prefix.strip("/")
        if not lp or not _S3_PREFIX.match(lp) or "*" in lp:
            problems.append(f"logs_prefix must be a non-empty S3 prefix without wildcards: {self.logs_prefix!r}")
        elif (self.logs_bucket or self.bucket) == self.bucket and lp.split("/")[0] in PROJECT_PREFIXES:
            problems.append("compute logs must not share a project prefix of the data bucket")
        if self.partition not in {"aws", "aws-cn", "aws-us-gov"}:
            problems.append(f"unknown partition {self.partition!r}")
        for key in self.output_kms_key_arns:
            if not _KMS_KEY_ARN.match(key) or not key.startswith(f"arn:{self.partition}:"):
                problems.append(f"output KMS key {key!r} must be a key ARN (arn:{self.partition}:kms:<region>:<account>:"
                                "key/<key id>); an alias cannot grant use of a key in IAM")
        if bool(self.vpc_subnet_ids) != bool(self.vpc_security_group_ids):
            problems.append("a VPC needs both --vpc-subnet-id and --vpc-security-group-id")
        for kind, ids in (("subnet", self.vpc_subnet_ids), ("security group", self.vpc_security_group_ids)):
            for i in ids:
                if not _VPC_ID.match(i):
                    problems.append(f"not a {kind} id: {i!r} (letters, digits and '-', wildcards are refused)")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def effective_logs_bucket(self) -> str:
        return self.logs_bucket or self.bucket

    @property
    def effective_logs_prefix(self) -> str:
        return self.logs_prefix.strip("/")

    @property
    def service_role_arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}:role/{self.service_role_name}"

    def vpc_arns(self, kind: str) -> list[str]:
        ids = self.vpc_subnet_ids if kind == "subnet" else self.vpc_security_group_ids
        return [f"arn:{self.partition}:ec2:{self.region}:{self.account_id}:{kind}/{i}" for i in ids]

    @property
    def job_arns(self) -> str:
        return f"arn:{self.partition}:bedrock:{self.region}:{self.account_id}:model-invocation-job/*"

    def scalars(self) -> dict[str, str]:
        return {
            "PARTITION": self.partition,
            "ACCOUNT_ID": self.account_id,
            "REGION": self.region,
            "BUCKET": self.bucket,
            "SERVICE_ROLE_NAME": self.service_role_name,
            "LOGS_BUCKET": self.effective_logs_bucket,
            "LOGS_PREFIX": self.effective_logs_prefix,
        }


def model_arns(cfg: IamConfig) -> list[str]:
    """Every resource ARN that invoking / batch-submitting the configured models needs.

    - base model id  -> foundation-model ARN in the deployment region (foundation models have
      no account in their ARN);
    - inference profile id (``us.anthropic...``) -> the profile ARN (account-scoped) plus the
      foundation model in each region the profile may route to (IAM checks both);
    - a full ARN is passed through unchanged.
    """
    arns: list[str] = []
    p = cfg.partition
    for model in cfg.model_ids:
        if model.startswith("arn:"):
            arns.append(model)
            continue
        profile = _PROFILE_ID.match(model)
        if profile:
            base = profile.group(2)
            arns.append(f"arn:{p}:bedrock:{cfg.region}:{cfg.account_id}:inference-profile/{model}")
            for r in cfg.profile_regions or (cfg.region,):
                arns.append(f"arn:{p}:bedrock:{r}::foundation-model/{base}")
        else:
            arns.append(f"arn:{p}:bedrock:{cfg.region}::foundation-model/{model}")
    return sorted(set(arns))


def _render(node: Any, scalars: dict[str, str], lists: dict[str, list[str]]) -> Any:
    if isinstance(node, dict):
        return {k: _render(v, scalars, lists) for k, v in node.items()}
    if isinstance(node, list):
        out: list[Any] = []
        for item in node:
            m = _PLACEHOLDER.fullmatch(item) if isinstance(item, str) else None
            if m and m.group(1) in lists:
                out.extend(lists[m.group(1)])
            else:
                out.append(_render(item, scalars, lists))
        return out
    if isinstance(node, str):
        def sub(m: re.Match) -> str:
            name = m.group(1)
            if name in _LIST_PLACEHOLDERS:
                raise ValueError(f"${{{name}}} must be a whole list element, found inside {node!r}")
            if name not in scalars:
                raise ValueError(f"unknown placeholder ${{{name}}} in {node!r}")
            return scalars[name]

        return _PLACEHOLDER.sub(sub, node)
    return node


def load_template(name: str) -> dict:
    return json.loads((IAM_DIR / name).read_text())


def with_optional_statements(cfg: IamConfig) -> dict[str, dict]:
    """Every template, with the optional statements the configured job options need appended."""
    optional = json.loads(OPTIONAL_STATEMENTS.read_text())
    docs = {}
    for name in TEMPLATES:
        doc = load_template(name)
        extra = optional.get(name, {})
        if cfg.output_kms_key_arns:
            doc["Statement"] += extra.get("kms", [])
        if cfg.vpc_subnet_ids:
            doc["Statement"] += extra.get("vpc", [])
        docs[name] = doc
    return docs


def render_all(cfg: IamConfig) -> dict[str, dict]:
    """Render every template; raises ValueError if any rendered document fails the lint."""
    lists = {
        "MODEL_ARNS": model_arns(cfg),
        "KMS_KEY_ARNS": sorted(set(cfg.output_kms_key_arns)),
        "VPC_SUBNET_ARNS": cfg.vpc_arns("subnet"),
        "VPC_SECURITY_GROUP_ARNS": cfg.vpc_arns("security-group"),
    }
    rendered = {name: _render(doc, cfg.scalars(), lists) for name, doc in with_optional_statements(cfg).items()}
    problems = [f"{name}: {p}" for name, doc in rendered.items() for p in lint_policy(doc, cfg, TEMPLATES[name])]
    if problems:
        raise ValueError("rendered IAM documents fail the least-privilege lint:\n  " + "\n  ".join(problems))
    return rendered


# ----------------------------------------------------------------------------------------------
# Lint: the least-privilege rules, in one place, applied to rendered (concrete) documents.


def _as_list(v: Any) -> list:
    return v if isinstance(v, list) else [v]


def _allowed_s3_object_arns(cfg: IamConfig, kind: str) -> set[str]:
    p, b = cfg.partition, cfg.bucket
    if kind == "service":
        return {f"arn:{p}:s3:::{b}/shards/*", f"arn:{p}:s3:::{b}/outputs/*"}
    arns = {f"arn:{p}:s3:::{b}/{prefix}/*" for prefix in PROJECT_PREFIXES}
    arns.add(f"arn:{p}:s3:::{cfg.effective_logs_bucket}/{cfg.effective_logs_prefix}/*")
    return arns


def _allowed_list_prefixes(cfg: IamConfig, kind: str, bucket: str) -> set[str]:
    if kind == "service":
        return {"shards/*", "outputs/*"} if bucket == cfg.bucket else set()
    allowed: set[str] = set()
    if bucket == cfg.bucket:
        allowed |= {f"{prefix}/*" for prefix in PROJECT_PREFIXES}
    if bucket == cfg.effective_logs_bucket:
        allowed.add(f"{cfg.effective_logs_prefix}/*")
    return allowed


def lint_policy(doc: Any, cfg: IamConfig, kind: str) -> list[str]:
    """Problems with one rendered document (empty list = OK).

    kind: "trust" (role trust policy), "service" (Bedrock batch service role permissions) or
    "runtime" (Dagster runtime role permissions).
    """
    problems: list[str] = []
    if not isinstance(doc, dict):
        return ["document is not a JSON object"]
    if doc.get("Version") != "2012-10-17":
        problems.append(f"Version must be 2012-10-17, got {doc.get('Version')!r}")
    statements = doc.get("Statement")
    if not isinstance(statements, list) or not statements:
        return problems + ["Statement must be a non-empty list"]
    leftover = _PLACEHOLDER.findall(json.dumps(doc))
    if leftover:
        problems.append(f"unrendered placeholders: {sorted(set(leftover))}")
    sids = [s.get("Sid") for s in statements if isinstance(s, dict)]
    if len(set(sids)) != len(sids):
        problems.append("duplicate Sid")

    for i, st in enumerate(statements):
        where = f"statement {i} ({st.get('Sid', 'no Sid') if isinstance(st, dict) else '?'})"
        if not isinstance(st, dict):
            problems.append(f"{where}: not an object")
            continue
        if not st.get("Sid"):
            problems.append(f"{where}: every statement needs a Sid (it documents why)")
        if st.get("Effect") != "Allow":
            problems.append(f"{where}: Effect must be Allow")
        if "NotAction" in st or "NotResource" in st or "NotPrincipal" in st:
            problems.append(f"{where}: Not* elements are not allowed")
        if "Action" not in st:
            problems.append(f"{where}: missing Action")
            continue
        actions = _as_list(st["Action"])
        for a in actions:
            if not isinstance(a, str) or "*" in a or "?" in a or ":" not in a:
                problems.append(f"{where}: wildcard or malformed action {a!r}")

        if kind == "trust":
            problems += _lint_trust(st, cfg, where)
            continue

        if "Principal" in st:
            problems.append(f"{where}: identity policies carry no Principal")
        if "Resource" not in st:
            problems.append(f"{where}: missing Resource")
            continue
        resources = _as_list(st["Resource"])
        if not resources:
            problems.append(f"{where}: empty Resource")
        cond = st.get("Condition", {})
        if "*" in resources:
            sid = st.get("Sid")
            allowed_star = STAR_RESOURCE_BY_SID.get(sid) or CONDITIONED_STAR_BY_SID.get(sid) or set()
            if not allowed_star or not set(actions) <= allowed_star:
                problems.append(
                    f"{where}: Resource '*' is only allowed for {sorted(STAR_RESOURCE_ACTIONS)} "
                    f"under Sid {sorted(STAR_RESOURCE_SIDS)}"
                )
            if resources != ["*"]:
                problems.append(f"{where}: '*' must not be mixed with other resources")
            if sid not in CONDITIONED_STAR_BY_SID:
                if any(a.startswith("ec2:") for a in actions):
                    problems += _lint_job_option_statement(actions, resources, cond, cfg, kind, where)
                continue
        for r in resources:
            if not isinstance(r, str) or ("*" in r and r != "*" and not r.endswith("/*")):
                problems.append(f"{where}: wildcard in the middle of resource {r!r}")
        if any(a.split(":", 1)[0] in ("kms", "ec2") for a in actions):
            problems += _lint_job_option_statement(actions, resources, cond, cfg, kind, where)
            continue

        for a in actions:
            service = a.split(":", 1)[0]
            if service == "s3":
                problems += _lint_s3(a, resources, cond, cfg, kind, where)
            elif service == "bedrock":
                problems += _lint_bedrock(a, resources, cfg, kind, where)
            elif a == "iam:PassRole":
                if kind != "runtime":
                    problems.append(f"{where}: only the runtime role may pass roles")
                if resources != [cfg.service_role_arn]:
                    problems.append(f"{where}: iam:PassRole must name only {cfg.service_role_arn}")
                if cond.get("StringEquals", {}).get("iam:PassedToService") != "bedrock.amazonaws.com":
                    problems.append(f"{where}: iam:PassRole needs iam:PassedToService = bedrock.amazonaws.com")
            else:
                problems.append(f"{where}: unexpected action {a!r}")
    return problems


def _lint_trust(st: dict, cfg: IamConfig, where: str) -> list[str]:
    problems = []
    if _as_list(st["Action"]) != ["sts:AssumeRole"]:
        problems.append(f"{where}: a trust statement may only allow sts:AssumeRole")
    principal = st.get("Principal", {})
    services = _as_list(principal.get("Service", [])) if isinstance(principal, dict) else []
    if len(services) != 1 or set(principal) != {"Service"}:
        problems.append(f"{where}: trust exactly one AWS service principal")
        return problems
    cond = st.get("Condition", {})
    if cond.get("StringEquals", {}).get("aws:SourceAccount") != cfg.account_id:
        problems.append(f"{where}: aws:SourceAccount must equal {cfg.account_id}")
    source_arn = cond.get("ArnLike", {}).get("aws:SourceArn") or cond.get("ArnEquals", {}).get("aws:SourceArn")
    expected = {
        "bedrock.amazonaws.com": f"arn:{cfg.partition}:bedrock:{cfg.region}:{cfg.account_id}:model-invocation-job/*",
        "ecs-tasks.amazonaws.com": f"arn:{cfg.partition}:ecs:{cfg.region}:{cfg.account_id}:*",
    }.get(services[0])
    if expected is None:
        problems.append(f"{where}: unexpected service principal {services[0]!r}")
    elif source_arn != expected:
        problems.append(f"{where}: aws:SourceArn must be {expected!r}, got {source_arn!r}")
    return problems


def _lint_job_option_statement(actions: list, resources: list, cond: dict, cfg: IamConfig, kind: str, where: str) -> list[str]:
    """kms: and ec2: statements exist only for configured job options, on the service role (and
    kms:Decrypt on the runtime role), scoped to the configured keys, subnets and groups."""
    problems = []
    services = {a.split(":", 1)[0] for a in actions}
    if len(services) != 1:
        return [f"{where}: kms: and ec2: actions must not share a statement with other services"]
    if services == {"kms"}:
        allowed = {"service": {"kms:GenerateDataKey", "kms:Decrypt"}, "runtime": {"kms:Decrypt"}}.get(kind, set())
        if not cfg.output_kms_key_arns:
            return [f"{where}: KMS permissions without a configured output KMS key"]
        problems += [f"{where}: unexpected KMS action {a!r} for the {kind} role" for a in actions if a not in allowed]
        keys = set(cfg.output_kms_key_arns)
        problems += [f"{where}: KMS access to {r!r}, not a configured output key" for r in resources if r not in keys]
        if cond.get("StringEquals", {}).get("kms:ViaService") != f"s3.{cfg.region}.amazonaws.com":
            problems.append(f"{where}: KMS use must be limited to S3 (kms:ViaService = s3.{cfg.region}.amazonaws.com)")
        return problems
    # ec2: Bedrock's batch-in-a-VPC policy, on the service role only, for the configured VPC only.
    if kind != "service":
        return [f"{where}: only the Bedrock service role may manage network interfaces"]
    if not cfg.vpc_subnet_ids:
        return [f"{where}: EC2 permissions without a configured VPC"]
    eni = f"arn:{cfg.partition}:ec2:{cfg.region}:{cfg.account_id}:network-interface/*"
    subnets = set(cfg.vpc_arns("subnet"))
    job_tag = lambda key: _as_list(cond.get("ArnEquals", {}).get(key, [])) == [cfg.job_arns]  # noqa: E731
    describe = STAR_RESOURCE_BY_SID["DescribeVpcResourcesNoResourceLevelPermissions"]
    manage = CONDITIONED_STAR_BY_SID["ManageBedrockEnisInConfiguredSubnetsOnly"]
    for a in actions:
        if a in describe:
            continue  # "*" only, checked by the caller
        if a == "ec2:CreateNetworkInterface":
            allowed = {eni} | subnets | set(cfg.vpc_arns("security-group"))
            problems += [f"{where}: {a} on {r!r} is outside the configured VPC" for r in resources if r not in allowed]
            if _as_list(cond.get("StringEquals", {}).get("aws:RequestTag/BedrockManaged", [])) != ["true"] or \
                    not job_tag("aws:RequestTag/BedrockModelInvocationJobArn"):
                problems.append(f"{where}: {a} needs the BedrockManaged and BedrockModelInvocationJobArn request tags")
        elif a in manage:
            conditioned = set(_as_list(cond.get("StringEquals", {}).get("ec2:Subnet", [])))
            if not conditioned or not conditioned <= subnets:
                problems.append(f"{where}: {a} needs an ec2:Subnet condition on the configured subnets")
            if not job_tag("ec2:ResourceTag/BedrockModelInvocationJobArn"):
                problems.append(f"{where}: {a} needs the ENI's BedrockModelInvocationJobArn tag condition")
        elif a == "ec2:CreateTags":
            problems += [f"{where}: {a} on {r!r}: network interfaces only" for r in resources if r != eni]
            if _as_list(cond.get("StringEquals", {}).get("ec2:CreateAction", [])) != ["CreateNetworkInterface"] or \
                    _as_list(cond.get("ForAllValues:StringEquals", {}).get("aws:TagKeys", [])) != BEDROCK_ENI_TAG_KEYS:
                problems.append(f"{where}: {a} only at CreateNetworkInterface and only Bedrock's two tag keys")
        else:
            problems.append(f"{where}: unexpected action {a!r}")
    return problems


def _lint_s3(action: str, resources: list, cond: dict, cfg: IamConfig, kind: str, where: str) -> list[str]:
    problems = []
    p = cfg.partition
    if action == "s3:ListBucket":
        buckets = {cfg.bucket} if kind == "service" else {cfg.bucket, cfg.effective_logs_bucket}
        prefixes = _as_list(cond.get("StringLike", {}).get("s3:prefix", []))
        if not prefixes:
            problems.append(f"{where}: s3:ListBucket needs an s3:prefix condition")
        for r in resources:
            name = r.removeprefix(f"arn:{p}:s3:::")
            if name not in buckets or "/" in name:
                problems.append(f"{where}: s3:ListBucket on unexpected bucket {r!r}")
                continue
            allowed = _allowed_list_prefixes(cfg, kind, name)
            for px in prefixes:
                if px not in allowed:
                    problems.append(f"{where}: s3:prefix {px!r} is outside {sorted(allowed)}")
        return problems
    if action not in {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"}:
        return [f"{where}: unexpected S3 action {action!r}"]
    allowed = _allowed_s3_object_arns(cfg, kind)
    if kind == "service":
        allowed = {"s3:GetObject": {f"arn:{p}:s3:::{cfg.bucket}/shards/*"},
                   "s3:PutObject": {f"arn:{p}:s3:::{cfg.bucket}/outputs/*"}}.get(action, set())
    elif action != "s3:GetObject":
        # The runtime never writes inputs/ (users' files) nor outputs/ (Bedrock's results).
        allowed = {a for a in allowed if not a.endswith(("/inputs/*", "/outputs/*"))}
    for r in resources:
        if r not in allowed:
            problems.append(f"{where}: {action} on {r!r} is outside {sorted(allowed)}")
    return problems


def _lint_bedrock(action: str, resources: list, cfg: IamConfig, kind: str, where: str) -> list[str]:
    jobs = f"arn:{cfg.partition}:bedrock:{cfg.region}:{cfg.account_id}:model-invocation-job/*"
    models = set(model_arns(cfg))
    allowed: set[str]
    if kind == "service":
        allowed = models if action == "bedrock:InvokeModel" else set()
    elif action == "bedrock:InvokeModel":
        allowed = models
    elif action in {"bedrock:CreateModelInvocationJob", "bedrock:TagResource"}:
        allowed = models | {jobs}
    elif action in {"bedrock:GetModelInvocationJob", "bedrock:StopModelInvocationJob"}:
        allowed = {jobs}
    else:
        return [f"{where}: unexpected Bedrock action {action!r}"]
    return [f"{where}: {action} on {r!r} is outside the configured models/jobs" for r in resources if r not in allowed]


# ----------------------------------------------------------------------------------------------


def models_from_specs(path: str | Path) -> list[str]:
    """The distinct model_id values of a batches.yaml (what the pipeline can submit)."""
    import yaml

    doc = yaml.safe_load(Path(path).read_text()) or {}
    return sorted({b["model_id"] for b in (doc.get("batches") or {}).values() if b.get("model_id")})


def _split_ids(values: list[str]) -> tuple[str, ...]:
    """`--vpc-subnet-id a,b --vpc-subnet-id c` -> (a, b, c), as BEDROCK_ASSETS_VPC_SUBNET_IDS is written."""
    return tuple(dict.fromkeys(p.strip() for v in values for p in v.split(",") if p.strip()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--account-id", required=True)
    ap.add_argument("--region", default=os.environ.get("AWS_REGION") or "us-east-1")
    ap.add_argument("--bucket", default=os.environ.get("BEDROCK_ASSETS_BUCKET"), required=not os.environ.get("BEDROCK_ASSETS_BUCKET"))
    ap.add_argument("--model-id", action="append", default=[], help="repeatable; base model id, inference profile id or ARN")
    ap.add_argument("--models-from-specs", help="add every model_id of this batches.yaml")
    ap.add_argument("--service-role-name", default="bedrock-assets-batch-service")
    ap.add_argument("--logs-bucket", default="")
    ap.add_argument("--logs-prefix", default="dagster-compute-logs")
    ap.add_argument("--profile-region", action="append", default=[], help="repeatable; regions an inference profile routes to")
    ap.add_argument("--partition", default="aws")
    ap.add_argument("--output-kms-key-arn", action="append", default=[],
                    help="repeatable; a KMS key ARN job outputs are encrypted with (BEDROCK_ASSETS_OUTPUT_KMS_KEY_ID "
                         "or a batch's output_kms_key_id): the service role may encrypt, the runtime role decrypt with it")
    ap.add_argument("--vpc-subnet-id", action="append", default=[],
                    help="repeatable or comma-separated; a subnet of the jobs' VPC config (with --vpc-security-group-id)")
    ap.add_argument("--vpc-security-group-id", action="append", default=[],
                    help="repeatable or comma-separated; a security group of the jobs' VPC config")
    ap.add_argument("--out-dir", required=True)
    args = ap.parse_args(argv)

    models = list(args.model_id)
    if args.models_from_specs:
        models += models_from_specs(args.models_from_specs)
    try:
        cfg = IamConfig(
            account_id=args.account_id,
            region=args.region,
            bucket=args.bucket,
            model_ids=tuple(sorted(set(models))),
            service_role_name=args.service_role_name,
            logs_bucket=args.logs_bucket,
            logs_prefix=args.logs_prefix,
            partition=args.partition,
            profile_regions=tuple(args.profile_region),
            output_kms_key_arns=tuple(args.output_kms_key_arn),
            vpc_subnet_ids=_split_ids(args.vpc_subnet_id),
            vpc_security_group_ids=_split_ids(args.vpc_security_group_id),
        )
        rendered = render_all(cfg)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, doc in rendered.items():
        (out / name).write_text(json.dumps(doc, indent=2) + "\n")
        print(out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
