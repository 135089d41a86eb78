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

# Actions that have no resource-level permissions, so "Resource": "*" is the only valid form.
# Source: AWS Service Authorization Reference for Amazon Bedrock, ListModelInvocationJobs row
# (access level List, no resource types), as mirrored in iann0036/iam-dataset
# aws/iam_definition.json (checked 2026-11-24).  Keep this set minimal.
STAR_RESOURCE_ACTIONS = {"bedrock:ListModelInvocationJobs"}
STAR_RESOURCE_SIDS = {"ListBatchJobsNoResourceLevelPermissions"}

_PLACEHOLDER = re.compile(r"\$\{([A-Z_]+)\}")
_LIST_PLACEHOLDERS = {"MODEL_ARNS"}
# Cross-region inference profile ids start with a geography: us.anthropic..., eu.amazon..., ...
_PROFILE_ID = re.compile(r"^(us|us-gov|eu|apac|ca|jp|au|global)\.(.+)$")
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_ROLE_NAME = re.compile(r"^[A-Za-z0-9+=,.@_-]{1,64}$")
_S3_PREFIX = re.compile(r"^[A-Za-z0-9!_.'()/-]+$")


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


def render_all(cfg: IamConfig) -> dict[str, dict]:
    """Render every template; raises ValueError if any rendered document fails the lint."""
    lists = {"MODEL_ARNS": model_arns(cfg)}
    rendered = {name: _render(load_template(name), cfg.scalars(), lists) for name in TEMPLATES}
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
            if st.get("Sid") not in STAR_RESOURCE_SIDS or not set(actions) <= STAR_RESOURCE_ACTIONS:
                problems.append(
                    f"{where}: Resource '*' is only allowed for {sorted(STAR_RESOURCE_ACTIONS)} "
                    f"under Sid {sorted(STAR_RESOURCE_SIDS)}"
                )
            if resources != ["*"]:
                problems.append(f"{where}: '*' must not be mixed with other resources")
            continue
        for r in resources:
            if not isinstance(r, str) or ("*" in r and not r.endswith("/*")):
                problems.append(f"{where}: wildcard in the middle of resource {r!r}")

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
