"""Batch specs: the declarative file that names each batch (model, prompt, parameters, limits).

The file is YAML (`batches:` mapping name -> spec). Its path comes from BEDROCK_ASSETS_SPECS,
default the packaged `batches.yaml`. Each batch is validated by `SpecFields`, a strict pydantic
model: an unknown key, a value of the wrong type (`"false"` for a boolean, `"0.1"` for a number,
`1.5` for a count), an out-of-range value, an unknown model id or a param the model does not take
is refused when the file is read, with one line per problem naming the file, the batch, the field
and the value. That is before any input is read, anything is uploaded, or any job exists.

`BatchSpec` is the plain frozen dataclass the rest of the code uses, built from a validated
`SpecFields`. It is kept separate on purpose: tests and benchmarks build `BatchSpec(...)` in code
with values a user may not write (a 10-record minimum job, an unsupported model to test the
provider's own error), and `dataclasses.replace(spec, ...)` keeps working for them. The field
list is the same in both (tests/pipeline/test_pl_spec_errors.py checks it); the user's reference
for each field is its `description` in `SpecFields`.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, Literal

import pydantic
import yaml
from pydantic import AfterValidator, ConfigDict, Field

from bedrock_assets import job_options, prompts, providers, settings
from bedrock_assets.providers import known_models
from bedrock_assets.validation import NO_VALUE, Problems, problem_lines

PACKAGED_SPECS = Path(__file__).with_name("batches.yaml")

# Bedrock's quotas (docs/bedrock-facts.md §3): 100 minimum records per job (not adjustable), 50,000 records per
# job and per file (adjustable), 1 GB per input file (not adjustable).
BEDROCK_MIN_RECORDS = 100
BEDROCK_MAX_RECORDS = 50_000
BEDROCK_MAX_FILE_BYTES = 1_000_000_000

_BATCH_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")


class SpecError(ValueError):
    """A batch spec is malformed; the message names the file, batch and field (one line per problem)."""


# Parquet codecs for results.parquet, smallest file first. zstd-1 is the default because the file
# goes to S3 and is read back by analytics; `none` makes joined_results ~1.3x faster for 2.3x the
# bytes (bench/RESULTS.md).
RESULTS_CODECS = ("zstd", "lz4", "snappy", "none")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or blank")
    return value


# A string with at least one non-space character: a blank prompt, column or system prompt is a
# mistake, never a choice.
Text = Annotated[str, AfterValidator(_not_blank)]


class SpecFields(pydantic.BaseModel):
    """One batch as written under `batches:` (its name is the mapping key, not a field).

    Strict: values must have their YAML type (unquoted numbers and booleans); an unknown key is
    an error, so a typo (`max_error_rates`) fails loudly instead of running with a default."""

    model_config = ConfigDict(
        strict=True, extra="forbid", frozen=True, allow_inf_nan=False, protected_namespaces=(),
    )

    model_id: Text = Field(
        description="Bedrock model id: a base id (`anthropic.claude-3-haiku-20240307-v1:0`), a foundation-model "
        "ARN, a cross-region inference profile id (`us.`, `eu.`, `apac.`, `global.`, ... + base id) or its ARN. "
        "It must be in the package's list of known ids (docs/models.md) unless `allow_unlisted_model_id` is true.",
    )
    allow_unlisted_model_id: bool = Field(
        default=False,
        description="Run a `model_id` that is not in the package's list (a model newer than the package). Its "
        "family must still be recognised by its prefix (`anthropic.claude-*`, `amazon.nova-*`, ...), and its "
        "params are checked by that family's provider.",
    )
    prompt: Text | None = Field(
        default=None,
        description="Inline prompt template; `{column}` placeholders are filled from each row, `{{`/`}}` are "
        "literal braces. Give `prompt` or `prompt_id`, not both.",
    )
    prompt_id: Text | None = Field(
        default=None, description="Name of a template in bedrock_assets/prompts.py (PROMPT_TEMPLATES).",
    )
    system: Text | None = Field(default=None, description="System prompt for chat models (embedding models take none).")
    text_column: Text | None = Field(
        default=None,
        description="Column whose text is sent as is (the column to embed, for embedding models). Used when there "
        "is no prompt; giving both is an error because the prompt would win.",
    )
    id_column: Text | None = Field(
        default=None, description="Use this existing unique, non-null column as the record id (default: row position).",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Inference parameters, the same names for every model: `max_tokens`, `temperature`, `top_p`, "
        "`top_k`, `stop_sequences`, and `dimensions`, `normalize` for embeddings (docs/models.md). A param the "
        "model does not take is an error.",
    )
    invocation_type: Literal["InvokeModel", "Converse"] = Field(
        default="InvokeModel",
        description="`InvokeModel` (the model's own request body) or `Converse` (one request shape for any chat model).",
    )
    max_records_per_job: int = Field(
        default=BEDROCK_MAX_RECORDS, ge=BEDROCK_MIN_RECORDS,
        description="Records per job and per shard file at most (Bedrock's quota, 50,000 by default, adjustable per account).",
    )
    min_records_per_job: int = Field(
        default=BEDROCK_MIN_RECORDS, ge=BEDROCK_MIN_RECORDS,
        description="Bedrock's minimum records per job (100, not adjustable); shards are planned to stay above it.",
    )
    max_bytes_per_file: int = Field(
        default=BEDROCK_MAX_FILE_BYTES, ge=1, le=BEDROCK_MAX_FILE_BYTES,
        description="Bytes per shard file at most; Bedrock's limit is 1 GB (1000000000).",
    )
    skip_empty: bool = Field(
        default=False,
        description="Drop rows whose text is empty or null (they appear in the results as `skipped`) instead of failing.",
    )
    max_error_rate: float = Field(
        default=0.05, ge=0.0, le=1.0,
        description="Threshold of the `error_rate_below_threshold` check on joined_results, a fraction within 0..1.",
    )
    results_compression: Literal["zstd", "lz4", "snappy", "none"] = Field(
        default="zstd", description="Codec of results.parquet's answer columns: zstd (level 1), lz4, snappy or none.",
    )
    timeout_hours: int | None = Field(
        default=None, ge=24, le=168,
        description="Bedrock's timeoutDurationInHours, 24..168; unset: the BedrockBatch resource's value.",
    )
    stuck_after_minutes: float = Field(
        default=360.0, gt=0, description="Report a job still queued (Scheduled) after this many minutes (> 0).",
    )
    max_record_attempts: int = Field(
        default=3, ge=1,
        description="Tries per record (the first job plus follow-ups or on-demand calls) for transient errors (>= 1).",
    )
    budget_usd: float | None = Field(
        default=None, gt=0,
        description="Stop before any job is created when the estimated upper-bound cost exceeds this many USD (> 0).",
    )
    fresh_answers: bool = Field(
        default=False,
        description="Ask every request again even when the answer ledger has its answer (jsonl_shards' run "
        "config `fresh_answers` does the same for one run).",
    )
    on_demand_below: int | None = Field(
        default=None,
        description="Shards and remainders with fewer records are answered on-demand (InvokeModel / Converse) "
        "instead of by a batch job; within min_records_per_job..max_records_per_job; unset: min_records_per_job.",
    )
    hf_dataset: Text | None = Field(
        default=None,
        description="Hugging Face source: a hub id, or a local dataset folder (`./x` is relative to the specs file). "
        "The partition's input name is the split.",
    )
    hf_config: Text | None = Field(default=None, description="Hugging Face dataset configuration (needs `hf_dataset`).")
    max_rows: int | None = Field(default=None, ge=1, description="Take only the first N rows of the input (>= 1).")
    # Job options (job_options.py, docs/bedrock-facts.md §8): they do not change answers, so they
    # are not part of the request digest or the job identity.
    output_kms_key_id: job_options.KmsKeyId | None = Field(
        default=None,
        description="KMS key Bedrock encrypts this batch's job outputs with (CreateModelInvocationJob "
        "`outputDataConfig.s3OutputDataConfig.s3EncryptionKeyId`): a key id, key ARN, alias (`alias/name`) or alias "
        "ARN. Unset: the BedrockBatch resource's (`$BEDROCK_ASSETS_OUTPUT_KMS_KEY_ID`), else the bucket's default "
        "encryption. The service role needs kms:GenerateDataKey on it, the runtime role kms:Decrypt (deploy/README.md).",
    )
    vpc_config: job_options.VpcConfig | None = Field(
        default=None,
        description="Run this batch's jobs in a VPC: `{subnet_ids: [...], security_group_ids: [...]}` (1..16 "
        "subnets, 1..5 security groups), Bedrock's `vpcConfig`. Taken whole, over the BedrockBatch resource's "
        "(`$BEDROCK_ASSETS_VPC_SUBNET_IDS` / `$BEDROCK_ASSETS_VPC_SECURITY_GROUP_IDS`). The service role needs the "
        "EC2 network-interface permissions of deploy/README.md.",
    )
    job_tags: dict[str, str] = Field(
        default_factory=dict,
        description=f"Tags for this batch's jobs, merged over the BedrockBatch resource's (`$BEDROCK_ASSETS_JOB_TAGS`; "
        f"the batch wins per key). Keys 1..{job_options.TAG_KEY_MAX} and values 0..{job_options.TAG_VALUE_MAX} characters "
        f"of letters, digits, spaces and `. _ : / = + @ -`; keys starting with `aws:` or `bedrock-assets/` are "
        f"reserved; at most {job_options.MAX_USER_TAGS} (the project adds `bedrock-assets/partition` and "
        f"`bedrock-assets/shard` to every job; {job_options.MAX_TAGS} in all).",
    )

    @pydantic.field_validator("job_tags")
    @classmethod
    def _tags(cls, tags: dict[str, str]) -> dict[str, str]:
        problems = job_options.tag_problems(tags)
        if problems:
            raise Problems([(f"job_tags[{key!r}]" if key else "job_tags", message, NO_VALUE if bad is None else bad)
                            for key, message, bad in problems])
        return tags

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> "SpecFields":
        problems = _cross_field_problems(self)
        if problems:
            raise Problems(problems)
        return self


def _cross_field_problems(f: SpecFields) -> list[tuple[str, str, Any]]:
    """The rules that involve more than one field, or the model's provider; all of them."""
    out: list[tuple[str, str, Any]] = []
    if f.prompt is not None and f.prompt_id is not None:
        out.append(("prompt_id", "give prompt or prompt_id, not both", f.prompt_id))
    if f.prompt_id is not None and f.prompt_id not in prompts.PROMPT_TEMPLATES:
        near = difflib.get_close_matches(f.prompt_id, list(prompts.PROMPT_TEMPLATES), n=2)
        hint = f"did you mean {' or '.join(repr(n) for n in near)}? " if near else ""
        out.append(("prompt_id", f"unknown prompt_id; {hint}known: {sorted(prompts.PROMPT_TEMPLATES)}", f.prompt_id))
    if f.text_column is not None and (f.prompt is not None or f.prompt_id is not None):
        out.append(("text_column", "give a prompt (prompt or prompt_id) or text_column, not both: the prompt "
                    "would be sent and text_column ignored", f.text_column))
    if f.prompt is not None:
        from bedrock_assets.shards import InputValidationError, parse_template

        try:
            parse_template(f.prompt)
        except InputValidationError as exc:
            out.append(("prompt", str(exc), f.prompt))
    if f.min_records_per_job > f.max_records_per_job:
        out.append(("min_records_per_job", f"need {BEDROCK_MIN_RECORDS} <= min_records_per_job <= max_records_per_job "
                    f"({f.max_records_per_job})", f.min_records_per_job))
    elif f.on_demand_below is not None and not f.min_records_per_job <= f.on_demand_below <= f.max_records_per_job:
        out.append(("on_demand_below", f"must be within min_records_per_job..max_records_per_job "
                    f"({f.min_records_per_job}..{f.max_records_per_job})", f.on_demand_below))
    if f.hf_config is not None and f.hf_dataset is None:
        out.append(("hf_config", "needs hf_dataset (it names a configuration of that dataset)", f.hf_config))
    out += _model_problems(f)
    return out


def _model_problems(f: SpecFields) -> list[tuple[str, str, Any]]:
    """The model id is listed (or allowed unlisted with a recognised family), and its provider
    takes the system prompt and params: the same `providers.for_spec` jsonl_shards calls, run
    field by field so the message names the field at fault."""
    bare = SimpleNamespace(model_id=f.model_id, invocation_type=f.invocation_type, params={}, system=None)
    try:
        providers.for_spec(bare)
    except providers.ProviderError as exc:
        # The provider's message names the id and lists the supported families.
        return [("model_id", str(exc), NO_VALUE)]
    if not known_models.is_known(f.model_id) and not f.allow_unlisted_model_id:
        near = known_models.close_matches(f.model_id)
        hint = f"did you mean {' or '.join(repr(n) for n in near)}? " if near else ""
        return [("model_id", f"unknown model id: not in the package's list of known ids "
                 f"(bedrock_assets/providers/known_models.py, docs/models.md); {hint}For a model newer than the "
                 f"list, set `allow_unlisted_model_id: true` (its family is recognised)", f.model_id)]
    out: list[tuple[str, str, Any]] = []
    try:
        providers.for_spec(SimpleNamespace(**{**vars(bare), "system": f.system}))
    except providers.ProviderError as exc:
        return [("system", str(exc), NO_VALUE)]
    try:
        provider = providers.for_spec(f)
    except providers.ProviderError as exc:
        return [("params", str(exc), NO_VALUE)]
    if provider.kind == "text" and f.prompt is None and f.prompt_id is None and f.text_column is None:
        out.append(("prompt", f"{provider.family} is a text model: give prompt, prompt_id or text_column", NO_VALUE))
    if provider.kind == "embedding" and f.prompt is None and f.prompt_id is None and f.text_column is None:
        out.append(("text_column", f"{provider.family} embeds text: give text_column (or a prompt)", NO_VALUE))
    return out


@dataclasses.dataclass(frozen=True)
class BatchSpec:
    """A validated batch (or one built in code). Field meanings: `SpecFields`."""

    name: str
    model_id: str
    prompt: str | None = None  # inline template, `{column}` placeholders
    prompt_id: str | None = None  # key into bedrock_assets.prompts.PROMPT_TEMPLATES
    system: str | None = None  # system prompt for chat models
    text_column: str | None = None  # embedding models embed this column
    id_column: str | None = None  # use an existing unique column as the record id
    params: dict[str, Any] = dataclasses.field(default_factory=dict)  # max_tokens, dimensions...
    invocation_type: str = "InvokeModel"  # or "Converse"
    max_records_per_job: int = BEDROCK_MAX_RECORDS
    min_records_per_job: int = BEDROCK_MIN_RECORDS
    max_bytes_per_file: int = BEDROCK_MAX_FILE_BYTES
    skip_empty: bool = False  # drop rows whose text is empty/null instead of failing
    max_error_rate: float = 0.05  # asset check threshold on joined_results
    results_compression: str = "zstd"  # results.parquet codec: zstd (level 1), lz4, snappy or none
    timeout_hours: int | None = None  # Bedrock timeoutDurationInHours, 24..168; None: the resource's
    stuck_after_minutes: float = 360.0  # report a job still queued (Scheduled) after this long
    max_record_attempts: int = 3  # tries per record (first job + follow-ups) for transient errors
    budget_usd: float | None = None
    # Ask every request again even when the ledger has its answer (a run-config flag does the
    # same for one run: jsonl_shards' `fresh_answers`).
    fresh_answers: bool = False
    # Shards / remainders with fewer records than this are answered on-demand (InvokeModel /
    # Converse) instead of by a batch job; None = min_records_per_job (Bedrock's minimum).
    on_demand_below: int | None = None
    # Hugging Face source: the partition's input name is the split.
    hf_dataset: str | None = None  # hub id, or a local dataset folder
    hf_config: str | None = None
    max_rows: int | None = None  # take only the first N rows of the input
    allow_unlisted_model_id: bool = False  # model_id need not be in providers/known_models.py
    # Job options (job_options.py): over the BedrockBatch resource's; never part of the job identity.
    output_kms_key_id: str | None = None  # KMS key for the job outputs (s3EncryptionKeyId)
    vpc_config: job_options.VpcConfig | None = None  # subnets + security groups
    job_tags: dict[str, str] = dataclasses.field(default_factory=dict)  # merged over the deployment's

    @property
    def template(self) -> str | None:
        if self.prompt is not None:
            return self.prompt
        if self.prompt_id is not None:
            return prompts.get_template(self.prompt_id)
        return None

    @property
    def on_demand_threshold(self) -> int:
        """Shards and remainders with fewer records are answered on-demand, not by a batch job:
        `on_demand_below`, never below Bedrock's minimum job size (`min_records_per_job`)."""
        return max(self.on_demand_below or 0, self.min_records_per_job)

    @property
    def is_hf(self) -> bool:
        return self.hf_dataset is not None


def _parse_one(name: str, raw: Any, origin: str) -> tuple[BatchSpec | None, list[str]]:
    """The batch's spec, or its problems (one line each)."""
    where = f"{origin}: batch {name!r}"
    problems = []
    if not _BATCH_NAME.match(name):
        problems.append(f"{where}: name must match {_BATCH_NAME.pattern} (it becomes an S3 prefix)")
    if not isinstance(raw, dict):
        shape = "nothing (an empty entry)" if raw is None else f"{type(raw).__name__} {raw!r:.60}"
        return None, problems + [f"{where}: expected a mapping of fields (model_id: ..., prompt: ...), got {shape}"]
    try:
        fields = SpecFields.model_validate(raw)
    except pydantic.ValidationError as exc:
        return None, problems + problem_lines(exc, where, SpecFields)
    if problems:
        return None, problems
    # Attributes, not model_dump(): the nested VpcConfig stays a typed model.
    return BatchSpec(name=name, **{f: getattr(fields, f) for f in SpecFields.model_fields}), []


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping: PyYAML would keep the last one
    silently, so a batch pasted twice, or a field set twice, would run with whichever came last.
    Merge keys (`<<: *defaults`) may still be overridden by the mapping's own keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:  # an unhashable key: SafeLoader's own error says so
                continue
            if first != key_node.start_mark.line + 1:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first given on line {first})", key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def parse_specs(text: str, origin: str = "<string>") -> dict[str, BatchSpec]:
    """Every batch of a specs file, validated; SpecError listing every problem otherwise."""
    try:
        doc = yaml.load(text, Loader=_Loader) or {}
    except yaml.YAMLError as exc:
        raise SpecError(f"{origin}: not valid YAML: {' '.join(str(exc).split())}") from None
    batches = doc.get("batches") if isinstance(doc, dict) else None
    if not isinstance(batches, dict) or not batches:
        raise SpecError(f"{origin}: expected a top-level `batches:` mapping with at least one batch")
    # Other top-level keys would be ignored, so a mis-indented batch would vanish; `x-` keys are
    # allowed to hold YAML anchors shared by several batches.
    extra = [str(k) for k in doc if k != "batches" and not str(k).startswith("x-")]
    problems = [f"{origin}: unknown top-level key {k!r}: the file holds `batches:` (and `x-` keys for YAML "
                f"anchors); is a batch indented wrongly?" for k in extra]
    specs: dict[str, BatchSpec] = {}
    for name, raw in batches.items():
        spec, lines = _parse_one(str(name), raw, origin)
        problems += lines
        if spec is not None:
            specs[spec.name] = spec
    if problems:
        raise SpecError("\n".join(problems))
    return specs


def specs_path() -> Path:
    return Path(os.environ.get(settings.ENV_SPECS) or PACKAGED_SPECS)


def load_specs(path: str | Path | None = None) -> dict[str, BatchSpec]:
    p = Path(path) if path is not None else specs_path()
    try:
        text = p.read_text()
    except OSError as exc:
        raise SpecError(f"cannot read batch specs file {p}: {exc}") from exc
    specs = parse_specs(text, origin=str(p))
    base = p.parent
    # A relative local hf_dataset folder is relative to the specs file, so the packaged sample
    # works wherever the package is installed.
    for name, spec in specs.items():
        if spec.hf_dataset and spec.hf_dataset.startswith("./"):
            specs[name] = dataclasses.replace(spec, hf_dataset=str((base / spec.hf_dataset).resolve()))
    return specs


def get_spec(batch: str, path: str | Path | None = None) -> BatchSpec:
    specs = load_specs(path)
    try:
        return specs[batch]
    except KeyError:
        raise SpecError(f"unknown batch {batch!r}; batches in {path or specs_path()}: {sorted(specs)}") from None
