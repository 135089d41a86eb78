"""parquet_splice: footers round-trip byte for byte, and spliced files read back as the columns of
both sides, in every reader the project uses (polars, pyarrow)."""

import io

import polars as pl
import pyarrow.parquet as pq
import pytest

from bedrock_assets import parquet_splice as ps


def _left_frame(n: int) -> pl.DataFrame:
    return pl.DataFrame({
        "record_id": [f"R{i:010d}" for i in range(n)],
        "text": [("é\n\"x\" " * (i % 7)) or None for i in range(n)],
        "n": list(range(n)),
        "tags": [[f"t{i}", "u"] if i % 3 else None for i in range(n)],
        "when": pl.datetime_range(pl.datetime(2026, 1, 1), pl.datetime(2026, 1, 1) + pl.duration(seconds=n - 1), "1s", eager=True),
    })


def _write_left(frame: pl.DataFrame, path, writer: str, codec: str, rows_per_group: int) -> None:
    if writer == "polars":
        frame.write_parquet(path, compression=codec, row_group_size=rows_per_group)
    else:
        pq.write_table(frame.to_arrow(), path, compression="none" if codec == "uncompressed" else codec, row_group_size=rows_per_group,
                       write_page_index=True, write_statistics=True)


def _part(frame: pl.DataFrame, codec: str = "zstd") -> bytes:
    buf = io.BytesIO()
    pq.write_table(frame.to_arrow(), buf, compression=codec, row_group_size=max(frame.height, 1))
    return buf.getvalue()


@pytest.mark.parametrize("writer", ["polars", "pyarrow"])
@pytest.mark.parametrize("codec", ["zstd", "snappy", "uncompressed"])
def test_footer_round_trips_byte_for_byte(tmp_path, writer, codec):
    path = tmp_path / "f.parquet"
    _write_left(_left_frame(2500), path, writer, codec, 1000)
    with open(path, "rb") as fh:
        fields, start = ps.read_footer(fh)
        fh.seek(start)
        raw = fh.read()
    assert ps.footer_bytes(fields) == raw
    assert ps.row_counts(path) == [1000, 1000, 500]


@pytest.mark.parametrize("writer", ["polars", "pyarrow"])
@pytest.mark.parametrize(("left_codec", "right_codec"), [("zstd", "zstd"), ("uncompressed", "lz4"), ("snappy", "none")])
def test_spliced_file_reads_as_both_sides_side_by_side(tmp_path, writer, left_codec, right_codec):
    left = _left_frame(2345)
    _write_left(left, tmp_path / "left.parquet", writer, left_codec, 1000)
    right = pl.DataFrame({
        "response": [f"answer {i} «ü»\n" * (i % 5) if i % 11 else None for i in range(left.height)],
        "tokens": [i * 3 if i % 4 else None for i in range(left.height)],
        "embedding": [[float(i), -1.5, 0.25] for i in range(left.height)],
    })
    dest = tmp_path / "out.parquet"
    writer_ = ps.SplicedParquetWriter(tmp_path / "left.parquet", dest)
    assert writer_.left_row_counts == [1000, 1000, 345]
    start = 0
    for rows in writer_.left_row_counts:
        writer_.append(_part(right.slice(start, rows), right_codec))
        start += rows
    writer_.close()
    expected = pl.concat([left, right], how="horizontal")
    assert pl.read_parquet(dest).equals(expected)
    assert pl.from_arrow(pq.read_table(dest)).equals(expected)
    # Row groups stay readable one at a time (readers seek by the moved offsets).
    second = pq.ParquetFile(dest).read_row_group(1)
    assert pl.from_arrow(second).equals(expected.slice(1000, 1000))
    # The left side's chunks are its own bytes: its codec is kept.
    meta = pq.ParquetFile(dest).metadata
    assert meta.num_rows == left.height and meta.num_columns == 8
    # One embedded Arrow schema, of both sides' columns (it carries what parquet types cannot say).
    assert set(meta.metadata) == {b"ARROW:schema"} and pq.read_schema(dest).names == expected.columns
    left_codec_name = pq.ParquetFile(tmp_path / "left.parquet").metadata.row_group(0).column(0).compression
    assert meta.row_group(0).column(0).compression == left_codec_name
    assert pl.scan_parquet(dest).filter(pl.col("n") == 2000).select("response").collect().item() == right["response"][2000]


def test_left_without_row_groups_takes_the_schema_from_a_part(tmp_path):
    pl.DataFrame(schema={"record_id": pl.String, "q": pl.String}).write_parquet(tmp_path / "left.parquet")
    writer = ps.SplicedParquetWriter(tmp_path / "left.parquet", tmp_path / "out.parquet")
    assert writer.left_row_counts == []
    writer.close(schema_part=_part(pl.DataFrame(schema={"response": pl.String, "status": pl.String})))
    out = pl.read_parquet(tmp_path / "out.parquet")
    assert out.height == 0 and out.columns == ["record_id", "q", "response", "status"]


def test_rows_that_do_not_line_up_are_refused(tmp_path):
    _left_frame(300).write_parquet(tmp_path / "left.parquet", row_group_size=200)
    writer = ps.SplicedParquetWriter(tmp_path / "left.parquet", tmp_path / "out.parquet")
    with pytest.raises(ps.ParquetSpliceError, match="row group 0: records.parquet has 200 rows, the answers 150"):
        writer.append(_part(pl.DataFrame({"a": list(range(150))})))
    writer.append(_part(pl.DataFrame({"a": list(range(200))})))
    with pytest.raises(ps.ParquetSpliceError, match="1 answer row groups for records.parquet's 2"):
        writer.close()


def test_not_parquet_is_a_clear_error(tmp_path):
    (tmp_path / "x.parquet").write_bytes(b"PAR1 this is not parquet at all")
    with pytest.raises(ps.ParquetSpliceError, match="no PAR1 at the end"):
        ps.row_counts(tmp_path / "x.parquet")


def test_thrift_struct_round_trip_of_every_type():
    fields = [
        [1, 1, True], [2, 2, False], [3, 3, 200], [4, 4, -7], [5, 5, 2**31 - 1], [6, 6, -(2**62)],
        [7, 7, 1.5], [8, 8, b"\x00bytes"], [9, 9, (5, list(range(40)))], [20, 12, [[1, 8, b"x"]]],
        [40, 11, (8, 5, [(b"k", 1), (b"l", -2)])], [41, 9, (12, [[[1, 5, 3]], []])],
    ]
    out = bytearray()
    ps.write_struct(out, fields)
    again, end = ps.read_struct(memoryview(bytes(out)))
    assert end == len(out)
    assert again == fields


def test_arrow_only_types_of_the_records_survive_the_splice(tmp_path):
    """A time zone's name, fixed-size arrays, durations, null-only and categorical columns live
    only in the embedded Arrow schema: the spliced file must keep them for the records' side."""
    import datetime as dt

    left = pl.DataFrame(
        {"ts": [dt.datetime(2024, 1, 1, 12)], "arr": [[1.0, 2.0]], "span": [dt.timedelta(seconds=3)],
         "nothing": [None], "cat": ["a"]},
        schema_overrides={"ts": pl.Datetime("us", "Asia/Tokyo"), "arr": pl.Array(pl.Float64, 2), "cat": pl.Categorical,
                          "nothing": pl.Null},
    )
    left.write_parquet(tmp_path / "left.parquet")
    right = pl.DataFrame({"response": ["r"]})
    buf = io.BytesIO()
    right.write_parquet(buf)
    writer = ps.SplicedParquetWriter(tmp_path / "left.parquet", tmp_path / "out.parquet")
    writer.append(buf.getvalue())
    writer.close()
    got = pl.read_parquet(tmp_path / "out.parquet")
    assert got.schema == pl.Schema({**left.schema, "response": pl.String})
    assert got.drop("response").equals(left)
