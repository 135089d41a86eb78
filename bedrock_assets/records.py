"""raw_dataset: read an input (CSV, Parquet, JSONL; local or s3://, or a Hugging Face split) and
give every row its `record_id`.

Reads are lazy (`scan_*`) so later steps stream over the data instead of loading it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import polars as pl

from bedrock_assets.prefetch import prefetched

if TYPE_CHECKING:
    import pyarrow as pa

RECORD_ID = "record_id"
RECORD_ID_PREFIX = "R"
RECORD_ID_DIGITS = 10
SUPPORTED_EXTENSIONS = (".csv", ".parquet", ".jsonl", ".ndjson")
# JSONL types are inferred over the whole file (None = every line): with the first N lines only,
# a key first seen later was dropped and a value whose type changed later failed the read.
# Measured cost in bench/RESULTS.md (2026-12-09); README, "Input files".
JSON_INFER_ROWS: int | None = None
HF_BATCH_ROWS = 10_000
_SHOW_ROWS = 5  # offending rows named in an error message


class RecordsError(ValueError):
    """An input cannot become records; the message names the file/dataset, column and rows."""


def _extension(uri_or_path: str) -> str:
    return PurePosixPath(uri_or_path.split("?", 1)[0]).suffix.lower()


def extension_of(name: str) -> str:
    """The lower-cased extension of a file name taken as it is (`a?b.csv` -> `.csv`)."""
    return PurePosixPath(name).suffix.lower()


def is_parquet(uri_or_path: str) -> bool:
    return _extension(str(uri_or_path)) == ".parquet"


def read_input(
    uri_or_path: str,
    storage_options: Mapping[str, str] | None = None,
    max_rows: int | None = None,
    glob: bool = True,
    kind: str | None = None,
) -> pl.LazyFrame:
    """Scan a CSV, Parquet or JSONL/NDJSON file (local path or `s3://` URI), chosen by extension
    (or by `kind`, an extension such as ".csv", when the path's own name says nothing).

    CSV cells are read as strings (no type inference): the prompt gets exactly what the user
    typed ("007" stays "007", "1.50" stays "1.50"), and a late odd value cannot fail a 10M-row
    read. JSONL types are inferred over the whole file. `max_rows` keeps only the first N rows.
    `glob=False` reads a name holding `?`, `*` or `[` as it is. Raises RecordsError for other
    extensions. Errors of the read itself surface when the frame is collected; `write_input_records`
    turns them into RecordsErrors naming the file, line and column.
    """
    opts = dict(storage_options) if storage_options else None
    path = str(uri_or_path)
    ext = kind or (_extension(path) if glob else PurePosixPath(path).suffix.lower())
    if ext == ".csv":
        lf = pl.scan_csv(path, infer_schema=False, storage_options=opts, glob=glob)
    elif ext == ".parquet":
        lf = pl.scan_parquet(path, storage_options=opts, glob=glob)
    elif ext in (".jsonl", ".ndjson"):
        # scan_ndjson has no `glob` switch: write_input_records hands it a staged local copy.
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


def _to_arrow(frame: pl.DataFrame) -> "pa.Table":
    """The frame as Arrow for pyarrow's writer: flat columns as string/binary views (no copy);
    nested ones (list, array, struct) and categoricals in the older large-string layout, because
    pyarrow 26 cannot slice a string view inside a struct ("Slicing not implemented for
    StringView") when it cuts row groups, nor write a dictionary of string views ("Unsupported
    cast from dictionary<values=string_view ..."). Same Parquet values either way; the choice
    depends on the dtype only, so every frame of one file gets the same Arrow schema."""
    import pyarrow as pa  # noqa: PLC0415

    nested = {c for c, t in frame.schema.items() if t.is_nested() or isinstance(t, (pl.Categorical, pl.Enum))}
    if not nested:
        return frame.to_arrow(compat_level=pl.CompatLevel.newest())
    flat = frame.select(pl.exclude(list(nested))).to_arrow(compat_level=pl.CompatLevel.newest())
    deep = frame.select(list(nested)).to_arrow(compat_level=pl.CompatLevel.oldest())
    parts = {**dict(zip(flat.column_names, flat.columns)), **dict(zip(deep.column_names, deep.columns))}
    return pa.table([parts[c] for c in frame.columns], names=frame.columns)


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
            table = _to_arrow(frame)
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


# --------------------------------------------------------------------------------------------
# raw_dataset's read of a user file: records.parquet, or one RecordsError that names the file
# and, where it can be known, the line, column and a fix. Never a bare library exception: polars
# says "invalid utf-8 sequence" or "at character 10" without the file, and hints at settings
# (truncate_ragged_lines) the user cannot reach. The diagnosis passes below run only after a read
# failed, over the local file, so a good file pays nothing for them.

UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_32_BOMS = {
    b"\xff\xfe\x00\x00": "UTF-32 (little-endian)", b"\x00\x00\xfe\xff": "UTF-32 (big-endian)",
    b"\xff\xfe": "UTF-16 (little-endian)", b"\xfe\xff": "UTF-16 (big-endian)",
}
_READ_ERRORS: tuple[type[BaseException], ...] = (pl.exceptions.PolarsError, OSError, UnicodeDecodeError)
_KIND_NAMES = {".csv": "CSV", ".parquet": "Parquet", ".jsonl": "JSON Lines", ".ndjson": "JSON Lines"}


def write_input_records(
    path: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    label: str | None = None,
    kind: str | None = None,
    storage_options: Mapping[str, str] | None = None,
    max_rows: int | None = None,
    id_column: str | None = None,
    compression: str | None = None,
) -> int:
    """Read one input file into the local records.parquet `dest` (ids assigned); returns rows.

    `path` is a local file (CSV, JSONL or Parquet) or an `s3://` Parquet object (read in slices,
    never downloaded whole); raw_dataset stages CSV and JSONL objects locally first. `label` is the
    name errors use (the input's S3 URI); `kind` its extension when `path`'s name differs. Any
    problem raises RecordsError naming the file and, where known, the line (1-based, as an editor
    shows it), the row (0-based, as other errors count) and the column, with a fix; an input with
    no rows is one too. Nothing is written to `dest` on error.
    """
    path = str(path)
    label = label or path
    kind = (kind or extension_of(label)).lower()
    if kind not in SUPPORTED_EXTENSIONS:
        raise RecordsError(f"{label}: unsupported input type {kind or '(no extension)'!r}; supported: {', '.join(SUPPORTED_EXTENSIONS)}")
    local = not path.startswith("s3://")
    if local:
        if not Path(path).is_file():
            raise RecordsError(f"{label}: no such file")
        if Path(path).stat().st_size == 0:
            raise RecordsError(f"{label}: the file is empty (0 bytes); nothing to read")
    staged: Path | None = None
    try:
        if local and kind != ".parquet":
            _check_text_start(path, label)
            if kind != ".csv" and _starts_with(path, UTF8_BOM):
                # polars' JSON reader refuses a byte-order mark; it carries no data, so drop it.
                staged = Path(dest).with_name(".input-without-bom" + kind)
                staged.parent.mkdir(parents=True, exist_ok=True)
                _copy_without_bom(path, staged)
                path = str(staged)
        frame = read_input(path, storage_options, max_rows, glob=False, kind=kind)
        columns = frame.collect_schema().names()  # JSONL: the whole-file type inference runs here
        if kind == ".csv":
            _check_csv_header(path, label, columns)
        if kind == ".parquet":
            rows = write_parquet_records(frame, dest, id_column, label, compression)
        else:
            rows = write_records(assign_record_ids(frame, id_column, label), dest, compression)
    except RecordsError:
        raise
    except _READ_ERRORS as exc:
        Path(dest).unlink(missing_ok=True)
        raise RecordsError(explain_read_error(path, label, kind, exc)) from exc
    finally:
        if staged is not None:
            staged.unlink(missing_ok=True)
    if rows == 0:
        Path(dest).unlink(missing_ok=True)
        what = "a header but no rows" if kind == ".csv" else "no rows"
        raise RecordsError(f"{label}: the file has {what}; nothing to send")
    return rows


def explain_read_error(path: str, label: str, kind: str, exc: BaseException) -> str:
    """The message for a failed read of `path`: the library's error replaced by what is wrong,
    where, and how to fix it (a cheap diagnosis pass over the local file)."""
    first = _first_line(exc)
    name = _KIND_NAMES.get(kind, kind)
    if isinstance(exc, FileNotFoundError) or "not found" in first.lower() and path.startswith("s3://"):
        return f"{label}: no such file"
    if isinstance(exc, pl.exceptions.DuplicateError):
        return f"{label}: {first}; every column needs its own name: rename one of them"
    if path.startswith("s3://") or not Path(path).is_file():
        if kind == ".parquet":  # read in place on S3: no local bytes to look at
            return f"{label}: is not a readable Parquet file (truncated, corrupt, or another format named .parquet): {first}"
        return f"{label}: cannot be read as {name}: {first}"
    problem = None
    if kind != ".parquet" and _starts_with(path, b"PAR1"):
        problem = f"is a Parquet file, not {name}; give it the .parquet extension"
    if problem is None and kind != ".parquet":
        problem = _encoding_problem(path, kind)
    if problem is None and kind == ".parquet":
        problem = (f"is not a readable Parquet file (truncated, corrupt, or another format named .parquet): {first}"
                   if _starts_with(path, b"PAR1") else
                   "is not a Parquet file (it does not start with Parquet's 'PAR1' bytes); is it a CSV or JSONL file named .parquet?")
    if problem is None and _only_whitespace(path):
        problem = "holds only whitespace; nothing to read"
    if problem is None and kind == ".csv":
        problem = _diagnose_csv(path)
    if problem is None and kind in (".jsonl", ".ndjson"):
        problem = _diagnose_jsonl(path)
    return f"{label}: {problem}" if problem else f"{label}: cannot be read as {name}: {first}"


def _first_line(exc: BaseException) -> str:
    # polars appends hints about its own parameters (truncate_ragged_lines, infer_schema_length)
    # after a blank line: none of them is reachable from a batch spec, so only the first line counts.
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _starts_with(path: str, magic: bytes) -> bool:
    with open(path, "rb") as fh:
        return fh.read(len(magic)) == magic


def _copy_without_bom(src: str, dest: Path) -> None:
    import shutil  # noqa: PLC0415

    with open(src, "rb") as fin, open(dest, "wb") as fout:
        fin.seek(len(UTF8_BOM))
        shutil.copyfileobj(fin, fout, 1 << 20)


def _check_text_start(path: str, label: str) -> None:
    """UTF-16/32 files fail polars' reader at the first byte; say so before it tries."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    for bom, encoding in _UTF16_32_BOMS.items():
        if head.startswith(bom):
            raise RecordsError(
                f"{label}: the file is {encoding} (it starts with that byte-order mark), not UTF-8; "
                f"save it as UTF-8 (e.g. `iconv -f {encoding.split()[0]} -t UTF-8 in > out`, or 'CSV UTF-8' in Excel)"
            )


def _line_and_column(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and (byte) column of `offset` in `data`, counting \\n only as JSONL and CSV do."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, offset - line_start + 1


def _encoding_problem(path: str, kind: str = ".csv", chunk: int = 1 << 22) -> str | None:
    """Where the first byte that is not UTF-8 is, with a fix; None for a UTF-8 file."""
    import codecs  # noqa: PLC0415

    decoder = codecs.getincrementaldecoder("utf-8")()
    lines_before = 0
    tail = b""  # the current line so far, so a column can be given across chunk boundaries
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk)
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError:
                # The bad byte is in this block or in the <= 3 undecided bytes before it (the end
                # of `tail`): look for it in the current line's bytes.
                data = tail + block
                bad = _first_invalid_utf8(data)
                line, col = _line_and_column(data, bad)
                byte = data[bad:bad + 1].hex().upper()
                return (
                    f"is not UTF-8: byte 0x{byte} at line {lines_before + line}, column {col} (counted in bytes) is not valid UTF-8 "
                    "(Excel and older tools often save Latin-1 / Windows-1252); save it as UTF-8, e.g. "
                    f"`iconv -f WINDOWS-1252 -t UTF-8 in{kind} > out{kind}` or 'CSV UTF-8' in Excel's Save As"
                )
            if not block:
                return None
            cut = block.rfind(b"\n")
            if cut >= 0:
                lines_before += (tail + block[: cut + 1]).count(b"\n")
                tail = block[cut + 1:]
            else:
                tail += block


def _first_invalid_utf8(data: bytes) -> int:
    """Offset of the first byte of `data` that starts an invalid UTF-8 sequence (a sequence cut by
    the end of `data` is not one)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.reason != "unexpected end of data":
            return err.start
    return len(data)


def _only_whitespace(path: str, chunk: int = 1 << 20) -> bool:
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            if block.strip():
                return False
    return True


def _check_csv_header(path: str, label: str, columns: list[str]) -> None:
    """What polars reads without complaint but is not what the user meant: duplicate header
    names (polars renames the second to `x_duplicated_0`), a blank first line, or a file separated
    by `;`, tab or `|` (read as one column)."""
    import csv  # noqa: PLC0415

    with open(path, newline="", encoding="utf-8-sig") as fh:
        header = next(csv.reader(fh), [])
    if not any(h.strip() for h in header):
        raise RecordsError(f"{label}: line 1 (the header) is blank; the first line must name the columns, separated by commas")
    seen: dict[str, int] = {}
    dups = []
    for i, h in enumerate(header):
        if h in seen:
            dups.append(f"{h!r} (columns {seen[h] + 1} and {i + 1})")
        seen.setdefault(h, i)
    if dups:
        raise RecordsError(f"{label}: line 1 (the header) names a column twice: {', '.join(dups)}; every column needs its own name")
    if len(columns) == 1:
        for sep, what in ((";", "semicolons"), ("\t", "tabs"), ("|", "'|'")):
            if sep in columns[0]:
                raise RecordsError(
                    f"{label}: line 1 (the header) has no commas but {what}: CSV inputs must be comma-separated "
                    f"(save it as 'CSV (comma delimited)', or convert the {what} to commas)"
                )


class _Tap:
    """Iterates a text file's lines for csv.reader and keeps the ones of the current record."""

    def __init__(self, fh: Iterator[str]) -> None:
        self.fh, self.record = fh, ""

    def __iter__(self) -> "_Tap":
        return self

    def __next__(self) -> str:
        line = next(self.fh)
        self.record += line
        return line


def _diagnose_csv(path: str) -> str | None:
    """The first line that breaks the CSV: more fields than the header, or broken quoting. Run only
    after polars failed (Python's csv module, one pass, stops at the first problem)."""
    import csv  # noqa: PLC0415

    with open(path, newline="", encoding="utf-8-sig") as fh:
        tap = _Tap(fh)
        reader = csv.reader(tap, strict=True)
        header = next(reader, [])
        width, row, end_line = len(header), 0, reader.line_num
        quoting = ("a value holding a comma, a double quote or a line break must be in double quotes, "
                   'with each double quote inside doubled ("")')
        while True:
            tap.record = ""
            start_line = end_line + 1
            try:
                fields = next(reader)
            except StopIteration:
                return None
            except csv.Error as err:
                if "end of data" in str(err):
                    return f"line {start_line} (row {row}) opens a quoted value that is never closed (it runs to the end of the file); {quoting}"
                return f"line {reader.line_num} (row {row}): broken quoting ({err}); {quoting}"
            end_line = reader.line_num
            if len(fields) > width:
                return (f"line {start_line} (row {row}) has {len(fields)} fields but the header (line 1) has {width}; "
                        f"{quoting}")
            stray = [i for i, f in enumerate(fields) if '"' in f and f in tap.record]
            if stray:
                col = header[stray[0]] if stray[0] < width else f"field {stray[0] + 1}"
                return f"line {start_line} (row {row}), column {col!r}: a double quote inside an unquoted value; {quoting}"
            row += 1


_JSON_KIND = {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}


def _diagnose_jsonl(path: str) -> str | None:
    """The first JSONL line that is not one JSON object, or the first value whose type clashes
    with the same key's earlier values in a way polars cannot merge (object / array / boolean vs
    anything else). Lines are split on \\n only (a value may hold U+2028 and friends unescaped)."""
    import json  # noqa: PLC0415

    first: dict[str, tuple[str, int]] = {}
    row = 0
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            text = raw.strip()
            if not text:
                continue  # blank lines are allowed (and skipped by polars too)
            try:
                value = json.loads(text)
            except json.JSONDecodeError as err:
                hint = "every line must be one complete JSON object, e.g. {\"topic\": \"cats\"}"
                if number == 1 and text in (b"[", b"{") or text.startswith(b"[{"):
                    hint = ("this looks like a JSON document spread over lines or one JSON array, not JSON Lines; "
                            "convert it to one object per line (e.g. `jq -c '.[]' in.json > out.jsonl`)")
                return f"line {number} (row {row}), character {err.colno}: not valid JSON ({err.msg}); {hint}"
            if not isinstance(value, dict):
                kind = "null" if value is None else _JSON_KIND.get(type(value), type(value).__name__)
                return f"line {number} (row {row}) is a JSON {kind}, not an object; every line must be one JSON object, e.g. {{\"topic\": \"cats\"}}"
            for key, val in value.items():
                if val is None:
                    continue
                kind = _JSON_KIND.get(type(val), "value")
                seen = first.setdefault(key, (kind, number))
                if seen[0] != kind and ({seen[0], kind} & {"object", "array", "boolean"}):
                    return (f"line {number} (row {row}), column {key!r}: a JSON {kind}, but line {seen[1]} has a JSON {seen[0]} "
                            f"in that column; a column needs one type: make these values one type (e.g. a JSON string)")
            row += 1
    return None
