"""Bad or awkward batch specs and price tables: each is refused when the file is read, with a line
naming the file, the batch and the field; through the real pipeline, the run fails before any
Bedrock job is created or any shard is uploaded.

The known-model list is checked against the providers (every listed id resolves to the family it
is listed under) and against docs/models.md (every id is documented)."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from bedrock_assets import pricing, providers
from bedrock_assets.providers import known_models
from bedrock_assets.runner import materialize_partition
from bedrock_assets.specs import BatchSpec, SpecError, SpecFields, load_specs, parse_specs

from .helpers import failed_steps, jobs_for_bucket, put_input

ORIGIN = "team/batches.yaml"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
TITAN = "amazon.titan-embed-text-v2:0"
REPO = Path(__file__).resolve().parents[2]


def _spec(body: str, name: str = "jokes") -> str:
    """A specs file with one batch whose fields are `body` (YAML lines)."""
    return f"batches:\n  {name}:\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n"


OK = f"model_id: {HAIKU}\nprompt: 'Tell me about {{topic}}'\n"

# (id, batch body, field, a fragment of the message). Every case is a mistake a user can make in
# a hand-written file; the fragment is what tells them how to fix it.
BAD_SPECS = [
    ("string-max-error-rate", OK + "max_error_rate: '0.1'", "max_error_rate", "must be a number"),
    ("string-budget", OK + "budget_usd: cheap", "budget_usd", "must be a number"),
    ("string-number-budget", OK + "budget_usd: '5'", "budget_usd", "must be a number"),
    ("string-false", OK + "skip_empty: 'false'", "skip_empty", "must be true or false"),
    ("string-yes", OK + "fresh_answers: 'yes'", "fresh_answers", "must be true or false"),
    ("int-as-bool", OK + "skip_empty: 1", "skip_empty", "must be true or false"),
    ("negative-max-rows", OK + "max_rows: -5", "max_rows", "must be >= 1"),
    ("zero-max-rows", OK + "max_rows: 0", "max_rows", "must be >= 1"),
    ("float-max-rows", OK + "max_rows: 10.0", "max_rows", "must be a whole number"),
    ("string-count", OK + "max_records_per_job: '1000'", "max_records_per_job", "must be a whole number"),
    ("float-count", OK + "max_record_attempts: 2.5", "max_record_attempts", "must be a whole number"),
    ("negative-budget", OK + "budget_usd: -1", "budget_usd", "must be > 0"),
    ("zero-budget", OK + "budget_usd: 0", "budget_usd", "must be > 0"),
    ("negative-rate", OK + "max_error_rate: -0.1", "max_error_rate", "must be within 0..1"),
    ("nan-minutes", OK + "stuck_after_minutes: .nan", "stuck_after_minutes", "must be a finite number"),
    ("timeout-too-long", OK + "timeout_hours: 200", "timeout_hours", "must be within 24..168"),
    ("float-timeout", OK + "timeout_hours: 48.0", "timeout_hours", "must be a whole number"),
    ("lowercase-enum", OK + "invocation_type: converse", "invocation_type", "must be one of 'InvokeModel' or 'Converse'"),
    ("bad-codec", OK + "results_compression: gzip", "results_compression", "must be one of 'zstd'"),
    ("params-list", OK + "params: [max_tokens, 10]", "params", "must be a mapping"),
    ("params-string", OK + "params: 'max_tokens=10'", "params", "must be a mapping"),
    ("param-string-number", OK + "params: {max_tokens: '10'}", "params", "max_tokens must be an integer"),
    ("param-typo", OK + "params: {max_token: 10}", "params", "unknown param(s) ['max_token']"),
    ("field-typo", OK + "max_error_rates: 0.1", "max_error_rates", "did you mean `max_error_rate`"),
    ("empty-id-column", OK + "id_column: ''", "id_column", "must not be empty"),
    ("blank-text-column", f"model_id: {TITAN}\ntext_column: '  '", "text_column", "must not be empty"),
    ("system-not-string", OK + "system: 42", "system", "must be a string"),
    ("system-on-embedding", f"model_id: {TITAN}\ntext_column: t\nsystem: be nice", "system", "no system prompt"),
    ("malformed-template", f"model_id: {HAIKU}\nprompt: 'Hi {{name'", "prompt", "prompt template is malformed"),
    ("prompt-and-text-column", OK + "text_column: topic", "text_column", "not both"),
    ("no-prompt", f"model_id: {HAIKU}", "prompt", "give prompt, prompt_id or text_column"),
    ("hf-config-alone", OK + "hf_config: default", "hf_config", "needs hf_dataset"),
    ("on-demand-out-of-range", OK + "on_demand_below: 60000", "on_demand_below", "within min_records_per_job..max_records_per_job"),
    ("model-id-number", "model_id: 3\nprompt: x", "model_id", "must be a string"),
    ("unknown-model", "model_id: anthropic.claude-9-imaginary-v1:0\nprompt: x", "model_id", "allow_unlisted_model_id: true"),
    ("model-typo", "model_id: anthropic.claude-3-haiku-20240307-v1:1\nprompt: x", "model_id", f"did you mean '{HAIKU}'"),
    ("profile-not-in-geography", "model_id: eu.anthropic.claude-3-opus-20240229-v1:0\nprompt: x", "model_id", "unknown model id"),
    ("arn-wrong-kind", f"model_id: 'arn:aws:bedrock:us-east-1::foundation-model/us.{HAIKU}'\nprompt: x", "model_id", "unknown model id"),
    ("unlisted-unknown-family", "model_id: cohere.command-r-v1:0\nallow_unlisted_model_id: true\nprompt: x", "model_id", "no provider for it"),
    ("escape-hatch-string", "model_id: anthropic.claude-9-v1:0\nallow_unlisted_model_id: 'true'\nprompt: x", "allow_unlisted_model_id", "must be true or false"),
    ("llama4-invoke-model", "model_id: meta.llama4-scout-17b-instruct-v1:0\nprompt: x", "model_id", "`invocation_type: Converse` only"),
    ("embedding-converse", f"model_id: {TITAN}\ntext_column: t\ninvocation_type: Converse", "model_id", "chat models only"),
    # Job options (bedrock_assets/job_options.py): Bedrock's limits, checked before any upload.
    ("bad-kms-id", OK + "output_kms_key_id: my-key", "output_kms_key_id", "must be a KMS key id"),
    ("kms-key-arn-typo", OK + "output_kms_key_id: 'arn:aws:kms:us-east-1:1234:key/x'", "output_kms_key_id", "key ARN"),
    ("too-many-security-groups", OK + "vpc_config: {subnet_ids: [subnet-a], security_group_ids: [sg-1, sg-2, sg-3, sg-4, sg-5, sg-6]}",
     "vpc_config.security_group_ids", "must have at most 5 items, has 6"),
    ("no-subnets", OK + "vpc_config: {subnet_ids: [], security_group_ids: [sg-1]}", "vpc_config.subnet_ids", "at least 1 item"),
    ("vpc-without-groups", OK + "vpc_config: {subnet_ids: [subnet-a]}", "vpc_config.security_group_ids", "is required"),
    ("bad-subnet-id", OK + "vpc_config: {subnet_ids: [subnet_a], security_group_ids: [sg-1]}", "vpc_config.subnet_ids[0]",
     "letters, digits and '-'"),
    ("vpc-typo", OK + "vpc_config: {subnets: [subnet-a], security_group_ids: [sg-1]}", "vpc_config.subnets",
     "did you mean `subnet_ids`"),
    ("bad-tag-key", OK + "job_tags: {'team*': search}", "job_tags['team*']", "a tag key must be"),
    ("aws-tag-key", OK + "job_tags: {'AWS:team': search}", "job_tags['AWS:team']", "reserved for AWS"),
    ("project-tag-key", OK + "job_tags: {'bedrock-assets/shard': mine}", "job_tags['bedrock-assets/shard']",
     "reserved for the project's own tags"),
    ("bad-tag-value", OK + "job_tags: {team: 'a,b'}", "job_tags['team']", "a tag value must be"),
    ("tag-value-number", OK + "job_tags: {cost-center: 42}", "job_tags['cost-center']", "must be a string"),
    ("too-many-tags", OK + "job_tags: {" + ", ".join(f"k{i}: v" for i in range(199)) + "}", "job_tags", "at most 198 tags"),
]


@pytest.mark.parametrize(("body", "field", "fragment"), [pytest.param(*c[1:], id=c[0]) for c in BAD_SPECS])
def test_a_bad_spec_names_the_file_batch_and_field(body, field, fragment):
    with pytest.raises(SpecError) as err:
        parse_specs(_spec(body), origin=ORIGIN)
    lines = str(err.value).splitlines()
    line = next((x for x in lines if f"`{field}`" in x), None)
    assert line is not None, lines
    assert line.startswith(f"{ORIGIN}: batch 'jokes': ") and fragment in line, line


# Mistakes in the file's shape: (id, whole file, fragments the message must hold).
BAD_FILES = [
    ("not-a-mapping", "- a\n- b\n", ["expected a top-level `batches:` mapping"]),
    ("not-yaml", "batches:\n  jokes: {model_id: [\n", ["not valid YAML"]),
    ("batch-is-a-list", "batches:\n  jokes:\n    - model_id: x\n", ["batch 'jokes'", "expected a mapping of fields", "got list"]),
    ("batch-is-empty", "batches:\n  jokes:\n", ["batch 'jokes'", "expected a mapping of fields", "empty entry"]),
    ("duplicate-field", "batches:\n  jokes:\n    model_id: a\n    model_id: b\n", ["duplicate key 'model_id'", "line 4"]),
    ("duplicate-batch", f"batches:\n  jokes: {{model_id: {HAIKU}, prompt: x}}\n  jokes: {{model_id: {HAIKU}, prompt: y}}\n",
     ["duplicate key 'jokes'"]),
    ("misindented-batch", _spec(OK) + "sentiment:\n  model_id: x\n", ["unknown top-level key 'sentiment'"]),
    ("bad-batch-name", _spec(OK, name="Jokes_2"), ["batch 'Jokes_2'", "name must match"]),
]


@pytest.mark.parametrize(("text", "fragments"), [pytest.param(*c[1:], id=c[0]) for c in BAD_FILES])
def test_a_malformed_file_names_the_file_and_the_problem(text, fragments):
    with pytest.raises(SpecError) as err:
        parse_specs(text, origin=ORIGIN)
    message = str(err.value)
    assert message.startswith(ORIGIN) and all(f in message for f in fragments), message


def test_every_problem_of_every_batch_is_listed_one_per_line():
    text = _spec(OK + "max_rows: -1\nskip_empty: 'no'") + "  other:\n    model_id: anthropic.claude-9-v1:0\n    prompt: x\n"
    with pytest.raises(SpecError) as err:
        parse_specs(text, origin=ORIGIN)
    lines = str(err.value).splitlines()
    assert len(lines) == 3, lines
    assert [line.split(": ")[1] for line in lines] == ["batch 'jokes'", "batch 'jokes'", "batch 'other'"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("model_id: anthropic.claude-9-imaginary-v1:0\nallow_unlisted_model_id: true\nprompt: x", id="escape-hatch"),
        pytest.param(f"model_id: us.{HAIKU}\nprompt: x", id="us-profile"),
        pytest.param("model_id: global.anthropic.claude-sonnet-4-20250514-v1:0\nprompt: x", id="global-profile"),
        pytest.param(f"model_id: 'arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}'\nprompt: x", id="foundation-arn"),
        pytest.param(f"model_id: 'arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.{HAIKU}'\nprompt: x", id="profile-arn"),
        pytest.param("model_id: us.meta.llama4-scout-17b-instruct-v1:0\ninvocation_type: Converse\nprompt: x", id="converse-only"),
        pytest.param(OK + "skip_empty: yes\nbudget_usd: 5\nmax_error_rate: 0", id="yaml-booleans-and-int-for-float"),
        pytest.param(OK + "output_kms_key_id: alias/bedrock-outputs\nvpc_config: {subnet_ids: [subnet-0a1], "
                     "security_group_ids: [sg-0b2]}\njob_tags: {'cost center': 'a/b=c:d@e+f', empty: ''}", id="job-options"),
    ],
)
def test_awkward_but_valid_specs_are_accepted(body):
    spec = parse_specs(_spec(body), origin=ORIGIN)["jokes"]
    assert providers.for_spec(spec) is not None


def test_shared_fields_through_an_anchor_and_merge_key():
    text = f"x-common: &common\n  model_id: {HAIKU}\n  params: {{max_tokens: 50}}\nbatches:\n" \
           "  a: {<<: *common, prompt: 'A {t}'}\n  b: {<<: *common, prompt: 'B {t}', params: {max_tokens: 9}}\n"
    specs = parse_specs(text, origin=ORIGIN)
    assert specs["a"].params == {"max_tokens": 50} and specs["b"].params == {"max_tokens": 9}


def test_batch_spec_and_spec_fields_list_the_same_fields_and_defaults():
    ours = {f.name: f for f in dataclasses.fields(BatchSpec) if f.name != "name"}
    assert set(ours) == set(SpecFields.model_fields)
    for name, field in SpecFields.model_fields.items():
        default = ours[name].default_factory() if ours[name].default_factory is not dataclasses.MISSING else ours[name].default
        assert field.get_default(call_default_factory=True) == default or field.is_required(), name
        assert field.description, f"{name} has no description (it is the user's reference)"


def test_the_packaged_specs_load():
    assert set(load_specs()) >= {"jokes", "embeddings"}


# --- known model ids ---------------------------------------------------------------------------


@pytest.mark.parametrize("family", list(known_models.KNOWN_MODELS))
def test_every_listed_id_resolves_to_its_family(family):
    for base, geos in known_models.KNOWN_MODELS[family].items():
        for model_id in [base, *(f"{g}.{base}" for g in geos)]:
            assert known_models.is_known(model_id)
            if family == "converse-only":
                assert providers.base_model_id(model_id).startswith(providers.CONVERSE_ONLY_PREFIXES)
            else:
                assert providers.family_for(model_id).family == family, model_id


def test_every_family_has_its_known_ids():
    assert set(known_models.KNOWN_MODELS) == {c.family for c in providers.REGISTRY} | {"converse-only"}


def test_docs_list_every_known_id_with_its_profiles():
    doc = (REPO / "docs" / "models.md").read_text()
    rows = [
        f"| `{family}` | `{base}` | {', '.join(g + '.' for g in geos) or '—'} |"
        for family, models in known_models.KNOWN_MODELS.items()
        for base, geos in models.items()
    ]
    missing = [row for row in rows if row not in doc]
    assert not missing, "add these rows to docs/models.md, section Known model ids:\n" + "\n".join(missing)


# --- price tables --------------------------------------------------------------------------------

BAD_PRICES = [
    ("string-price", {"models": {"amazon.nova-lite-v1": {"batch": {"input": "0.03"}}}},
     "models['amazon.nova-lite-v1'].batch.input", "must be a number"),
    ("negative-price", {"models": {"x": {"on_demand": {"input": -1, "output": 1}}}}, "models.x.on_demand.input", "must be >= 0"),
    ("row-typo", {"models": {"x": {"batchh": {"input": 1}}}}, "models.x.batchh", "did you mean `batch`"),
    ("bad-date", {"models": {"x": {"as_of": "Nov 2026"}}}, "models.x.as_of", "must be a date YYYY-MM-DD"),
    ("row-not-object", {"models": {"x": [1, 2]}}, "models.x", "must be a mapping"),
    ("bool-price", {"models": {"x": {"batch": {"input": True}}}}, "models.x.batch.input", "must be a number"),
]


@pytest.mark.parametrize(("doc", "field", "fragment"), [pytest.param(*c[1:], id=c[0]) for c in BAD_PRICES])
def test_a_bad_price_file_names_the_file_and_field(tmp_path, doc, field, fragment):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(pricing.PricingError) as err:
        pricing.load_prices(path)
    assert str(err.value).startswith(f"price file {path}: ") and f"`{field}`" in str(err.value) and fragment in str(err.value)


# --- through the pipeline, on the emulator ---------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "prices", "field"),
    [
        pytest.param(OK + "skip_empty: 'false'", None, "`skip_empty`", id="string-boolean"),
        pytest.param(OK + "budget_usd: '5'", None, "`budget_usd`", id="string-budget"),
        pytest.param("model_id: anthropic.claude-9-imaginary-v1:0\nprompt: 'Tell me about {topic}'", None, "`model_id`",
                     id="unknown-model"),
        pytest.param(OK, {"models": {HAIKU: {"batch": {"input": "0.1", "output": 1}}}}, f"`models['{HAIKU}'].batch.input`",
                     id="bad-price-file"),
    ],
)
def test_a_bad_spec_fails_the_run_before_any_upload_or_job(aws_env, write_specs, instance, tmp_path, monkeypatch,
                                                          body, prices, field):
    specs_file = write_specs(_spec(body))
    if prices is not None:
        (tmp_path / "prices.json").write_text(json.dumps(prices))
        monkeypatch.setenv(pricing.PRICING_ENV, str(tmp_path / "prices.json"))
    key = put_input(aws_env, "jokes", "topics.csv", pl.DataFrame({"topic": [f"t{i}" for i in range(150)]}))
    run = materialize_partition(instance, key, in_process=True)
    assert run.status == dg.DagsterRunStatus.FAILURE
    failures = failed_steps(instance, run.run_id)
    message = "\n".join(failures.values())
    where = str(tmp_path / "prices.json") if prices is not None else f"{specs_file}: batch 'jokes'"
    assert where in message and field in message, failures
    assert jobs_for_bucket(aws_env) == []
    shards = aws_env.s3.list_objects_v2(Bucket=aws_env.bucket, Prefix="shards/").get("KeyCount", 0)
    assert shards == 0
