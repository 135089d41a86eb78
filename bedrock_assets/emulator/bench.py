"""Measure a 50,000-record Titan V2 embedding job end to end (docs/emulator.md quotes the figure).

    .venv/bin/python -m bedrock_assets.emulator.bench [--records 50000] [--dimensions 1024] [--embedding-engine hash]

Starts an in-process emulator, writes the JSONL through S3 with boto3, creates the job with boto3,
polls until it ends and reads the `.out` back; prints the seconds from create to Completed.
"""

from __future__ import annotations

import argparse
import json
import time

import boto3

from .config import EmulatorConfig
from .runner import run_emulator

WORDS = ("alpha beta gamma delta river mountain quarterly revenue cat dog market model batch "
         "inference token vector cloud storage emulator record manifest job").split()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--dimensions", type=int, default=1024, choices=(256, 512, 1024))
    parser.add_argument("--embedding-engine", default="hash", choices=("hash", "minilm"))
    args = parser.parse_args(argv)
    config = EmulatorConfig(port=0, max_records=max(args.records, 50_000), embedding_engine=args.embedding_engine)
    with run_emulator(config) as emulator:
        session = dict(endpoint_url=emulator.endpoint_url, region_name="us-east-1",
                       aws_access_key_id="bench", aws_secret_access_key="bench")
        s3 = boto3.client("s3", **session)
        bedrock = boto3.client("bedrock", **session)
        s3.create_bucket(Bucket="bench-bucket")
        lines = []
        for index in range(args.records):
            text = " ".join(WORDS[(index * 7 + step * 3) % len(WORDS)] for step in range(12 + index % 20))
            lines.append(json.dumps({"recordId": f"R{index:010d}",
                                     "modelInput": {"inputText": f"{text} #{index}", "dimensions": args.dimensions}}))
        s3.put_object(Bucket="bench-bucket", Key="in/records.jsonl", Body="\n".join(lines).encode())
        started = time.monotonic()
        arn = bedrock.create_model_invocation_job(
            jobName="bench", roleArn="arn:aws:iam::123456789012:role/bench",
            modelId="amazon.titan-embed-text-v2:0",
            inputDataConfig={"s3InputDataConfig": {"s3Uri": "s3://bench-bucket/in/records.jsonl"}},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": "s3://bench-bucket/out/"}},
        )["jobArn"]
        while True:
            job = bedrock.get_model_invocation_job(jobIdentifier=arn)
            if job["status"] in ("Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"):
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        job_id = arn.rsplit("/", 1)[1]
        manifest = json.loads(s3.get_object(Bucket="bench-bucket", Key=f"out/{job_id}/manifest.json.out")["Body"].read())
        size = s3.head_object(Bucket="bench-bucket", Key=f"out/{job_id}/records.jsonl.out")["ContentLength"]
        print(f"status={job['status']} records={manifest['successRecordCount']}/{manifest['totalRecordCount']} "
              f"dimensions={args.dimensions} engine={args.embedding_engine} output={size / 1e6:.0f} MB create->{job['status']}={elapsed:.1f}s")
    return 0 if job["status"] == "Completed" else 1


if __name__ == "__main__":
    raise SystemExit(main())
