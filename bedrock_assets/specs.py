"""Batch specs: the declarative file that names each batch (model, prompt, parameters, limits).

The file is YAML (`batches:` mapping name -> spec). Its path comes from BEDROCK_ASSETS_SPECS,
default the packaged `batches.yaml`. Specs are parsed strictly: an unknown key is an error, so a
typo (`max_token`) fails loudly instead of silently running with defaults.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

import yaml

from bedrock_assets import prompts, settings

PACKAGED_SPECS = Path(__file__).with_name("batches.yaml")

# Bedrock's quotas (docs/bedrock-facts.md §3): 100 minimum records per job (not adjustable), 50,000 records per
# job and per file (adjustable), 1 GB per input file (not adjustable).
BEDROCK_MIN_RECORDS = 100
BEDROCK_MAX_RECORDS = 50_000
BEDROCK_MAX_FILE_BYTES = 1_000_000_000

_BATCH_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")


class SpecError(ValueError):
    """A batch spec is malformed; the message names the file, batch and field."""


# Parquet codecs for results.parquet, smallest file first. zstd-1 is the default because the file
# goes to S3 and is read back by analytics; `none` makes joined_results ~1.3x faster for 2.3x the
# bytes (bench/RESULTS.md).
RESULTS_CODECS = ("zstd", "lz4", "snappy", "none")


@dataclasses.dataclass(frozen=True)
class BatchSpec:
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


_FIELDS = {f.name for f in dataclasses.fields(BatchSpec)}


def _parse_one(name: str, raw: Any, origin: str) -> BatchSpec:
    where = f"{origin}: batch {name!r}"
    if not _BATCH_NAME.match(name):
        raise SpecError(f"{where}: name must match {_BATCH_NAME.pattern} (it becomes an S3 prefix)")
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: expected a mapping, got {type(raw).__name__}")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise SpecError(f"{where}: unknown field(s) {sorted(unknown)}; known: {sorted(_FIELDS - {'name'})}")
    if "model_id" not in raw:
        raise SpecError(f"{where}: model_id is required")
    if raw.get("prompt") is not None and raw.get("prompt_id") is not None:
        raise SpecError(f"{where}: give prompt or prompt_id, not both")
    if raw.get("prompt_id") is not None and raw["prompt_id"] not in prompts.PROMPT_TEMPLATES:
        raise SpecError(
            f"{where}: unknown prompt_id {raw['prompt_id']!r}; known: {sorted(prompts.PROMPT_TEMPLATES)}"
        )
    if raw.get("invocation_type", "InvokeModel") not in ("InvokeModel", "Converse"):
        raise SpecError(f"{where}: invocation_type must be InvokeModel or Converse")
    spec = BatchSpec(name=name, **raw)
    if not BEDROCK_MIN_RECORDS <= spec.min_records_per_job <= spec.max_records_per_job:
        raise SpecError(
            f"{where}: need {BEDROCK_MIN_RECORDS} <= min_records_per_job <= max_records_per_job, "
            f"got {spec.min_records_per_job} / {spec.max_records_per_job}"
        )
    if spec.on_demand_below is not None and not (
        isinstance(spec.on_demand_below, int) and spec.min_records_per_job <= spec.on_demand_below <= spec.max_records_per_job
    ):
        raise SpecError(
            f"{where}: on_demand_below must be a whole number within min_records_per_job..max_records_per_job "
            f"({spec.min_records_per_job}..{spec.max_records_per_job}), got {spec.on_demand_below!r}"
        )
    if not isinstance(spec.fresh_answers, bool):
        raise SpecError(f"{where}: fresh_answers must be true or false, got {spec.fresh_answers!r}")
    if spec.timeout_hours is not None and not 24 <= spec.timeout_hours <= 168:
        raise SpecError(f"{where}: timeout_hours must be 24..168 (Bedrock's range)")
    if spec.max_record_attempts < 1:
        raise SpecError(f"{where}: max_record_attempts must be >= 1")
    if spec.stuck_after_minutes <= 0:
        raise SpecError(f"{where}: stuck_after_minutes must be > 0")
    if not 0.0 <= spec.max_error_rate <= 1.0:
        raise SpecError(f"{where}: max_error_rate must be within 0..1")
    if spec.results_compression not in RESULTS_CODECS:
        raise SpecError(f"{where}: results_compression must be one of {', '.join(RESULTS_CODECS)}")
    if spec.max_bytes_per_file > BEDROCK_MAX_FILE_BYTES:
        raise SpecError(f"{where}: max_bytes_per_file cannot exceed Bedrock's 1 GB file limit")
    return spec


def parse_specs(text: str, origin: str = "<string>") -> dict[str, BatchSpec]:
    doc = yaml.safe_load(text) or {}
    batches = doc.get("batches") if isinstance(doc, dict) else None
    if not isinstance(batches, dict) or not batches:
        raise SpecError(f"{origin}: expected a top-level `batches:` mapping with at least one batch")
    return {str(name): _parse_one(str(name), raw, origin) for name, raw in batches.items()}


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
