"""`bedrock-assets add <batch> <local file | s3 uri | hf split>`: register one input as a partition.

A local file is uploaded to `s3://$BEDROCK_ASSETS_BUCKET/inputs/<batch>/<name>`; an S3 object
elsewhere is copied there (so the partition's input is immutable from the pipeline's view); a
Hugging Face split is registered as `<batch>/<split>` for a batch whose spec names `hf_dataset`.
The partition is added to the Dagster instance at $DAGSTER_HOME.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bedrock_assets import settings
from bedrock_assets.specs import get_spec
from bedrock_assets.storage import PartitionKeyError, check_input_name, unsupported_type_problem


def stage_input(batch: str, source: str, s3=None, name: str | None = None) -> str:
    """Put `source` where the pipeline reads it and return the partition key."""
    import boto3

    spec = get_spec(batch)
    if spec.is_hf:
        split = check_input_name(name or source, batch)
        return f"{batch}/{split}"
    s3 = s3 or boto3.client("s3", region_name=settings.region())
    bucket = settings.bucket()
    if source.startswith("s3://"):
        src_bucket, _, src_key = source[5:].partition("/")
        base = name or src_key.rsplit("/", 1)[-1]
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no such input file: {path}")
        base = name or path.name
    # The same rule and words as the sensor and raw_dataset, checked before anything is uploaded.
    check_input_name(base, batch)
    problem = unsupported_type_problem(base)
    if problem:
        raise PartitionKeyError(f"{source}: {problem}")
    key = f"inputs/{batch}/{base}"
    if source.startswith("s3://"):
        if (src_bucket, src_key) != (bucket, key):
            s3.copy({"Bucket": src_bucket, "Key": src_key}, bucket, key)
    else:
        s3.upload_file(str(source), bucket, key)
    return f"{batch}/{base}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bedrock-assets add", description=__doc__.splitlines()[0])
    parser.add_argument("batch", help="batch name from the specs file")
    parser.add_argument("source", help="local file, s3://bucket/key, or a Hugging Face split name")
    parser.add_argument("--name", help="input name to use (default: the file name / split)")
    args = parser.parse_args(argv)
    from bedrock_assets import cli_env

    def body() -> int:
        spec = get_spec(args.batch)  # unknown batch or bad specs file: said before anything is uploaded
        # DAGSTER_HOME (default ./.dagster_home), region, credentials and bucket are checked
        # before the upload, so a mistake never leaves an uploaded file without its partition.
        cli_env.ensure_dagster_home()
        s3 = None if spec.is_hf else cli_env.prepare_aws().s3  # a Hugging Face split uploads nothing
        key = stage_input(args.batch, args.source, s3=s3, name=args.name)
        import dagster as dg

        from bedrock_assets.runner import register_partitions

        with dg.DagsterInstance.get() as instance:
            register_partitions(instance, [key])
        print(f"registered partition {key}")
        return 0

    return cli_env.run_main(body)
