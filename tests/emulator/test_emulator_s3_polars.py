"""S3 through the single endpoint: boto3 and polars (object_store, path-style over http)."""

from __future__ import annotations

import json

import polars as pl


def storage_options(harness) -> dict[str, str]:
    return {
        "aws_endpoint_url": harness.emulator.endpoint_url,
        "aws_allow_http": "true",
        "aws_access_key_id": "test",
        "aws_secret_access_key": "test",
        "aws_region": "us-west-2",
    }


def test_polars_writes_and_reads_parquet_and_csv(harness):
    frame = pl.DataFrame({"record_id": ["R0000000001", "R0000000002"], "value": [1.5, 2.5]})
    parquet_uri = f"s3://{harness.bucket}/records/sample/records.parquet"
    frame.write_parquet(parquet_uri, storage_options=storage_options(harness))
    assert pl.read_parquet(parquet_uri, storage_options=storage_options(harness)).equals(frame)
    assert pl.scan_parquet(parquet_uri, storage_options=storage_options(harness)).collect().equals(frame)

    harness.s3.put_object(Bucket=harness.bucket, Key="inputs/topics.csv", Body=b"topic\ncats\ndogs\n")
    topics = pl.read_csv(f"s3://{harness.bucket}/inputs/topics.csv", storage_options=storage_options(harness))
    assert topics["topic"].to_list() == ["cats", "dogs"]
    head = harness.s3.head_object(Bucket=harness.bucket, Key="records/sample/records.parquet")
    assert head["ContentLength"] > 0


def test_polars_reads_job_output(harness):
    records = harness.records(6, lambda i: {"inputText": f"text {i}", "dimensions": 256})
    arn = harness.create_job(harness.write_jsonl("in/input.jsonl", records), model_id="amazon.titan-embed-text-v2:0")
    harness.wait(arn)
    job_id = arn.rsplit("/", 1)[1]
    frame = pl.read_ndjson(f"s3://{harness.bucket}/out/{job_id}/input.jsonl.out", storage_options=storage_options(harness))
    assert frame.height == 6
    assert frame["modelOutput"].struct.field("embedding").list.len().to_list() == [256] * 6
    manifest = json.loads(harness.s3.get_object(Bucket=harness.bucket, Key=f"out/{job_id}/manifest.json.out")["Body"].read())
    assert manifest["successRecordCount"] == 6


def test_aws_endpoint_url_points_every_client_at_the_emulator(harness, monkeypatch):
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", harness.emulator.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "anything")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "anything")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    s3 = boto3.client("s3")
    s3.put_object(Bucket=harness.bucket, Key="env/check.txt", Body=b"ok")
    assert s3.get_object(Bucket=harness.bucket, Key="env/check.txt")["Body"].read() == b"ok"
    assert "invocationJobSummaries" in boto3.client("bedrock").list_model_invocation_jobs()
    reply = boto3.client("bedrock-runtime").converse(
        modelId="amazon.nova-micro-v1:0", messages=[{"role": "user", "content": [{"text": "hi"}]}])
    assert reply["output"]["message"]["content"][0]["text"]


def test_dagster_aws_s3_resource(harness):
    from dagster_aws.s3 import S3Resource

    resource = S3Resource(endpoint_url=harness.emulator.endpoint_url, region_name="us-west-2",
                          aws_access_key_id="test", aws_secret_access_key="test")
    client = resource.get_client()
    client.put_object(Bucket=harness.bucket, Key="dagster/hello.txt", Body=b"hello")
    assert harness.s3.get_object(Bucket=harness.bucket, Key="dagster/hello.txt")["Body"].read() == b"hello"
