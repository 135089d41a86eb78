"""Reading inputs and Bedrock outputs from s3:// URIs with polars, against moto's S3 server."""

import json

import boto3
import polars as pl
import pytest

from bedrock_assets import providers, records, results

from dp_helpers import make_spec

moto_server = pytest.importorskip("moto.server")


@pytest.fixture(scope="module")
def s3():
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    client.create_bucket(Bucket="dp-test")
    opts = {"aws_endpoint_url": endpoint, "aws_allow_http": "true", "aws_region": "us-east-1",
            "aws_access_key_id": "test", "aws_secret_access_key": "test"}
    yield client, opts
    server.stop()


@pytest.mark.parametrize("ext", [".csv", ".parquet", ".jsonl"])
def test_read_input_from_s3(s3, tmp_path, ext):
    client, opts = s3
    df = pl.DataFrame({"topic": ["cats", "ünï"], "n": ["1", "2"]})
    local = tmp_path / f"in{ext}"
    {".csv": df.write_csv, ".parquet": df.write_parquet, ".jsonl": df.write_ndjson}[ext](local)
    client.upload_file(str(local), "dp-test", f"inputs/t/in{ext}")
    got = records.assign_record_ids(records.read_input(f"s3://dp-test/inputs/t/in{ext}", storage_options=opts)).collect()
    assert got["topic"].to_list() == ["cats", "ünï"] and got["record_id"].to_list() == ["R0000000000", "R0000000001"]


def test_read_outputs_and_manifests_from_s3(s3):
    client, opts = s3
    lines = [
        {"recordId": "R0000000001", "modelInput": {}, "modelOutput": {
            "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 3, "output_tokens": 1}}},
        {"recordId": "R0000000000", "modelInput": {}, "error": {"errorCode": 400, "errorMessage": "bad"}},
    ]
    body = "".join(json.dumps(d) + "\n" for d in lines)
    client.put_object(Bucket="dp-test", Key="outputs/t/shard-00000.jsonl/job1/shard-00000.jsonl.out", Body=body.encode())
    client.put_object(Bucket="dp-test", Key="outputs/t/shard-00000.jsonl/job1/manifest.json.out",
                      Body=json.dumps({"totalRecordCount": 2, "successRecordCount": 1, "errorRecordCount": 1,
                                       "inputTokenCount": 3, "outputTokenCount": 1}).encode())
    uris = ["s3://dp-test/outputs/t/shard-00000.jsonl/job1/shard-00000.jsonl.out",
            "s3://dp-test/outputs/t/shard-00000.jsonl/job1/manifest.json.out"]
    df = results.read_outputs(uris, providers.for_spec(make_spec()), storage_options=opts).collect().sort("record_id")
    assert df.select("record_id", "response", "error_code").rows() == [("R0000000000", None, "400"), ("R0000000001", "hi", None)]
    totals = results.read_manifests(uris, storage_options=opts)
    assert (totals.records, totals.success, totals.error, totals.input_tokens) == (2, 1, 1, 3)
