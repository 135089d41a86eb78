"""Batch specs: every malformed field is refused when the specs file is read (before any input is
touched or any job exists), with a message naming the file, the batch and the field."""

from __future__ import annotations

import pytest

from bedrock_assets.specs import RESULTS_CODECS, SpecError, parse_specs

ORIGIN = "team/batches.yaml"
GOOD = {"model_id": "anthropic.claude-3-haiku-20240307-v1:0", "prompt": "Summarise {text}"}


def _yaml(name: str, fields: dict) -> str:
    lines = [f"    {key}: {value!r}" if isinstance(value, str) else f"    {key}: {value}" for key, value in fields.items()]
    return "batches:\n  " + name + ":\n" + "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        pytest.param("Bad_Name", {}, "name must match", id="bad-name"),
        pytest.param("ok", {"prompt_template": "x"}, "unknown field `prompt_template` (did you mean `prompt_id` or `prompt`?)", id="unknown-field"),
        pytest.param("ok", {"model_id": None}, "field `model_id` is required", id="no-model"),
        pytest.param("ok", {"prompt_id": "question_answering"}, "field `prompt_id`: give prompt or prompt_id, not both", id="prompt-and-id"),
        pytest.param("ok", {"prompt": None, "prompt_id": "no_such_prompt"}, "field `prompt_id`: unknown prompt_id", id="unknown-prompt-id"),
        pytest.param("ok", {"invocation_type": "Stream"}, "field `invocation_type`: must be one of 'InvokeModel' or 'Converse'", id="invocation-type"),
        pytest.param("ok", {"min_records_per_job": 10}, "field `min_records_per_job`: must be >= 100", id="min-below-bedrock"),
        pytest.param("ok", {"max_records_per_job": 50}, "field `max_records_per_job`: must be >= 100", id="max-below-bedrock"),
        pytest.param("ok", {"min_records_per_job": 300, "max_records_per_job": 200}, "min_records_per_job <= max_records_per_job", id="min-above-max"),
        pytest.param("ok", {"timeout_hours": 12}, "field `timeout_hours`: must be within 24..168", id="timeout"),
        pytest.param("ok", {"max_record_attempts": 0}, "field `max_record_attempts`: must be >= 1", id="attempts"),
        pytest.param("ok", {"stuck_after_minutes": 0}, "field `stuck_after_minutes`: must be > 0", id="stuck"),
        pytest.param("ok", {"max_error_rate": 1.5}, "field `max_error_rate`: must be within 0..1", id="error-rate"),
        pytest.param("ok", {"max_bytes_per_file": 2_000_000_000}, "field `max_bytes_per_file`: must be within 1..1_000_000_000", id="file-bytes"),
        pytest.param("ok", {"results_compression": "gzip"}, "field `results_compression`: must be one of 'zstd', 'lz4', 'snappy' or 'none'", id="codec"),
    ],
)
def test_a_malformed_spec_names_the_file_batch_and_field(name, change, message):
    fields = {k: v for k, v in (GOOD | change).items() if v is not None}
    with pytest.raises(SpecError) as err:
        parse_specs(_yaml(name, fields), origin=ORIGIN)
    assert str(err.value).startswith(f"{ORIGIN}: batch {name!r}")
    assert message in str(err.value)


@pytest.mark.parametrize("codec", RESULTS_CODECS)
def test_results_compression_accepts_each_codec(codec):
    spec = parse_specs(_yaml("ok", GOOD | {"results_compression": codec}), origin=ORIGIN)["ok"]
    assert spec.results_compression == codec


def test_defaults_of_a_minimal_spec():
    spec = parse_specs(_yaml("ok", GOOD), origin=ORIGIN)["ok"]
    assert (spec.results_compression, spec.max_error_rate, spec.skip_empty) == ("zstd", 0.05, False)


@pytest.mark.parametrize("text", ["", "batches: {}\n", "batches: [a]\n", "- 1\n"])
def test_a_specs_file_without_batches_is_refused(text):
    with pytest.raises(SpecError, match="expected a top-level `batches:` mapping"):
        parse_specs(text, origin=ORIGIN)
