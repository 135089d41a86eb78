"""Bad and awkward input files, one per case: each is either read with every row and value intact
or refused with one RecordsError naming the file and, where it can be known, the line, row and
column (never a bare library exception). `records.write_input_records` is what raw_dataset runs
on a staged input; tests/pipeline/test_pl_inputs.py runs a subset through the whole pipeline."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from awkward_inputs import all_types
from nasty_strings import NASTY
from polars.testing import assert_frame_equal

from bedrock_assets import records
from bedrock_assets.records import RecordsError


def _parquet(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_parquet(buf)
    return buf.getvalue()


def _csv(frame: pl.DataFrame) -> bytes:
    return frame.write_csv().encode()


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def _late_key_rows() -> list[dict]:
    rows: list[dict] = [{"topic": f"t{i}", "n": i} for i in range(10_050)]
    rows[-1]["late"] = "only here"  # first seen after line 10,000
    rows[-2]["n"] = "not a number"  # the type changes late: read as text, nothing nulled
    return rows


@dataclasses.dataclass
class Case:
    id: str
    name: str
    data: bytes
    expect: pl.DataFrame | None = None  # the rows, every value (without record_id)
    error: str | None = None  # a regex the message must match (after the file name)
    id_column: str | None = None
    check_dtypes: bool = True

    def __post_init__(self) -> None:
        assert (self.expect is None) != (self.error is None), self.id


PARQUET_HEAD = _parquet(pl.DataFrame({"topic": ["cats"] * 1000}))
CASES = [
    # --- refused, with where and why -------------------------------------------------------
    Case("csv-0-bytes", "in.csv", b"", error=r"empty \(0 bytes\)"),
    Case("jsonl-0-bytes", "in.jsonl", b"", error=r"empty \(0 bytes\)"),
    Case("parquet-0-bytes", "in.parquet", b"", error=r"empty \(0 bytes\)"),
    Case("csv-header-only", "in.csv", b"topic,n\n", error="a header but no rows"),
    Case("parquet-no-rows", "in.parquet", _parquet(pl.DataFrame(schema={"topic": pl.String})), error="no rows"),
    Case("csv-whitespace-only", "in.csv", b"  \n\n \n", error=r"line 1 \(the header\) is blank"),
    Case("jsonl-whitespace-only", "in.jsonl", b" \n\n\t\n", error="only whitespace"),
    Case("csv-latin1", "in.csv", "topic\ncats\ncafé\n".encode("latin-1"), error=r"not UTF-8: byte 0xE9 at line 3, column 4"),
    Case("jsonl-latin1", "in.jsonl", '{"topic":"a"}\n{"topic":"café"}\n'.encode("latin-1"), error=r"not UTF-8: byte 0xE9 at line 2, column 14.*iconv"),
    Case("csv-utf16", "in.csv", "topic\ncats\n".encode("utf-16"), error=r"UTF-16 \(little-endian\).*not UTF-8"),
    Case("jsonl-utf16-be", "in.jsonl", b"\xfe\xff" + '{"a":1}\n'.encode("utf-16-be"), error=r"UTF-16 \(big-endian\)"),
    Case("csv-ragged-long-row", "in.csv", b"topic,n\ncats,1\ndogs,2,3\n", error=r"line 3 \(row 1\) has 3 fields but the header \(line 1\) has 2"),
    Case("csv-unclosed-quote", "in.csv", b'topic,n\ncats,1\n"dogs,2\nbirds,3\n', error=r"line 3 \(row 1\) opens a quoted value that is never closed"),
    Case("csv-stray-quote", "in.csv", b'topic,n\nca"ts,1\n', error=r"line 2 \(row 0\), column 'topic': a double quote inside an unquoted value"),
    Case("csv-semicolons", "in.csv", b"topic;n\ncats;1\n", error="no commas but semicolons"),
    Case("csv-tabs", "in.csv", b"topic\tn\ncats\t1\n", error="no commas but tabs"),
    Case("csv-duplicate-columns", "in.csv", b"topic,n,topic\na,1,b\n", error=r"names a column twice: 'topic' \(columns 1 and 3\)"),
    Case("jsonl-malformed-line", "in.jsonl", b'{"topic":"a"}\n{"topic":"b"}\n{"topic": bad}\n', error=r"line 3 \(row 2\), character 11: not valid JSON"),
    Case("jsonl-array-line", "in.jsonl", b'{"topic":"a"}\n[1,2]\n', error=r"line 2 \(row 1\) is a JSON array, not an object"),
    Case("jsonl-number-line", "in.jsonl", b'{"topic":"a"}\n\n3\n', error=r"line 3 \(row 1\) is a JSON number, not an object"),
    Case("jsonl-is-a-json-array", "in.jsonl", b'[\n {"topic": "a"}\n]\n', error=r"line 1 \(row 0\).*jq -c"),
    Case("jsonl-object-then-array", "in.jsonl", b'{"a":{"x":1}}\n{"a":[1]}\n', error=r"line 2 \(row 1\), column 'a': a JSON array, but line 1 has a JSON object"),
    Case("jsonl-number-then-boolean", "in.jsonl", b'{"a":1}\n{"a":true}\n', error=r"line 2 \(row 1\), column 'a': a JSON boolean"),
    Case("parquet-corrupt", "in.parquet", b"PAR1 not really parquet PAR1", error="not a readable Parquet file"),
    Case("parquet-truncated", "in.parquet", PARQUET_HEAD[: len(PARQUET_HEAD) // 2], error="not a readable Parquet file"),
    Case("parquet-is-really-csv", "in.parquet", b"topic\ncats\n", error="does not start with Parquet's 'PAR1'"),
    Case("csv-is-really-parquet", "in.csv", PARQUET_HEAD, error="is a Parquet file, not CSV"),
    Case("unknown-extension", "in.txt", b"topic\ncats\n", error=r"unsupported input type '\.txt'"),
    Case("no-extension", "README", b"topic\ncats\n", error=r"unsupported input type '\(no extension\)'"),
    Case("record-id-column", "in.csv", b"record_id,topic\nx,cats\n", error="already has a column 'record_id'"),
    Case("id-column-duplicates", "in.csv", b"key,topic\na,x\nb,y\na,z\n", id_column="key", error=r"'a' at rows \[0, 2\]"),
    Case("id-column-nulls", "in.jsonl", b'{"key":"a"}\n{"key":null}\n', id_column="key", error=r"null value\(s\) at row\(s\) \[1\]"),
    # --- read with every row and value intact ----------------------------------------------
    Case("csv-utf8-bom", "in.csv", b"\xef\xbb\xbftopic,n\ncats,1\n", expect=pl.DataFrame({"topic": ["cats"], "n": ["1"]})),
    Case("csv-crlf", "in.csv", b'topic,n\r\ncats,1\r\n"two\r\nlines",2\r\n',
         expect=pl.DataFrame({"topic": ["cats", "two\r\nlines"], "n": ["1", "2"]})),
    Case("csv-nasty-strings", "in.csv", _csv(pl.DataFrame({"topic": NASTY})), expect=pl.DataFrame({"topic": NASTY})),
    Case("csv-short-row-is-null", "in.csv", b"topic,n\ncats\ndogs,2\n", expect=pl.DataFrame({"topic": ["cats", "dogs"], "n": [None, "2"]})),
    Case("csv-unnamed-index-column", "in.csv", b",topic\n0,cats\n", expect=pl.DataFrame({"": ["0"], "topic": ["cats"]})),
    Case("csv-values-stay-text", "in.csv", b"id,price,when\n007,1.50,2024-01-01T00:00:00+02:00\n",
         expect=pl.DataFrame({"id": ["007"], "price": ["1.50"], "when": ["2024-01-01T00:00:00+02:00"]})),
    Case("jsonl-utf8-bom", "in.jsonl", b'\xef\xbb\xbf{"topic":"cats"}\n', expect=pl.DataFrame({"topic": ["cats"]})),
    Case("jsonl-crlf-and-blank-lines", "in.jsonl", b'{"topic":"a"}\r\n\r\n{"topic":"b"}\r\n\n',
         expect=pl.DataFrame({"topic": ["a", "b"]})),
    Case("jsonl-unicode-line-separators", "in.jsonl", _jsonl([{"topic": "x\u2028y\u2029z\x85"}, {"topic": "b"}]),
         expect=pl.DataFrame({"topic": ["x\u2028y\u2029z\x85", "b"]})),
    Case("jsonl-nasty-strings", "in.jsonl", _jsonl([{"topic": s} for s in NASTY]), expect=pl.DataFrame({"topic": NASTY})),
    Case("jsonl-late-key-and-late-type", "in.jsonl", _jsonl(_late_key_rows()),
         expect=pl.DataFrame({"topic": [f"t{i}" for i in range(10_050)],
                              "n": [str(i) for i in range(10_048)] + ["not a number", "10049"],
                              "late": [None] * 10_049 + ["only here"]})),
    Case("jsonl-nested", "in.jsonl", _jsonl([{"topic": "a", "tags": ["x", "y"], "m": {"k": [1, 2], "s": "v"}}, {"topic": "b", "tags": [], "m": None}]),
         expect=pl.DataFrame({"topic": ["a", "b"], "tags": [["x", "y"], []], "m": [{"k": [1, 2], "s": "v"}, None]})),
    Case("parquet-every-type", "in.parquet", _parquet(all_types()), expect=all_types()),
    Case("parquet-2000-columns", "in.parquet", _parquet(pl.DataFrame({f"c{i}": [f"v{i}", None] for i in range(2000)})),
         expect=pl.DataFrame({f"c{i}": [f"v{i}", None] for i in range(2000)})),
    Case("parquet-name-with-glob-characters", "in [1]?*.parquet", _parquet(pl.DataFrame({"topic": ["a"]})), expect=pl.DataFrame({"topic": ["a"]})),
    Case("parquet-id-column", "in.parquet", _parquet(pl.DataFrame({"key": [3, 1], "topic": ["a", "b"]})), id_column="key",
         expect=pl.DataFrame({"key": [3, 1], "topic": ["a", "b"]})),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_input_file(case: Case, tmp_path: Path):
    path = tmp_path / case.name
    path.write_bytes(case.data)
    dest = tmp_path / "out" / "records.parquet"
    label = f"s3://bucket/inputs/t/{case.name}"
    if case.error is not None:
        with pytest.raises(RecordsError) as exc:
            records.write_input_records(path, dest, label=label, id_column=case.id_column)
        message = str(exc.value)
        assert message.startswith(label), message
        assert re.search(case.error, message), message
        assert not dest.exists()
        return
    rows = records.write_input_records(path, dest, label=label, id_column=case.id_column)
    got = pl.read_parquet(dest)
    assert rows == case.expect.height == got.height
    if case.id_column is None:
        assert got["record_id"].to_list() == [f"R{i:010d}" for i in range(rows)]
    else:
        assert got["record_id"].to_list() == case.expect[case.id_column].cast(pl.String).to_list()
    assert_frame_equal(got.drop("record_id"), case.expect, check_dtypes=case.check_dtypes, categorical_as_str=True)


def test_a_missing_local_file_is_named(tmp_path):
    with pytest.raises(RecordsError, match=r"nope\.csv: no such file"):
        records.write_input_records(tmp_path / "nope.csv", tmp_path / "r.parquet")


def test_a_late_type_change_is_read_as_text_not_nulled(tmp_path):
    # The README promise: a value whose type changes after line 10,000 is neither dropped nor nulled.
    path = tmp_path / "in.jsonl"
    path.write_bytes(_jsonl([{"n": i} for i in range(20_000)] + [{"n": "x"}]))
    records.write_input_records(path, tmp_path / "r.parquet")
    got = pl.read_parquet(tmp_path / "r.parquet")["n"]
    assert got.null_count() == 0 and got[-1] == "x" and got[0] == "0"


def test_struct_columns_with_strings_survive_sliced_parquet_writing(tmp_path):
    # pyarrow 26 could not slice a string view inside a struct when cutting row groups
    # ("Slicing not implemented for StringView"): 25,000 rows = 3 row groups, 3 slices.
    n = 25_000
    frame = pl.DataFrame({"s": [{"a": f"v{i}", "b": [f"w{i}"]} for i in range(n)]})
    frame.write_parquet(tmp_path / "in.parquet")
    rows = records.write_parquet_records(pl.scan_parquet(tmp_path / "in.parquet"), tmp_path / "r.parquet", piece_rows=10_000)
    assert rows == n and pq.ParquetFile(tmp_path / "r.parquet").metadata.num_row_groups == 3
    assert_frame_equal(pl.read_parquet(tmp_path / "r.parquet").drop("record_id"), frame)


def test_arrow_schema_is_the_same_for_every_slice(tmp_path):
    frame = all_types()
    assert records._to_arrow(frame).schema == records._to_arrow(frame.slice(1, 1)).schema
    assert isinstance(records._to_arrow(frame), pa.Table)
