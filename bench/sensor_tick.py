#!/usr/bin/env python
"""One tick of the `new_input_files` sensor with N objects under inputs/ (default 10,000).

    .venv/bin/python bench/sensor_tick.py [--objects 10000] [--threads 8]

Starts the emulator in process on a free loopback port, puts N small CSVs under
s3://<fresh bucket>/inputs/bench/, then times, against a real sqlite instance in a temp dir:

  first tick   the sensor function as the code server runs it: list every object, pick the new
               ones, build N run requests + one dynamic-partitions request (what must fit in
               Dagster's 60 s sensor evaluation timeout)
  serialize    serializing that result, as the code server does to send it to the daemon
  partitions   adding the N partitions to the instance (the daemon's first step with the result)
  next tick    a tick with the cursor and nothing new (every later tick: S3 still lists all N)
  list only    the S3 listing alone (dagster-aws get_objects), the bulk of both ticks

and prints one `RESULT {json}` line. Not a test: the figure depends on the machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import textwrap
import time
import uuid
from concurrent.futures import ThreadPoolExecutor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=8, help="uploader threads")
    args = parser.parse_args(argv)

    import boto3
    import dagster as dg
    from dagster._core.definitions.sensor_definition import SensorExecutionData
    from dagster._serdes import serialize_value
    from dagster_aws.s3 import S3Resource
    from dagster_aws.s3.sensor import get_objects

    from bedrock_assets.emulator import EmulatorConfig, run_emulator
    from bedrock_assets.partitions import inputs_partitions
    from bedrock_assets.resources import ProjectStorage
    from bedrock_assets.sensors import INPUTS_PREFIX, new_input_files

    tmp = tempfile.mkdtemp(prefix="sensor-tick-")
    specs = os.path.join(tmp, "batches.yaml")
    with open(specs, "w") as fh:
        fh.write(textwrap.dedent("""\
            batches:
              bench:
                model_id: anthropic.claude-3-haiku-20240307-v1:0
                prompt: "Tell me a joke about {topic}."
            """))
    with run_emulator(EmulatorConfig(host="127.0.0.1", port=0)) as emu:
        bucket = f"ba-bench-{uuid.uuid4().hex[:8]}"
        # Dummy credentials on purpose: this never talks to real AWS.
        os.environ.update(
            AWS_ENDPOINT_URL=emu.endpoint_url, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
            AWS_REGION="us-east-1", BEDROCK_ASSETS_BUCKET=bucket, BEDROCK_ASSETS_SPECS=specs,
        )
        for key in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
            os.environ.pop(key, None)
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=bucket)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(
                lambda i: s3.put_object(Bucket=bucket, Key=f"inputs/bench/f{i:06d}.csv", Body=f"topic\nt{i}\n".encode()),
                range(args.objects),
            ))
        upload_s = time.perf_counter() - t0
        print(f"uploaded {args.objects} objects in {upload_s:.1f}s", file=sys.stderr)

        storage = ProjectStorage(s3=S3Resource())
        os.makedirs(os.path.join(tmp, "home"))
        with dg.instance_for_test(temp_dir=os.path.join(tmp, "home")) as instance:
            def tick(cursor):
                with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"storage": storage}) as ctx:
                    start = time.perf_counter()
                    result = new_input_files(ctx)
                    return result, time.perf_counter() - start

            first, first_s = tick(None)
            assert len(first.run_requests) == args.objects, len(first.run_requests)
            t0 = time.perf_counter()
            # What the code server sends back to the daemon over gRPC for this tick.
            payload = serialize_value(SensorExecutionData(
                run_requests=first.run_requests, cursor=first.cursor,
                dynamic_partitions_requests=first.dynamic_partitions_requests,
            ))
            serialize_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            for request in first.dynamic_partitions_requests:
                instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
            partitions_s = time.perf_counter() - t0
            assert len(instance.get_dynamic_partitions(inputs_partitions.name)) == args.objects
            second, next_s = tick(first.cursor)
            assert not second.run_requests
            # The S3 listing alone (10 pages of 1,000 keys), to see how much of a tick it is.
            t0 = time.perf_counter()
            listed = get_objects(bucket, prefix=INPUTS_PREFIX, client=storage.client())
            list_s = time.perf_counter() - t0
            assert len(listed) == args.objects

    result = {
        "objects": args.objects,
        "first_tick_s": round(first_s, 2),
        "serialize_s": round(serialize_s, 2),
        "payload_mb": round(len(payload) / 1e6, 1),
        "add_partitions_s": round(partitions_s, 2),
        "next_tick_s": round(next_s, 2),
        "list_only_s": round(list_s, 2),
        "upload_s": round(upload_s, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}",
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
