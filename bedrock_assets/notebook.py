"""DataFrame in, DataFrame out: run a batch from a notebook or script through the same Dagster
assets as `bedrock-assets run`, the UI and the sensor.

    import polars as pl
    from bedrock_assets import run_batch

    spec = {"model_id": "anthropic.claude-3-haiku-20240307-v1:0",
            "prompt": "Tell me a joke about {topic}.", "params": {"max_tokens": 200}}
    answers = run_batch(pl.DataFrame({"topic": ["cats", "tea"]}), spec, emulator=True)

`data` is a polars or pandas DataFrame (pandas in, pandas out), or anything `bedrock-assets run`
takes (a local path, an s3:// URI, a Hugging Face split). `spec` is a batch name from the specs
file, or one batch's spec as a dict (validated like batches.yaml). The result has one row per
input row: the input columns, `record_id`, the answer columns and `status`.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Mapping

NOTEBOOK_BATCH = "notebook"


def _frame_to_parquet(data: Any, folder: Path) -> tuple[Path, bool]:
    """Write a polars/pandas frame to a parquet file named by its content (same frame, same
    partition: a re-run costs nothing, the answers come from the ledger). Returns (path, was_pandas)."""
    import polars as pl

    was_pandas = type(data).__module__.startswith("pandas")
    frame = pl.from_pandas(data) if was_pandas else data
    if not isinstance(frame, pl.DataFrame):
        raise TypeError(f"data must be a polars or pandas DataFrame, or a path / s3 uri / split name; got {type(data).__name__}")
    tmp = folder / "data.parquet"
    frame.write_parquet(tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()[:16]
    path = folder / f"df-{digest}.parquet"
    tmp.rename(path)
    return path, was_pandas


def run_batch(
    data: Any,
    spec: str | Mapping[str, Any],
    *,
    batch: str | None = None,
    specs: str | os.PathLike[str] | None = None,
    name: str | None = None,
    emulator: bool = False,
    fresh_answers: bool = False,
    progress: bool = True,
):
    """Run `spec` over `data` and return the results (polars DataFrame; pandas when given pandas).

    - `spec`: a batch name (from `specs`, $BEDROCK_ASSETS_SPECS or the packaged batches.yaml) or a
      dict with one batch's fields; a dict runs as batch `batch` (default "notebook").
    - `emulator=True` starts a local emulator for this call (no AWS); otherwise the environment
      decides (AWS_ENDPOINT_URL for an emulator you run, else AWS), as for the CLI.
    - The environment is restored afterwards; DAGSTER_HOME defaults to ./.dagster_home, where the
      run can be looked at (`dagster dev`).
    Raises `bedrock_assets.cli_env.UserError` for configuration mistakes and `RunFailed` (naming
    the failed step) when the run does not succeed.
    """
    import yaml

    from bedrock_assets import cli_env, settings
    from bedrock_assets.run_cli import execute

    with cli_env.restored_environ(), tempfile.TemporaryDirectory(prefix="bedrock-assets-nb-") as tmp:
        folder = Path(tmp)
        if isinstance(spec, Mapping):
            batch = batch or NOTEBOOK_BATCH
            specs_file = folder / "batches.yaml"
            specs_file.write_text(yaml.safe_dump({"batches": {batch: dict(spec)}}, sort_keys=False))
            os.environ[settings.ENV_SPECS] = str(specs_file)
        else:
            batch = spec
            if specs is not None:
                os.environ[settings.ENV_SPECS] = str(Path(specs).expanduser().resolve())
        was_pandas = False
        if isinstance(data, (str, os.PathLike)):
            source = os.fspath(data)
        else:
            path, was_pandas = _frame_to_parquet(data, folder)
            source = str(path)
        with cli_env.local_emulator() if emulator else _no_emulator():
            results, _summary = execute(batch, source, name=name, fresh_answers=fresh_answers,
                                        progress=sys.stderr if progress else None)
    return results.to_pandas() if was_pandas else results


class _no_emulator:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return None
