"""Amazon Bedrock batch inference as partitioned Dagster assets.

Data flows: inputs -> records (raw_dataset) -> shards (jsonl_shards) -> jobs (batch_job_outputs)
-> results (joined_results). `bedrock_assets.emulator` stands in for S3 + Bedrock locally and
imports nothing from the pipeline. `bedrock_assets.run_batch` runs a DataFrame through the assets
from a notebook (bedrock_assets/notebook.py).
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy: `import bedrock_assets` (and Dagster loading `defs`) stays free of the notebook API's imports.
    if name == "run_batch":
        from bedrock_assets.notebook import run_batch

        return run_batch
    raise AttributeError(f"module 'bedrock_assets' has no attribute {name!r}")
