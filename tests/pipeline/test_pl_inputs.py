"""Awkward input files and names through the real pipeline: a sqlite Dagster instance, the
emulator's S3 and Bedrock over HTTP. Each case either succeeds with every input row and value in
results.parquet (read back and compared column by column to the input) or fails before any
Bedrock job, with no shard uploaded, and a message naming the file (and line / row / column).
One emulator, bucket and instance serve the whole table (one partition per case) to keep it lean;
jobs are counted from the emulator's own job list."""

from __future__ import annotations

import dataclasses
import json
import re
import textwrap
import uuid
from types import SimpleNamespace

import dagster as dg
import polars as pl
import pytest
from awkward_inputs import all_types
from emulator_env import point_at_emulator
from polars.testing import assert_frame_equal

from bedrock_assets.runner import materialize_partition
from bedrock_assets.storage import input_folder

from .helpers import failed_steps, jobs_for_bucket

SPECS = """
batches:
  t:
    model_id: anthropic.claude-3-haiku-20240307-v1:0
    prompt: "Say something about {topic}."
    params: {max_tokens: 50}
"""


@pytest.fixture(scope="module")
def pipe(emulator, tmp_path_factory):
    """One bucket, specs file and Dagster instance for every case of this module."""
    tmp = tmp_path_factory.mktemp("inputs")
    bucket = f"ba-inputs-{uuid.uuid4().hex[:12]}"
    specs = tmp / "batches.yaml"
    specs.write_text(textwrap.dedent(SPECS))
    with pytest.MonkeyPatch.context() as mp:
        _, s3 = point_at_emulator(mp, emulator, bucket, BEDROCK_ASSETS_SPECS=str(specs))
        home = tmp / "dagster_home"
        home.mkdir()
        with dg.instance_for_test(temp_dir=str(home), overrides={"concurrency": {"pools": {"default_limit": 20}}}) as instance:
            yield SimpleNamespace(bucket=bucket, s3=s3, instance=instance, emulator=emulator)


def _late_jsonl() -> tuple[bytes, pl.DataFrame]:
    n = 10_050
    rows = [{"topic": f"t{i}", "n": i, "tags": [f"a{i}"], "m": {"k": i, "s": "v"}} for i in range(n)]
    rows[-1]["late"] = "only here"  # a key first seen after line 10,000
    rows[-2]["n"] = "not a number"  # a type that changes late
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    expect = pl.DataFrame({
        "topic": [f"t{i}" for i in range(n)],
        "n": [str(i) for i in range(n - 2)] + ["not a number", str(n - 1)],
        "tags": [[f"a{i}"] for i in range(n)],
        "m": [{"k": i, "s": "v"} for i in range(n)],
        "late": [None] * (n - 1) + ["only here"],
    })
    return body, expect


def _parquet(frame: pl.DataFrame) -> bytes:
    import io

    buf = io.BytesIO()
    frame.write_parquet(buf)
    return buf.getvalue()


@dataclasses.dataclass
class Case:
    id: str
    name: str
    data: bytes | None  # None: the partition is registered but its file is not in S3
    expect: pl.DataFrame | None = None
    error: str | None = None
    step: str = "raw_dataset"  # the step that must refuse it


LATE_BODY, LATE_EXPECT = _late_jsonl()
WIDE = pl.DataFrame({"topic": ["a", "b"], **{f"c{i:03d}": [str(i), None] for i in range(500)}})
CASES = [
    Case("name-spaces-parentheses", "my topics (1).csv", b"topic,n\ncats,1\n\"dogs, big\",2\n",
         expect=pl.DataFrame({"topic": ["cats", "dogs, big"], "n": ["1", "2"]})),
    Case("name-unicode-hash-question-late-jsonl", "café 東京 #1?.jsonl", LATE_BODY, expect=LATE_EXPECT),
    Case("name-glob-chars-every-parquet-type", "q#1?[x]*.parquet", _parquet(all_types()), expect=all_types()),
    Case("name-percent-plus-dots-crlf-bom", "50%+off.v2.final.csv", b'\xef\xbb\xbftopic\r\ncats\r\n"two\r\nlines"\r\n',
         expect=pl.DataFrame({"topic": ["cats", "two\r\nlines"]})),
    Case("name-very-long", "n" * 300 + ".csv", b"topic\ncats\n", expect=pl.DataFrame({"topic": ["cats"]})),
    Case("wide-rows-500-columns", "wide.parquet", _parquet(WIDE), expect=WIDE),
    Case("name-with-comma", "a,b.csv", b"topic\ncats\n", error=r"contains ','"),
    Case("missing-object", "gone.csv", None, error="no such file"),
    Case("latin1-csv", "latin1.csv", "topic\ncats\ncafé\n".encode("latin-1"), error=r"not UTF-8: byte 0xE9 at line 3, column 4"),
    Case("ragged-csv", "ragged.csv", b"topic,n\ncats,1\ndogs,2,3\n", error=r"line 3 \(row 1\) has 3 fields but the header \(line 1\) has 2"),
    Case("malformed-jsonl", "bad.jsonl", b'{"topic":"a"}\n{"topic": bad}\n', error=r"line 2 \(row 1\), character 11: not valid JSON"),
    Case("truncated-parquet", "cut.parquet", _parquet(pl.DataFrame({"topic": ["x"] * 500}))[:300], error="not a readable Parquet file"),
    Case("header-only-csv", "empty.csv", b"topic\n", error="a header but no rows"),
    Case("result-column-name", "clash.csv", b"topic,status\ncats,new\n", error=r"input column\(s\) 'status'", step="jsonl_shards"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_input_through_the_pipeline(pipe, case: Case):
    key = f"t/{case.name}"
    if case.data is not None:
        pipe.s3.put_object(Bucket=pipe.bucket, Key=f"inputs/{key}", Body=case.data)
    jobs_before = len(jobs_for_bucket(pipe))
    run = materialize_partition(pipe.instance, key, in_process=True)
    folder = f"t/{input_folder(case.name)}"
    if case.error is None:
        assert run.status == dg.DagsterRunStatus.SUCCESS, failed_steps(pipe.instance, run.run_id)
        results = _results(pipe, folder)
        assert results.height == case.expect.height
        assert results["status"].unique().to_list() == ["succeeded"]
        assert results["record_id"].to_list() == [f"R{i:010d}" for i in range(results.height)]
        # Every input column, every value, in input order, with its type.
        assert_frame_equal(results.select(case.expect.columns), case.expect, categorical_as_str=True)
        return
    assert run.status == dg.DagsterRunStatus.FAILURE
    failures = failed_steps(pipe.instance, run.run_id)
    assert list(failures) == [case.step], failures
    message = failures[case.step]
    assert f"s3://{pipe.bucket}/inputs/{key}" in message, message
    assert re.search(case.error, message), message
    assert "Traceback" not in message and "truncate_ragged_lines" not in message
    # Refused before any spend: no shard uploaded, no Bedrock job.
    assert not pipe.s3.list_objects_v2(Bucket=pipe.bucket, Prefix=f"shards/{folder}/").get("KeyCount")
    assert len(jobs_for_bucket(pipe)) == jobs_before


def _results(pipe, folder: str) -> pl.DataFrame:
    import io

    body = pipe.s3.get_object(Bucket=pipe.bucket, Key=f"results/{folder}/results.parquet")["Body"].read()
    return pl.read_parquet(io.BytesIO(body))
