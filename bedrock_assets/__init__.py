"""Amazon Bedrock batch inference as partitioned Dagster assets.

Data flows: inputs -> records (raw_dataset) -> shards (jsonl_shards) -> jobs (batch_job_outputs)
-> results (joined_results). `bedrock_assets.emulator` stands in for S3 + Bedrock locally and
imports nothing from the pipeline.
"""

__version__ = "0.1.0"
