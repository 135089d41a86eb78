"""raw_dataset: read an input (CSV, Parquet, JSONL; local or s3://, or a Hugging Face split) and
give every row its `record_id`.

Reads are lazy (`scan_*`) so later steps stream over the data instead of loading it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath

import polars as pl

from bedrock_assets.prefetch import prefetched

RECORD_ID = "record_id"
RECORD_ID_PREFIX = "R"
RECORD_ID_DIGITS = 10
SUPPORTED_EXTENSIONS = (".csv", ".parquet", ".jsonl", ".ndjson")
# JSON type inference reads this many rows; a column whose type changes later fails loudly.
JSON_INFER_ROWS = 10_000
HF_BATCH_ROWS = 10_000
_SHOW_ROWS = 5  # offending rows named in an error message


class RecordsError(ValueError):
    """An input cannot become records; the message names the file/dataset, column and rows."""


def _extension(uri_or_path: str) -> str:
    return PurePosixPath(uri_or_path.split("?", 1)[0]).suffix.lower()


def is_parquet(uri_or_path: str) -> bool:
    return _extension(str(uri_or_path)) == ".parquet"


def read_input(
    uri_or_path: str,
    storage_options: Mapping[str, str] | None = None,
    max_rows: int | None = None,
) -> pl.LazyFrame:
    """Scan a CSV, Parquet or JSONL/NDJSON file (local path or `s3://` URI), chosen by extension.

    CSV cells are read as strings (no type inference): the prompt gets exactly what the user
    typed ("007" stays "007", "1.50" stays "1.50"), and a late odd value cannot fail a 10M-row
    read. `max_rows` keeps only the first N rows. Raises RecordsError for other extensions.
    """
    opts = dict(storage_options) if storage_options else None
    ext = _extension(str(uri_or_path))
    path = str(uri_or_path)
    if ext == ".csv":
        lf = pl.scan_csv(path, infer_schema=False, storage_options=opts)
    elif ext == ".parquet":
        lf = pl.scan_parquet(path, storage_options=opts)
    elif ext in (".jsonl", ".ndjson"):
        lf = pl.scan_ndjson(path, infer_schema_length=JSON_INFER_ROWS, storage_options=opts)
    else:
        raise RecordsError(
            f"{path}: unsupported input type {ext or '(no extension)'!r}; "
            f"supported: {', '.join(SUPPORTED_EXTENSIONS)}"
        )
    return lf.head(max_rows) if max_rows is not None else lf


def iter_hf_split(
    dataset: str,
    split: str,
    config: str | None = None,
    max_rows: int | None = None,
    batch_rows: int | None = None,
) -> Iterator[pl.DataFrame]:
    """Stream a Hugging Face split (hub id or local dataset folder) as polars batches.

    Uses `datasets.load_dataset(..., streaming=True)` so nothing is downloaded in full; batches
    come through Arrow (no Python object per row). Stops after `max_rows` rows.
    """
    import datasets  # local import: `datasets` is slow to import and only HF inputs need it

    stream = datasets.load_dataset(dataset, config, split=split, streaming=True)
    if max_rows is not None:
        stream = stream.take(max_rows)
    for table in stream.with_format("arrow").iter(batch_size=batch_rows or HF_BATCH_ROWS):
        if table.num_rows:
            yield pl.from_arrow(table, rechunk=False)  # type: ignore[misc]


def read_hf_split(
    dataset: str,
    split: str,
    config: str | None = None,
    max_rows: int | None = None,
) -> pl.DataFrame:
    """A Hugging Face split as one DataFrame (see `iter_hf_split`); empty split -> RecordsError."""
    batches = list(iter_hf_split(dataset, split, config=config, max_rows=max_rows))
    if not batches:
        raise RecordsError(f"Hugging Face dataset {dataset!r} split {split!r} has no rows")
    return pl.concat(batches, how="vertical_relaxed", rechunk=True)


def format_record_ids(position: pl.Expr) -> pl.Expr:
    """`R` + a 0-based row position, zero-padded to 10 digits (`R0000000000`, ...)."""
    return pl.concat_str(
        [pl.lit(RECORD_ID_PREFIX), position.cast(pl.String).str.zfill(RECORD_ID_DIGITS)]
    ).alias(RECORD_ID)


def assign_record_ids(
    lf: pl.LazyFrame | pl.DataFrame,
    id_column: str | None = None,
    source_label: str = "input",
) -> pl.LazyFrame:
    """Add `record_id` (String) as the first column.

    Without `id_column` the id is the row position (`R0000000000`...). With `id_column` the
    column is cast to string and must be non-null and unique: this checks it now (one pass over
    that column) and raises RecordsError naming the column and the first offending rows.
    """
    lf = lf.lazy()
    columns = lf.collect_schema().names()
    if id_column is None:
        if RECORD_ID in columns:
            raise RecordsError(
                f"{source_label}: the input already has a column {RECORD_ID!r}; set "
                f"`id_column: {RECORD_ID}` in the spec to use it as the record id, or rename it"
            )
        return _with_ids(lf, None, columns)
    if id_column not in columns:
        raise RecordsError(f"{source_label}: id_column {id_column!r} is not a column; columns: {columns}")
    ids = pl.col(id_column).cast(pl.String)
    bad = (
        lf.select(ids.alias("id"))
        .with_row_index("row")
        .filter(pl.col("id").is_null() | pl.col("id").is_duplicated())
        .collect(engine="streaming")
    )
    if bad.height:
        nulls = bad.filter(pl.col("id").is_null())
        dups = bad.filter(pl.col("id").is_not_null())
        parts = []
        if nulls.height:
            parts.append(f"{nulls.height} null value(s) at row(s) {nulls['row'].head(_SHOW_ROWS).to_list()}")
        if dups.height:
            first = dups.group_by("id", maintain_order=True).agg("row").head(_SHOW_ROWS)
            shown = "; ".join(f"{r['id']!r} at rows {r['row']}" for r in first.iter_rows(named=True))
            parts.append(f"{dups.height} row(s) share an id: {shown}")
        raise RecordsError(
            f"{source_label}: id_column {id_column!r} must be unique and non-null to serve as the "
            f"record id, but it has " + " and ".join(parts) + " (rows are 0-based)"
        )
    return _with_ids(lf, id_column, columns)


def _with_ids(lf: pl.LazyFrame, id_column: str | None, columns: list[str], offset: int = 0) -> pl.LazyFrame:
    """`record_id` first: the row position counted from `offset`, or `id_column` as a string."""
    if id_column is None:
        # with_row_index streams (a running counter), unlike int_range(len()) which needs the length.
        return lf.with_row_index("__position", offset=offset).select(
            format_record_ids(pl.col("__position")), pl.exclude("__position")
        )
    rest = [c for c in columns if c != RECORD_ID]
    return lf.select(pl.col(id_column).cast(pl.String).alias(RECORD_ID), *rest)


# Row groups of this many rows let jsonl_shards and joined_results read one shard's slice of
# records.parquet without decoding much else (parquet is read by whole row groups).
RECORDS_ROW_GROUP_ROWS = 10_000
# Rows of a parquet input read at a time by write_parquet_records.
RECORDS_PIECE_ROWS = 100_000


def records_compression(path: str) -> str:
    """Parquet compression for records.parquet going to `path`: zstd (level 1) when it goes over
    the network (s3://: 889 MB for the 2.2M-row benchmark, 0.45x the bytes to upload and read back
    twice), none on a local disk (half the CPU of writing it compressed: bench/RESULTS.md)."""
    return "zstd" if str(path).startswith("s3://") else "none"


def _codec(compression: str | None, path: str | os.PathLike[str]) -> tuple[str, int | None]:
    codec = compression or records_compression(str(path))
    return codec, (1 if codec == "zstd" else None)


def _append_parquet(frames: Iterator[pl.DataFrame], path: str | os.PathLike[str], compression: str | None, schema: pl.Schema) -> int:
    """Write frames, in order, to one local parquet file in 10,000-row row groups; returns rows."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    codec, level = _codec(compression, path)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    writer = None
    rows = 0
    try:
        for frame in frames:
            if not frame.height:
                continue
            table = frame.to_arrow(compat_level=pl.CompatLevel.newest())  # string views: no copy
            if writer is None:
                writer = pq.ParquetWriter(str(path), table.schema, compression=codec, compression_level=level)
            writer.write_table(table, row_group_size=RECORDS_ROW_GROUP_ROWS)
            rows += frame.height
    finally:
        if writer is not None:
            writer.close()
    if writer is None:  # no rows: still a valid file with the columns
        pl.DataFrame(schema=schema).write_parquet(path)
    return rows


def write_records(lf: pl.LazyFrame, path: str | os.PathLike[str], compression: str | None = None) -> int:
    """Stream records (ids assigned) into the local parquet file `path`; returns rows.

    For any source (CSV, JSONL, staged Hugging Face batches). Parquet inputs go through
    `write_parquet_records`, which holds less memory. `compression` defaults to
    `records_compression(path)`; callers upload the file where it belongs.
    """
    codec, level = _codec(compression, path)
    lf.sink_parquet(
        str(path),
        compression="uncompressed" if codec == "none" else codec,  # type: ignore[arg-type]  # polars' name
        compression_level=level,
        row_group_size=RECORDS_ROW_GROUP_ROWS,
        mkdir=True,
    )
    return int(pl.scan_parquet(str(path)).select(pl.len()).collect().item())


def write_parquet_records(
    scan: pl.LazyFrame,
    path: str | os.PathLike[str],
    id_column: str | None = None,
    source_label: str = "input",
    compression: str | None = None,
    piece_rows: int = RECORDS_PIECE_ROWS,
) -> int:
    """`write_records(assign_record_ids(scan, id_column, source_label), path)` for a parquet scan
    (local or s3://), in memory that does not grow with the input.

    The input is read in slices of `piece_rows` (parquet serves a slice by row group), one slice
    ahead of the writer, and each slice gets its ids from its own offset: memory is ~2 slices.
    Measured on one 10M-row file: 600 MiB peak, against 1.9 GB for a polars `sink_parquet` of the
    whole scan and 1.2-1.5 GB for `collect_batches` (its engine runs ahead of a slower writer).
    """
    checked = assign_record_ids(scan, id_column, source_label)  # validates id_column (one pass)
    columns = scan.collect_schema().names()
    total = int(scan.select(pl.len()).collect().item())
    starts = list(range(0, total, piece_rows))

    def piece(start: int) -> pl.DataFrame:
        return _with_ids(scan.slice(start, piece_rows), id_column, columns, offset=start).collect()

    return _append_parquet(prefetched(piece, starts, name="records"), path, compression, checked.collect_schema())


def write_hf_records(
    dataset: str,
    split: str,
    path: str,
    config: str | None = None,
    max_rows: int | None = None,
    id_column: str | None = None,
    compression: str | None = None,
) -> int:
    """Stream a Hugging Face split into the local records.parquet `path` (ids assigned) without
    holding the split.

    Batches from `iter_hf_split` go to a local temporary parquet file first (memory = one
    batch), then `assign_record_ids` + `write_records` stream that into `path`. Returns rows.
    """
    import tempfile

    import pyarrow.parquet as pq

    label = f"hf://{dataset}[{split}]"
    with tempfile.TemporaryDirectory(prefix="bedrock-hf-") as tmp:
        staged = f"{tmp}/split.parquet"
        writer = None
        schema: pl.Schema | None = None
        rows = 0
        try:
            for batch in iter_hf_split(dataset, split, config=config, max_rows=max_rows):
                if schema is None:
                    schema = batch.schema
                    writer = pq.ParquetWriter(staged, batch.to_arrow().schema, compression="none")
                table = batch.cast(dict(schema)).to_arrow()  # type: ignore[arg-type]
                writer.write_table(table)  # type: ignore[union-attr]
                rows += batch.height
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            raise RecordsError(f"Hugging Face dataset {dataset!r} split {split!r} has no rows")
        write_records(assign_record_ids(pl.scan_parquet(staged), id_column, label), path, compression)
    return rows
