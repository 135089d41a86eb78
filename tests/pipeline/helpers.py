"""Test helpers for pipeline tests: staging inputs, reading results and check outcomes."""

from __future__ import annotations

import io
import json

import dagster as dg
import polars as pl


def put_input(env, batch: str, name: str, frame: pl.DataFrame) -> str:
    buf = io.BytesIO()
    if name.endswith(".csv"):
        frame.write_csv(buf)
    elif name.endswith(".parquet"):
        frame.write_parquet(buf)
    else:
        frame.write_ndjson(buf)
    env.s3.put_object(Bucket=env.bucket, Key=f"inputs/{batch}/{name}", Body=buf.getvalue())
    return f"{batch}/{name}"


def _results_body(env, partition: str) -> bytes:
    return env.s3.get_object(Bucket=env.bucket, Key=f"results/{partition}/results.parquet")["Body"].read()


def read_results(env, partition: str) -> pl.DataFrame:
    return pl.read_parquet(io.BytesIO(_results_body(env, partition)))


def results_codecs(env, partition: str, answers_only: bool = False) -> set[str]:
    """Parquet codecs of the columns of a partition's results.parquet (e.g. {"ZSTD"}); with
    `answers_only`, of the columns joined_results adds, i.e. not in records.parquet (the records'
    columns are copied encoded, zstd-1 as raw_dataset wrote them)."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(io.BytesIO(_results_body(env, partition))).metadata
    skip = set(pq.read_schema(io.BytesIO(_records_body(env, partition))).names) if answers_only else set()
    return {
        meta.row_group(g).column(c).compression
        for g in range(meta.num_row_groups)
        for c in range(meta.num_columns)
        if meta.row_group(g).column(c).path_in_schema.split(".")[0] not in skip
    }


def _records_body(env, partition: str) -> bytes:
    return env.s3.get_object(Bucket=env.bucket, Key=f"records/{partition}/records.parquet")["Body"].read()


def read_json(env, key: str):
    return json.loads(env.s3.get_object(Bucket=env.bucket, Key=key)["Body"].read())


def check_outcomes(instance: dg.DagsterInstance, run_id: str) -> dict[str, bool]:
    outcomes = {}
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        data = record.dagster_event.event_specific_data
        outcomes[data.check_name] = data.passed
    return outcomes


def failed_steps(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    out = {}
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        error, messages = record.dagster_event.event_specific_data.error, []
        while error is not None:  # the cause chain holds the step's own message
            messages.append(error.message)
            error = error.cause
        out[record.step_key] = "\n".join(messages)
    return out


def jobs_for_bucket(env) -> list[dict]:
    """Every job in the emulator whose input lives in this test's bucket."""
    import boto3

    client = boto3.client("bedrock", region_name="us-east-1")
    jobs = []
    for page in client.get_paginator("list_model_invocation_jobs").paginate():
        for job in page["invocationJobSummaries"]:
            uri = job["inputDataConfig"]["s3InputDataConfig"]["s3Uri"]
            if uri.startswith(f"s3://{env.bucket}/"):
                jobs.append(job)
    return jobs
