"""IAM policy templates in deploy/iam/ and their renderer (deploy/render_iam.py).

Checks the least-privilege rules on the templates and on concrete renderings, and checks that the
lint really rejects each kind of over-grant (so a passing lint means something).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _load_renderer():
    spec = importlib.util.spec_from_file_location("render_iam", DEPLOY / "render_iam.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["render_iam"] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


ri = _load_renderer()

ACCOUNT = "123456789012"
REGION = "eu-west-1"
BUCKET = "acme-bedrock-assets"
SERVICE_ROLE = "acme-bedrock-batch"
MODELS = (
    "anthropic.claude-3-haiku-20240307-v1:0",
    "amazon.titan-embed-text-v2:0",
    "eu.anthropic.claude-3-5-sonnet-20240620-v1:0",  # cross-region inference profile
)


@pytest.fixture
def cfg():
    return ri.IamConfig(
        account_id=ACCOUNT,
        region=REGION,
        bucket=BUCKET,
        model_ids=MODELS,
        service_role_name=SERVICE_ROLE,
        logs_bucket="acme-dagster-logs",
        logs_prefix="compute-logs/",
        profile_regions=("eu-west-1", "eu-central-1"),
    )


@pytest.fixture
def rendered(cfg):
    return ri.render_all(cfg)


def _statements(doc):
    return doc["Statement"]


def _resources(st):
    r = st["Resource"]
    return r if isinstance(r, list) else [r]


def _actions(st):
    a = st["Action"]
    return a if isinstance(a, list) else [a]


# --- templates ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ri.TEMPLATES))
def test_templates_are_valid_json_with_known_placeholders(name):
    text = (DEPLOY / "iam" / name).read_text()
    doc = json.loads(text)
    assert doc["Version"] == "2012-10-17"
    for st in doc["Statement"]:
        assert {"Sid", "Effect", "Action"} <= set(st), st
        assert st["Effect"] == "Allow"
        assert "Resource" in st or "Principal" in st  # identity vs trust policy
    placeholders = set(re.findall(r"\$\{([A-Z_]+)\}", text))
    assert placeholders <= set(ri.IamConfig(ACCOUNT, REGION, BUCKET, MODELS).scalars()) | ri._LIST_PLACEHOLDERS
    assert {"ACCOUNT_ID", "PARTITION"} <= placeholders


def test_there_is_no_hard_coded_account_region_or_bucket_in_templates():
    for name in ri.TEMPLATES:
        text = (DEPLOY / "iam" / name).read_text()
        assert not re.search(r"\d{12}", text), name
        assert not re.search(r"(us|eu|ap)-[a-z]+-\d", text), name
        assert "arn:aws:" not in text, f"{name}: use arn:${{PARTITION}}: so GovCloud/China render too"


# --- rendered documents -------------------------------------------------------------------------


def test_rendered_documents_are_concrete_and_pass_the_lint(cfg, rendered):
    assert set(rendered) == set(ri.TEMPLATES)
    for name, doc in rendered.items():
        json.loads(json.dumps(doc))
        assert "${" not in json.dumps(doc), name
        assert ri.lint_policy(doc, cfg, ri.TEMPLATES[name]) == [], name


def test_every_statement_has_effect_action_resource_and_no_wildcard_actions(rendered):
    for name in ("bedrock-batch-service-role-policy.json", "dagster-runtime-role-policy.json"):
        for st in _statements(rendered[name]):
            assert st["Effect"] == "Allow" and st["Action"] and st["Resource"], st
            for action in _actions(st):
                assert "*" not in action, f"{name}: wildcard action {action}"
                assert action not in {"s3:*", "bedrock:*", "iam:*"}


def test_star_resource_only_for_list_model_invocation_jobs(rendered):
    """bedrock:ListModelInvocationJobs has no resource types in the Service Authorization
    Reference (access level List), so "*" is the only valid Resource for it, and only for it."""
    star = [
        (name, st)
        for name, doc in rendered.items()
        if "trust" not in name
        for st in _statements(doc)
        if "*" in _resources(st)
    ]
    assert [(n, st["Sid"], _actions(st)) for n, st in star] == [
        ("dagster-runtime-role-policy.json", "ListBatchJobsNoResourceLevelPermissions", ["bedrock:ListModelInvocationJobs"])
    ]
    readme = (DEPLOY / "README.md").read_text()
    assert "ListBatchJobsNoResourceLevelPermissions" in readme and "ListModelInvocationJobs" in readme


def test_s3_access_is_scoped_to_the_configured_bucket_and_prefixes(cfg, rendered):
    data_prefixes = {f"arn:aws:s3:::{BUCKET}/{p}/*" for p in ri.PROJECT_PREFIXES}
    logs = "arn:aws:s3:::acme-dagster-logs/compute-logs/*"
    for name in ("bedrock-batch-service-role-policy.json", "dagster-runtime-role-policy.json"):
        for st in _statements(rendered[name]):
            s3_actions = [a for a in _actions(st) if a.startswith("s3:")]
            if not s3_actions:
                continue
            for r in _resources(st):
                if s3_actions == ["s3:ListBucket"]:
                    assert r in {f"arn:aws:s3:::{BUCKET}", "arn:aws:s3:::acme-dagster-logs"}
                    prefixes = st["Condition"]["StringLike"]["s3:prefix"]
                    assert prefixes and all(p.endswith("/*") and p != "*" for p in prefixes)
                else:
                    assert r in data_prefixes | {logs}, f"{name}/{st['Sid']}: {r}"

    service = {st["Sid"]: st for st in _statements(rendered["bedrock-batch-service-role-policy.json"])}
    # Bedrock reads the shards prefix and writes the outputs prefix; nothing else.
    assert service["ReadBatchInputShards"]["Action"] == ["s3:GetObject"]
    assert service["ReadBatchInputShards"]["Resource"] == [f"arn:aws:s3:::{BUCKET}/shards/*"]
    assert service["WriteBatchOutputs"]["Action"] == ["s3:PutObject"]
    assert service["WriteBatchOutputs"]["Resource"] == [f"arn:aws:s3:::{BUCKET}/outputs/*"]
    assert service["ListShardsAndOutputsPrefixesOnly"]["Condition"]["StringLike"]["s3:prefix"] == ["shards/*", "outputs/*"]

    runtime = {st["Sid"]: st for st in _statements(rendered["dagster-runtime-role-policy.json"])}
    writes = set(runtime["WriteDagsterOwnedPrefixesNotInputsOrOutputs"]["Resource"])
    # The runtime never writes users' inputs nor Bedrock's outputs.
    assert not any(r.endswith(("/inputs/*", "/outputs/*")) for r in writes)
    assert runtime["ListProjectPrefixesOnly"]["Condition"]["StringLike"]["s3:prefix"] == [f"{p}/*" for p in ri.PROJECT_PREFIXES]


def test_bedrock_access_is_limited_to_the_configured_models(cfg, rendered):
    expected_models = {
        f"arn:aws:bedrock:{REGION}::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
        f"arn:aws:bedrock:{REGION}::foundation-model/amazon.titan-embed-text-v2:0",
        f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/eu.anthropic.claude-3-5-sonnet-20240620-v1:0",
        # a cross-region profile needs the foundation model in each region it routes to
        "arn:aws:bedrock:eu-west-1::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0",
        "arn:aws:bedrock:eu-central-1::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0",
    }
    assert set(ri.model_arns(cfg)) == expected_models
    jobs = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:model-invocation-job/*"
    runtime = {st["Sid"]: st for st in _statements(rendered["dagster-runtime-role-policy.json"])}
    assert set(runtime["SubmitBatchJobsForConfiguredModelsOnly"]["Resource"]) == expected_models | {jobs}
    assert set(runtime["OnDemandFallbackInvokeModelAlsoAuthorizesConverse"]["Resource"]) == expected_models
    assert runtime["OnDemandFallbackInvokeModelAlsoAuthorizesConverse"]["Action"] == ["bedrock:InvokeModel"]
    assert set(_actions(runtime["TrackAndStopBatchJobs"])) == {"bedrock:GetModelInvocationJob", "bedrock:StopModelInvocationJob"}
    assert runtime["TrackAndStopBatchJobs"]["Resource"] == [jobs]
    service = {st["Sid"]: st for st in _statements(rendered["bedrock-batch-service-role-policy.json"])}
    assert set(service["InvokeConfiguredModelsOnly"]["Resource"]) == expected_models


def test_pass_role_only_for_the_service_role_and_only_to_bedrock(rendered):
    passes = [
        st
        for doc in rendered.values()
        for st in _statements(doc)
        if "iam:PassRole" in _actions(st)
    ]
    assert len(passes) == 1
    (st,) = passes
    assert st["Resource"] == [f"arn:aws:iam::{ACCOUNT}:role/{SERVICE_ROLE}"]
    assert st["Condition"] == {"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}}


def test_service_role_trust_is_bedrock_with_source_account_and_job_arn(rendered):
    (st,) = _statements(rendered["bedrock-batch-service-role-trust.json"])
    assert st["Principal"] == {"Service": "bedrock.amazonaws.com"}
    assert st["Action"] == "sts:AssumeRole"
    assert st["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    assert st["Condition"]["ArnLike"] == {"aws:SourceArn": f"arn:aws:bedrock:{REGION}:{ACCOUNT}:model-invocation-job/*"}


def test_partition_is_templated(cfg):
    gov = ri.IamConfig(ACCOUNT, "us-gov-west-1", BUCKET, ("anthropic.claude-3-haiku-20240307-v1:0",), partition="aws-us-gov")
    docs = ri.render_all(gov)
    text = json.dumps(docs)
    assert "arn:aws-us-gov:s3:::" in text and "arn:aws:" not in text


# --- the lint rejects each over-grant -----------------------------------------------------------


def _runtime_doc(rendered):
    return copy.deepcopy(rendered["dagster-runtime-role-policy.json"])


MUTATIONS = {
    "s3 wildcard action": lambda d: d["Statement"][5].update(Action=["s3:*"]),
    "bedrock wildcard action": lambda d: d["Statement"][0].update(Action=["bedrock:*"]),
    "star resource elsewhere": lambda d: d["Statement"][1].update(Resource="*"),
    "other bucket": lambda d: d["Statement"][5]["Resource"].append("arn:aws:s3:::someone-else/*"),
    "whole bucket objects": lambda d: d["Statement"][5]["Resource"].append(f"arn:aws:s3:::{BUCKET}/*"),
    "runtime writes outputs": lambda d: d["Statement"][6]["Resource"].append(f"arn:aws:s3:::{BUCKET}/outputs/*"),
    "list without prefix condition": lambda d: d["Statement"][7].pop("Condition"),
    "list any prefix": lambda d: d["Statement"][7]["Condition"]["StringLike"]["s3:prefix"].append("*"),
    "pass any role": lambda d: d["Statement"][4].update(Resource=[f"arn:aws:iam::{ACCOUNT}:role/*"]),
    "pass role to any service": lambda d: d["Statement"][4].pop("Condition"),
    "unconfigured model": lambda d: d["Statement"][3]["Resource"].append(
        f"arn:aws:bedrock:{REGION}::foundation-model/anthropic.claude-3-opus-20240229-v1:0"
    ),
    "any model": lambda d: d["Statement"][3]["Resource"].append(f"arn:aws:bedrock:{REGION}::foundation-model/*"),
    "missing resource": lambda d: d["Statement"][1].pop("Resource"),
    "missing effect": lambda d: d["Statement"][1].pop("Effect"),
    "deny-less NotAction": lambda d: d["Statement"][1].update(NotAction=["s3:DeleteBucket"]),
    "wrong version": lambda d: d.update(Version="2008-10-17"),
    "unexpected service": lambda d: d["Statement"][1]["Action"].append("ec2:RunInstances"),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_lint_rejects_over_grants(cfg, rendered, mutation):
    doc = _runtime_doc(rendered)
    assert ri.lint_policy(doc, cfg, "runtime") == []
    MUTATIONS[mutation](doc)
    assert ri.lint_policy(doc, cfg, "runtime"), f"lint accepted: {mutation}"


def test_lint_rejects_loose_trust(cfg, rendered):
    doc = copy.deepcopy(rendered["bedrock-batch-service-role-trust.json"])
    doc["Statement"][0]["Condition"].pop("ArnLike")
    assert ri.lint_policy(doc, cfg, "trust")
    doc = copy.deepcopy(rendered["bedrock-batch-service-role-trust.json"])
    doc["Statement"][0]["Principal"] = {"AWS": "*"}
    assert ri.lint_policy(doc, cfg, "trust")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"account_id": "12345"}, "12 digits"),
        ({"bucket": "Bad_Bucket"}, "bucket"),
        ({"model_ids": ()}, "at least one model"),
        ({"model_ids": ("anthropic.*",)}, "wildcard"),
        ({"region": "mars-1"}, "region"),
        ({"logs_prefix": "outputs", "logs_bucket": ""}, "project prefix"),
    ],
)
def test_config_refuses_unsafe_input(kwargs, message):
    base = dict(account_id=ACCOUNT, region=REGION, bucket=BUCKET, model_ids=MODELS)
    with pytest.raises(ValueError, match=message):
        ri.IamConfig(**{**base, **kwargs})


def test_cli_renders_from_the_project_specs(tmp_path):
    """The README command: models come from bedrock_assets/batches.yaml."""
    specs = DEPLOY.parent / "bedrock_assets" / "batches.yaml"
    proc = subprocess.run(
        [
            sys.executable, str(DEPLOY / "render_iam.py"),
            "--account-id", ACCOUNT, "--region", "us-east-1", "--bucket", BUCKET,
            "--models-from-specs", str(specs), "--logs-bucket", "acme-dagster-logs",
            "--out-dir", str(tmp_path),
        ],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == sorted(ri.TEMPLATES)
    runtime = json.loads((tmp_path / "dagster-runtime-role-policy.json").read_text())
    invoke = next(st for st in runtime["Statement"] if st["Sid"] == "OnDemandFallbackInvokeModelAlsoAuthorizesConverse")
    spec_models = ri.models_from_specs(specs)
    assert spec_models  # the project has models configured
    assert {r.rsplit("/", 1)[1] for r in invoke["Resource"]} == set(spec_models)


def test_cli_exits_nonzero_on_bad_config(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(DEPLOY / "render_iam.py"), "--account-id", "42", "--bucket", BUCKET,
         "--model-id", "amazon.titan-embed-text-v2:0", "--out-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1 and "12 digits" in proc.stderr
    assert not list(tmp_path.iterdir())


def test_every_key_the_pipeline_uses_is_inside_the_granted_prefixes():
    """Drift guard: the S3 layout in bedrock_assets.storage must stay inside what the roles allow
    (a new top-level prefix would be AccessDenied in production, never in the emulator)."""
    from bedrock_assets.storage import PartitionLayout

    layout = PartitionLayout(bucket=BUCKET, partition="jokes/topics.csv")
    keys = {}
    for name in dir(PartitionLayout):
        if not name.endswith(("_key", "_prefix")):
            continue
        attr = getattr(layout, name)
        keys[name] = attr("shard-00000.jsonl") if callable(attr) else attr
    assert {"input_key", "records_key", "shard_key", "outputs_prefix", "results_key"} <= set(keys)
    for name, key in keys.items():
        top = key.split("/", 1)[0]
        assert top in ri.PROJECT_PREFIXES, f"{name} = {key!r} is outside the IAM prefixes"
        if top not in ("inputs", "outputs"):
            assert top in ri.RUNTIME_WRITE_PREFIXES, name
    # Bedrock (service role) reads the shards and writes the outputs, nothing else.
    assert keys["shard_key"].startswith("shards/") and keys["outputs_prefix"].startswith("outputs/")


# --- job options: output KMS key and VPC (docs/bedrock-facts.md §8) ------------------------------

KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SUBNETS = ("subnet-0123456789abcdef0", "subnet-0123456789abcdef1")
GROUPS = ("sg-0123456789abcdef0",)
SERVICE, RUNTIME = "bedrock-batch-service-role-policy.json", "dagster-runtime-role-policy.json"


@pytest.fixture
def opt_cfg(cfg):
    import dataclasses

    return dataclasses.replace(cfg, output_kms_key_arns=(KEY,), vpc_subnet_ids=SUBNETS, vpc_security_group_ids=GROUPS)


def _by_sid(doc):
    return {st["Sid"]: st for st in doc["Statement"]}


def test_without_job_options_there_are_no_kms_or_ec2_statements(rendered):
    for name, doc in rendered.items():
        assert not [a for st in doc["Statement"] for a in _actions(st) if a.startswith(("kms:", "ec2:"))], name


def test_optional_statements_are_templated_like_the_rest():
    text = ri.OPTIONAL_STATEMENTS.read_text()
    doc = json.loads(text)
    assert set(doc) <= set(ri.TEMPLATES)
    assert set(re.findall(r"\$\{([A-Z_]+)\}", text)) <= set(ri.IamConfig(ACCOUNT, REGION, BUCKET, MODELS).scalars()) | ri._LIST_PLACEHOLDERS
    assert not re.search(r"\d{12}", text) and "arn:aws:" not in text


def test_kms_key_grants_exactly_encrypt_to_the_service_role_and_decrypt_to_the_runtime(opt_cfg):
    docs = ri.render_all(opt_cfg)
    for name, doc in docs.items():
        assert ri.lint_policy(doc, opt_cfg, ri.TEMPLATES[name]) == [], name
    via_s3 = {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}
    kms = [(name, st) for name, doc in docs.items() for st in doc["Statement"] if _actions(st)[0].startswith("kms:")]
    assert [(n, sorted(_actions(st)), _resources(st), st["Condition"]) for n, st in kms] == [
        (SERVICE, ["kms:Decrypt", "kms:GenerateDataKey"], [KEY], via_s3),
        (RUNTIME, ["kms:Decrypt"], [KEY], via_s3),
    ]


def test_vpc_grants_the_bedrock_eni_permissions_on_the_configured_subnets_only(opt_cfg):
    docs = ri.render_all(opt_cfg)
    ec2 = {n: [st for st in doc["Statement"] if _actions(st)[0].startswith("ec2:")] for n, doc in docs.items()}
    assert all(not sts for n, sts in ec2.items() if n != SERVICE)  # only the service role
    st = _by_sid(docs[SERVICE])
    subnet_arns = [f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/{s}" for s in SUBNETS]
    create = st["CreateBedrockTaggedEnisInConfiguredSubnetsOnly"]
    assert _resources(create) == [f"arn:aws:ec2:{REGION}:{ACCOUNT}:network-interface/*", *subnet_arns,
                                  f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{GROUPS[0]}"]
    assert create["Condition"]["StringEquals"] == {"aws:RequestTag/BedrockManaged": ["true"]}
    manage = st["ManageBedrockEnisInConfiguredSubnetsOnly"]
    assert manage["Condition"]["StringEquals"]["ec2:Subnet"] == subnet_arns
    # "*" appears only where the Service Authorization Reference leaves no other choice, or
    # narrowed by conditions exactly as Bedrock's batch-in-a-VPC policy does.
    star = sorted(s["Sid"] for name, doc in docs.items() if "trust" not in name for s in doc["Statement"]
                  if "*" in _resources(s))
    assert star == sorted(ri.STAR_RESOURCE_SIDS)
    readme = (DEPLOY / "README.md").read_text()
    assert all(sid in readme for sid in star)


JOB_OPTION_MUTATIONS = {
    "kms on another key": (SERVICE, "EncryptJobOutputsWithConfiguredKeysViaS3Only",
                           lambda s: s["Resource"].append(KEY.replace("1234abcd", "9999abcd"))),
    "kms encrypt action": (SERVICE, "EncryptJobOutputsWithConfiguredKeysViaS3Only", lambda s: s["Action"].append("kms:Encrypt")),
    "kms without via-s3": (SERVICE, "EncryptJobOutputsWithConfiguredKeysViaS3Only", lambda s: s.pop("Condition")),
    "runtime generates data keys": (RUNTIME, "ReadJobOutputsEncryptedWithConfiguredKeysViaS3Only",
                                    lambda s: s["Action"].append("kms:GenerateDataKey")),
    "eni in another subnet": (SERVICE, "CreateBedrockTaggedEnisInConfiguredSubnetsOnly",
                              lambda s: s["Resource"].append(f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/subnet-other")),
    "eni without bedrock tag": (SERVICE, "CreateBedrockTaggedEnisInConfiguredSubnetsOnly", lambda s: s.pop("Condition")),
    "delete enis anywhere": (SERVICE, "ManageBedrockEnisInConfiguredSubnetsOnly",
                             lambda s: s["Condition"]["StringEquals"].pop("ec2:Subnet")),
    "delete enis of other jobs": (SERVICE, "ManageBedrockEnisInConfiguredSubnetsOnly", lambda s: s["Condition"].pop("ArnEquals")),
    "tag anything": (SERVICE, "TagEnisAtCreationWithBedrockKeysOnly", lambda s: s["Condition"].pop("ForAllValues:StringEquals")),
    "describe with run instances": (SERVICE, "DescribeVpcResourcesNoResourceLevelPermissions",
                                    lambda s: s["Action"].append("ec2:RunInstances")),
}


@pytest.mark.parametrize("mutation", sorted(JOB_OPTION_MUTATIONS))
def test_lint_rejects_job_option_over_grants(opt_cfg, mutation):
    name, sid, change = JOB_OPTION_MUTATIONS[mutation]
    doc = copy.deepcopy(ri.render_all(opt_cfg)[name])
    change(_by_sid(doc)[sid])
    assert ri.lint_policy(doc, opt_cfg, ri.TEMPLATES[name]), f"lint accepted: {mutation}"


def test_lint_rejects_job_option_statements_that_nothing_configured_needs(cfg, opt_cfg):
    docs = ri.render_all(opt_cfg)
    assert ri.lint_policy(docs[SERVICE], cfg, "service") and ri.lint_policy(docs[RUNTIME], cfg, "runtime")
    runtime = copy.deepcopy(docs[RUNTIME])
    runtime["Statement"].append(copy.deepcopy(_by_sid(docs[SERVICE])["CreateBedrockTaggedEnisInConfiguredSubnetsOnly"]))
    assert ri.lint_policy(runtime, opt_cfg, "runtime")  # the runtime role never manages ENIs


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"output_kms_key_arns": (f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/outputs",)}, "must be a key ARN"),
        ({"output_kms_key_arns": ("1234abcd-12ab-34cd-56ef-1234567890ab",)}, "must be a key ARN"),
        ({"vpc_subnet_ids": SUBNETS}, "needs both"),
        ({"vpc_subnet_ids": ("subnet-*",), "vpc_security_group_ids": GROUPS}, "not a subnet id"),
    ],
)
def test_config_refuses_unusable_job_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ri.IamConfig(account_id=ACCOUNT, region=REGION, bucket=BUCKET, model_ids=MODELS, **kwargs)


def test_cli_renders_kms_and_vpc_statements(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(DEPLOY / "render_iam.py"), "--account-id", ACCOUNT, "--region", REGION, "--bucket", BUCKET,
         "--model-id", MODELS[0], "--output-kms-key-arn", KEY, "--vpc-subnet-id", ",".join(SUBNETS),
         "--vpc-security-group-id", GROUPS[0], "--out-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    service = json.loads((tmp_path / SERVICE).read_text())
    manage = _by_sid(service)["ManageBedrockEnisInConfiguredSubnetsOnly"]
    assert manage["Condition"]["StringEquals"]["ec2:Subnet"] == [f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/{s}" for s in SUBNETS]
    assert "EncryptJobOutputsWithConfiguredKeysViaS3Only" in _by_sid(service)
