import polars as pl
import pytest

from bedrock_assets import records
from bedrock_assets.records import RecordsError

ROWS = {"topic": ["cats", "dogs", "ünï \"q\""], "n": [1, 2, 3]}


@pytest.mark.parametrize("ext", [".csv", ".parquet", ".jsonl", ".ndjson"])
def test_read_input_by_extension(tmp_path, ext):
    df = pl.DataFrame(ROWS)
    path = tmp_path / f"in{ext}"
    if ext == ".csv":
        df.write_csv(path)
    elif ext == ".parquet":
        df.write_parquet(path)
    else:
        df.write_ndjson(path)
    out = records.read_input(str(path)).collect()
    assert out["topic"].to_list() == ROWS["topic"]
    assert out["n"].cast(pl.Int64).to_list() == ROWS["n"]
    assert records.read_input(str(path), max_rows=2).collect().height == 2


def test_csv_cells_stay_as_typed(tmp_path):
    (tmp_path / "a.csv").write_text("id,price\n007,1.50\n")
    assert records.read_input(str(tmp_path / "a.csv")).collect().row(0) == ("007", "1.50")


@pytest.mark.parametrize("name", ["data.xlsx", "data", "data.json.gz"])
def test_unsupported_extension_names_file(tmp_path, name):
    with pytest.raises(RecordsError, match=rf"{name}: unsupported input type"):
        records.read_input(str(tmp_path / name))


def test_default_record_ids_are_positions_first_column():
    lf = records.assign_record_ids(pl.LazyFrame({"a": list(range(12))}))
    df = lf.collect()
    assert df.columns == ["record_id", "a"]
    assert df["record_id"][0] == "R0000000000" and df["record_id"][11] == "R0000000011"
    assert df["record_id"].str.len_chars().unique().to_list() == [11]


def test_id_column_cast_to_string_and_first():
    df = records.assign_record_ids(pl.DataFrame({"a": ["x", "y"], "key": [10, 20]}), id_column="key").collect()
    assert df.columns == ["record_id", "a", "key"]
    assert df["record_id"].to_list() == ["10", "20"]


def test_id_column_duplicates_name_rows_and_column():
    df = pl.DataFrame({"key": ["a", "b", "a", None, "b"]})
    with pytest.raises(RecordsError) as exc:
        records.assign_record_ids(df, id_column="key", source_label="in.csv")
    msg = str(exc.value)
    assert "in.csv" in msg and "'key'" in msg
    assert "null value(s) at row(s) [3]" in msg
    assert "'a' at rows [0, 2]" in msg and "'b' at rows [1, 4]" in msg


def test_id_column_missing_and_existing_record_id():
    with pytest.raises(RecordsError, match="id_column 'nope' is not a column"):
        records.assign_record_ids(pl.DataFrame({"a": [1]}), id_column="nope")
    with pytest.raises(RecordsError, match="already has a column 'record_id'"):
        records.assign_record_ids(pl.DataFrame({"record_id": [1]}))


def _hf_folder(tmp_path):
    folder = tmp_path / "simplecot"
    (folder / "data").mkdir(parents=True)
    pl.DataFrame({"source": [f"q{i}" for i in range(25)], "target": ["a"] * 25}).write_parquet(
        folder / "data" / "train-00000-of-00001.parquet"
    )
    pl.DataFrame({"source": ["t"], "target": ["b"]}).write_parquet(folder / "data" / "test-00000-of-00001.parquet")
    return str(folder)


def test_hf_local_folder_split_and_max_rows(tmp_path):
    folder = _hf_folder(tmp_path)
    df = records.read_hf_split(folder, "train")
    assert df.height == 25 and df["source"][24] == "q24"
    assert records.read_hf_split(folder, "train", max_rows=7)["source"].to_list() == [f"q{i}" for i in range(7)]
    assert records.read_hf_split(folder, "test").height == 1
    batches = list(records.iter_hf_split(folder, "train", batch_rows=10))
    assert [b.height for b in batches] == [10, 10, 5]


def test_write_hf_records_streams_into_parquet(tmp_path, monkeypatch):
    folder = _hf_folder(tmp_path)
    monkeypatch.setattr(records, "HF_BATCH_ROWS", 10)
    dest = tmp_path / "out" / "records.parquet"
    assert records.write_hf_records(folder, "train", str(dest), max_rows=23) == 23
    df = pl.read_parquet(dest)
    assert df.columns == ["record_id", "source", "target"]
    assert df["record_id"].to_list() == [f"R{i:010d}" for i in range(23)]
    assert df["source"].to_list() == [f"q{i}" for i in range(23)]


def test_write_records_small_row_groups(tmp_path):
    import pyarrow.parquet as pq

    lf = records.assign_record_ids(pl.LazyFrame({"a": list(range(25_000))}))
    records.write_records(lf, str(tmp_path / "r.parquet"))
    meta = pq.ParquetFile(tmp_path / "r.parquet").metadata
    assert meta.num_rows == 25_000 and meta.num_row_groups == 3


@pytest.mark.parametrize(
    "path, codec, stored",
    [("s3://bucket/records/b/x.csv/records.parquet", "zstd", "ZSTD"), ("/tmp/records.parquet", "none", "UNCOMPRESSED")],
)
def test_records_are_compressed_only_when_they_cross_the_network(path, codec, stored, tmp_path):
    import pyarrow.parquet as pq

    compression = records.records_compression(path)
    assert compression == codec
    local = tmp_path / "r.parquet"
    rows = records.write_records(records.assign_record_ids(pl.LazyFrame({"q": ["a b c"] * 50})), local, compression)
    assert rows == 50 and pq.ParquetFile(local).metadata.row_group(0).column(0).compression == stored


@pytest.mark.parametrize("id_column", [None, "key"])
def test_parquet_records_are_written_slice_by_slice_with_the_same_ids_and_rows(tmp_path, id_column):
    # Slices smaller than the input's row groups and not aligned with them: every row once, in
    # order, ids identical to assign_record_ids over the whole input.
    n = 2_345
    frame = pl.DataFrame({"key": [f"k{i:05d}" for i in range(n)], "q": [f"question {i} é\n\"x\"" for i in range(n)]})
    frame.write_parquet(tmp_path / "in.parquet", row_group_size=700)
    scan = pl.scan_parquet(tmp_path / "in.parquet")
    rows = records.write_parquet_records(scan, tmp_path / "r.parquet", id_column, "in.parquet", piece_rows=500)
    expected = records.assign_record_ids(scan, id_column, "in.parquet").collect()
    got = pl.read_parquet(tmp_path / "r.parquet")
    assert rows == n and got.equals(expected)
    assert got.columns[0] == "record_id"


def test_parquet_records_check_the_id_column_before_writing(tmp_path):
    pl.DataFrame({"key": ["a", "b", "a"], "q": ["x", "y", "z"]}).write_parquet(tmp_path / "in.parquet")
    with pytest.raises(RecordsError, match=r"'a' at rows \[0, 2\]"):
        records.write_parquet_records(pl.scan_parquet(tmp_path / "in.parquet"), tmp_path / "r.parquet", "key", "in.parquet")
    assert not (tmp_path / "r.parquet").exists()
