"""joined_results: read Bedrock's `.jsonl.out` files, parse them per provider, left-join onto
the records.

Output lines come in any order (docs/bedrock-facts.md §4) and look like
`{"recordId", "modelInput", "modelOutput"}` or `{"recordId", "modelInput", "error": {"errorCode",
"errorMessage"}}`. The JSON reader is given a schema without `modelInput`, so the echoed request
(large, and possibly PII) is never materialised.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import PurePosixPath
from typing import Any

import polars as pl

from bedrock_assets import ledger, parquet_splice
from bedrock_assets.prefetch import prefetched
from bedrock_assets.providers import Provider
from bedrock_assets.records import RECORD_ID

MANIFEST_NAME = "manifest.json.out"
OUTPUT_SUFFIX = ".out"
STATUS_SUCCEEDED = "succeeded"
STATUS_FAILED = "failed"
STATUS_SKIPPED = "skipped"
STATUS_MISSING = "missing"
ERROR_COLUMNS = ("error_code", "error_message")
_FILE = "__file"
_LINE = "__line"
_MATCHED = "__matched"


class OutputParseError(ValueError):
    """A `.jsonl.out` line is not JSON (e.g. a truncated file); the message names file and line."""


@dataclasses.dataclass(frozen=True)
class ManifestTotals:
    """Sum of Bedrock's `manifest.json.out` counts over one or more jobs."""

    records: int = 0
    processed: int = 0
    success: int = 0
    error: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


@dataclasses.dataclass(frozen=True)
class ResultsSummary:
    rows: int
    succeeded: int
    failed: int
    skipped: int
    missing: int
    duplicates: int  # successful answers beyond the first for a record id (answered twice)
    orphans: int  # output lines whose record id is not among the records of their shard
    # Output files / lines read with the full parse instead of the answer-only cut (ParseStats).
    slow_path_files: int = 0
    slow_path_lines: int = 0

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def _basename(path: str) -> str:
    return PurePosixPath(str(path).split("?", 1)[0]).name


def is_manifest(path: str) -> bool:
    return _basename(path) == MANIFEST_NAME


def output_columns(provider: Provider) -> list[str]:
    """The uniform columns read_outputs yields for a provider (after `record_id`)."""
    probe = provider.output_columns(pl.lit(None, provider.output_schema))
    return list(probe) + list(ERROR_COLUMNS)


def _line_schema(provider: Provider) -> dict[str, pl.DataType]:
    # errorCode is a number in AWS's example and a string in some emulators; reading it as a
    # string accepts both (a JSON number is kept as its text).
    return {
        "recordId": pl.String(),
        "modelOutput": provider.output_schema,
        "error": pl.Struct({"errorCode": pl.String, "errorMessage": pl.String}),
    }


def read_outputs(
    uris_or_paths: Iterable[str | os.PathLike[str]],
    provider: Provider,
    storage_options: Mapping[str, str] | None = None,
) -> pl.LazyFrame:
    """Scan `.jsonl.out` files (local or s3://) into `record_id`, the provider's columns
    (text: response, stop_reason, input_tokens, output_tokens; embedding: embedding,
    input_tokens), `error_code`, `error_message`, plus `__file`/`__line` (used by join_results
    to pick one line per record deterministically). `manifest.json.out` entries are skipped.
    """
    paths = sorted(str(p) for p in uris_or_paths if not is_manifest(str(p)))
    if not paths:
        schema = {RECORD_ID: pl.String} | {
            name: dtype for name, dtype in ledger.answer_schema(provider).items()
        } | {_FILE: pl.String, _LINE: pl.UInt32}
        return pl.LazyFrame(schema=schema)
    return _parse_lines(_scan_lines(paths, storage_options), provider)


def _scan_lines(paths: list[str], storage_options: Mapping[str, str] | None) -> pl.LazyFrame:
    return pl.scan_lines(
        paths,
        name="__json",
        storage_options=dict(storage_options) if storage_options else None,
        include_file_paths=_FILE,
        row_index_name=_LINE,
    )


def _parse_lines(lines: pl.LazyFrame, provider: Provider) -> pl.LazyFrame:
    """`__json` (one output line each), `__file`, `__line` -> the uniform output columns.

    One JSON decode per line against a schema without modelInput: about half the CPU of
    scan_ndjson on these files, and the echoed request (large, possibly PII) is skipped by the
    decoder, never materialised.
    """
    doc = pl.col("__json").str.json_decode(pl.Struct(_line_schema(provider)))
    return (
        _nonblank(lines)
        .select(doc.alias("__doc"), pl.col(_FILE), pl.col(_LINE))
        .select(_uniform_columns(provider, pl.col("__doc").struct.field("recordId")))
    )


def _nonblank(lines: pl.LazyFrame) -> pl.LazyFrame:
    return lines.filter(pl.col("__json").str.contains(r"\S"))  # tolerate blank lines


def _uniform_columns(provider: Provider, record_id: pl.Expr) -> list[pl.Expr]:
    doc = pl.col("__doc")
    err = doc.struct.field("error")
    return [
        record_id.alias(RECORD_ID),
        *[e.alias(name) for name, e in provider.output_columns(doc.struct.field("modelOutput")).items()],
        err.struct.field("errorCode").alias("error_code"),
        err.struct.field("errorMessage").alias("error_message"),
        pl.col(_FILE),
        pl.col(_LINE),
    ]


# Each output line repeats its request before the answer (`{"recordId", "modelInput",
# "modelOutput" | "error"}`, docs/bedrock-facts.md §4), and the request is ~2/3 of the bytes. `"modelOutput":` (or
# `"error":`) with both quotes unescaped can only be a key (inside a JSON string a quote is `\"`),
# and request bodies built by the providers have no key of either name, so `{` + the line from that
# key on is the line without the request whatever the key order. The record id is then in that
# rest or, in the documented order, at the head of the line.
_ANSWER_KEY = '"modelOutput":'
_ERROR_KEY = '"error":'
_LEADING_ID = r'^\{\s*"recordId"\s*:\s*"([^"\\]*)"'


@functools.cache
def _find_counts_bytes() -> bool:
    """Whether this polars' `str.find` returns byte offsets (before 2.2, pola-rs/polars#14190)
    or character offsets (2.2 on). The cut below then slices in the same unit as find counted,
    so it lands on the key with either behaviour (docs/performance.md, "answer-only decoding")."""
    return pl.Series(["\u00e9" + _ANSWER_KEY]).str.find(_ANSWER_KEY, literal=True).item() == 2


def _cut_at(line: pl.Expr, offset: pl.Expr) -> pl.Expr:
    """`line` from `offset` on, `offset` counted as `str.find` counts (see _find_counts_bytes)."""
    if _find_counts_bytes():
        # The cut is at an ASCII quote, so the bytes from there are valid UTF-8 again.
        return line.cast(pl.Binary).bin.slice(offset).cast(pl.String)
    return line.str.slice(offset)


def _parse_answers(lines: pl.LazyFrame, provider: Provider) -> pl.LazyFrame:
    """Like _parse_lines, but JSON-decodes only what follows the echoed request (~15 % less CPU
    on the benchmark's outputs, where the answer is a third of each line). A line where that does
    not apply (another key order, an escaped record id, no key to cut at) gets a null record_id or
    fails to decode; `collect_outputs` then parses the files with _parse_lines instead."""
    line = pl.col("__json")
    # The first of the two keys, so a line carrying both keeps both.
    cut = pl.min_horizontal(line.str.find(_ANSWER_KEY, literal=True), line.str.find(_ERROR_KEY, literal=True))
    rest = pl.concat_str(pl.lit("{"), _cut_at(line, cut))
    return (
        _nonblank(lines)
        .select(
            rest.str.json_decode(pl.Struct(_line_schema(provider))).alias("__doc"),
            line.str.extract(_LEADING_ID, 1).alias("__leading_id"),
            pl.col(_FILE),
            pl.col(_LINE),
        )
        # No key to cut at (a truncated line, neither answer nor error): a null id sends the file
        # to the full parse, which says what is wrong with the line.
        .select(_uniform_columns(provider, pl.when(pl.col("__doc").is_not_null()).then(
            pl.coalesce(pl.col("__doc").struct.field("recordId"), pl.col("__leading_id")))))
    )


@dataclasses.dataclass
class ParseStats:
    """What `collect_outputs` did, summed over calls: files and lines read, and those that took
    the full parse (the slow path). A rising slow-path count means the answer-only cut stopped
    applying (a changed output format, or a library change like polars 2.2's `str.find`)."""

    files: int = 0
    lines: int = 0
    slow_files: list[str] = dataclasses.field(default_factory=list)
    slow_lines: int = 0

    def add(self, other: "ParseStats") -> None:
        self.files += other.files
        self.lines += other.lines
        self.slow_files += other.slow_files
        self.slow_lines += other.slow_lines


def collect_outputs(
    uris_or_paths: Iterable[str | os.PathLike[str]],
    provider: Provider,
    storage_options: Mapping[str, str] | None = None,
    stats: ParseStats | None = None,
) -> pl.DataFrame:
    """`read_outputs(...).collect()`, decoding only the answers when every line allows it.
    `stats`, when given, is told how many files and lines took the full parse."""
    paths = sorted(str(p) for p in uris_or_paths if not is_manifest(str(p)))
    if not paths:
        return read_outputs(paths, provider).collect()
    lines = _scan_lines(paths, storage_options)
    try:
        # The streaming engine decodes in morsels instead of all lines at once: about a third
        # less wall time and memory than the in-memory engine on the benchmark's outputs.
        fast = _parse_answers(lines, provider).collect(engine="streaming")
    except pl.exceptions.ComputeError:  # a cut line that is not JSON: see _parse_answers
        fast = None
    if fast is not None and fast[RECORD_ID].null_count() == 0:
        if stats is not None:
            stats.files += len(paths)
            stats.lines += fast.height
        return fast
    try:
        full = _parse_lines(lines, provider).collect(engine="streaming")
    except pl.exceptions.ComputeError as exc:
        raise OutputParseError(_first_bad_line(lines) or f"{', '.join(paths)}: {exc}") from exc
    if stats is not None:
        stats.files += len(paths)
        stats.lines += full.height
        stats.slow_files += paths
        stats.slow_lines += full.height
    return full


def _first_bad_line(lines: pl.LazyFrame) -> str | None:
    """`<file> line <n>: <error>` for the first output line that is not JSON (error path only)."""
    for path, number, text in _nonblank(lines).select(_FILE, _LINE, "__json").collect().iter_rows():
        try:
            json.loads(text)
        except ValueError as exc:
            # The line itself is not quoted: it echoes the request (possibly personal data).
            return f"{path} line {number + 1}: not valid JSON ({exc})"
    return None




def count_duplicates(outputs: pl.LazyFrame) -> int:
    """Successful answers beyond the first per record id. An error line followed by a retry's
    answer is not a duplicate; two answers for one record are (it was paid for twice)."""
    ok = outputs.filter(pl.col("error_code").is_null() & pl.col("error_message").is_null())
    return int(ok.select(pl.len() - pl.col(RECORD_ID).n_unique()).collect().item())


def label_outputs(outputs: pl.LazyFrame, file_labels: Mapping[str, tuple[int, str]]) -> pl.LazyFrame:
    """Add `attempt` and `answered_by` (batch / on-demand) from the file each line came from."""
    files = list(file_labels)
    return outputs.with_columns(
        pl.col(_FILE).replace_strict(files, [file_labels[f][0] for f in files], default=None, return_dtype=pl.Int32).alias("attempt"),
        pl.col(_FILE).replace_strict(files, [file_labels[f][1] for f in files], default=None, return_dtype=pl.String).alias("answered_by"),
    )


def dedupe_outputs(outputs: pl.LazyFrame) -> pl.LazyFrame:
    """One line per record id: a success over an error, then the first by (file, line).

    Independent of the order the lines arrive in, so reruns keep the same answer.
    """
    return (
        outputs.sort([RECORD_ID, pl.col("error_code").is_not_null(), _FILE, _LINE])
        .unique(subset=RECORD_ID, keep="first", maintain_order=True)
    )


def join_results(
    records: pl.LazyFrame,
    outputs: pl.LazyFrame,
    skipped: pl.Expr | None = None,
    file_labels: Mapping[str, tuple[int, str]] | None = None,
    dedupe: bool = True,
) -> pl.LazyFrame:
    """Left-join outputs onto the records by record_id: every record exactly once, in order.

    Adds the provider's columns, `error_code`, `error_message` and `status`: `succeeded`,
    `failed` (an error line), `skipped` (no line and `skipped` is true for the row, e.g.
    `shards.empty_text(...)` under skip_empty) or `missing` (no output line). Duplicate lines
    are reduced with `dedupe_outputs` (dedupe=False skips that sort when the caller knows every
    record id occurs once); count them first with `count_duplicates` if needed. `file_labels`
    (output path -> (attempt, answered_by)) adds those two columns.
    """
    outs = _answers(outputs, file_labels, dedupe)
    return _with_status(records.join(outs, on=RECORD_ID, how="left", maintain_order="left"), skipped)


def _answers(outputs: pl.LazyFrame, file_labels: Mapping[str, tuple[int, str]] | None, dedupe: bool) -> pl.LazyFrame:
    if file_labels is not None:
        outputs = label_outputs(outputs, file_labels)
    return (dedupe_outputs(outputs) if dedupe else outputs).drop(_FILE, _LINE).with_columns(pl.lit(True).alias(_MATCHED))


def _with_status(joined: pl.LazyFrame, skipped: pl.Expr | None) -> pl.LazyFrame:
    is_skipped = skipped if skipped is not None else pl.lit(False)
    status = (
        pl.when(pl.col(_MATCHED).is_null() & is_skipped.fill_null(False))
        .then(pl.lit(STATUS_SKIPPED))
        .when(pl.col(_MATCHED).is_null())
        .then(pl.lit(STATUS_MISSING))
        .when(pl.col("error_code").is_not_null() | pl.col("error_message").is_not_null())
        .then(pl.lit(STATUS_FAILED))
        .otherwise(pl.lit(STATUS_SUCCEEDED))
    )
    return joined.with_columns(status.alias("status")).drop(_MATCHED)


def read_manifests(
    uris_or_paths: Iterable[str | os.PathLike[str]],
    storage_options: Mapping[str, str] | None = None,
) -> ManifestTotals:
    """Sum the counts of `manifest.json.out` files (other paths are ignored).

    Embedding jobs may omit outputTokenCount; a missing count is 0.
    """
    keys = {
        "totalRecordCount": "records",
        "processedRecordCount": "processed",
        "successRecordCount": "success",
        "errorRecordCount": "error",
        "inputTokenCount": "input_tokens",
        "outputTokenCount": "output_tokens",
    }
    paths = sorted(str(p) for p in uris_or_paths if is_manifest(str(p)))
    totals = dict.fromkeys(keys.values(), 0)
    for path in paths:
        df = pl.read_ndjson(path, storage_options=dict(storage_options) if storage_options else None)
        for key, name in keys.items():
            if key in df.columns:
                totals[name] += int(df[key].cast(pl.Int64).fill_null(0).sum())
    return ManifestTotals(**totals)


def _shard_of_output(path: str) -> str:
    name = _basename(path)
    return name[: -len(OUTPUT_SUFFIX)] if name.endswith(OUTPUT_SUFFIX) else name


def _answer_segment(
    records_scan: pl.LazyFrame,
    start: int,
    stop: int,
    outs: pl.DataFrame,
    skipped: pl.Expr | None,
    file_labels: Mapping[str, tuple[int, str]] | None,
) -> tuple[pl.DataFrame, int, int]:
    """The answer columns (provider columns, errors, status, labels) for records `start..stop`,
    in record order, from their parsed output lines `outs` (collect_outputs); with the range's
    duplicate answer count (see count_duplicates) and orphan count (record ids answered that are
    not among its records). Of the records only `record_id` is read, and the columns `skipped`
    reads when some record has no line: the input columns are copied encoded (parquet_splice)."""
    records = records_scan.select(RECORD_ID).slice(start, stop - start).collect()
    ids = outs[RECORD_ID].n_unique() if outs.height else 0
    duplicates = count_duplicates(outs.lazy()) if outs.height != ids else 0
    aligned = ids == outs.height == records.height and records[RECORD_ID].is_sorted()
    ordered = outs.sort(RECORD_ID) if aligned else None
    if ordered is not None and (ordered[RECORD_ID] == records[RECORD_ID]).all():
        # One line per record and records in id order (the default positional ids): the join is
        # putting the lines in id order beside the records (~4x less CPU than the hash join), and
        # with every record answered `skipped` cannot apply.
        table = _with_status(_answers(ordered.lazy(), file_labels, dedupe=False), None).collect()
    else:
        if skipped is not None:  # the columns the text is made of, for records with no line
            extra = sorted(set(skipped.meta.root_names()) - {RECORD_ID})
            records = records_scan.select(RECORD_ID, *extra).slice(start, stop - start).collect()
        table = join_results(records.lazy(), outs.lazy(), skipped, file_labels=file_labels, dedupe=outs.height != ids).collect()
        table = table.drop(records.columns)
    answered = int(table["status"].is_in([STATUS_SUCCEEDED, STATUS_FAILED]).sum())
    return table.drop(RECORD_ID, strict=False), duplicates, ids - answered


def answer_columns(records_columns: Sequence[str], provider: Provider, skipped: pl.Expr | None = None,
                   file_labels: Mapping[str, tuple[int, str]] | None = None) -> pl.Schema:
    """Names and types of the columns joined_results adds after the records' own columns."""
    empty = pl.LazyFrame(schema={c: pl.String for c in records_columns})
    full = join_results(empty, read_outputs([], provider), skipped, file_labels=file_labels).collect_schema()
    return pl.Schema({name: dtype for name, dtype in full.items() if name not in records_columns})


def reserved_columns(provider: Provider) -> list[str]:
    """Every column name joined_results adds for this provider, whatever the spec."""
    old = answer_columns([RECORD_ID], provider, skipped=pl.lit(False), file_labels={})
    return list(dict.fromkeys([*old, *ledger_answer_columns(provider)]))


def clashing_columns(records_columns: Sequence[str], provider: Provider) -> list[str]:
    """Input columns that have the name of a column joined_results adds (they would be ambiguous
    in results.parquet). jsonl_shards checks this before any job is created."""
    return sorted(set(records_columns) & set(reserved_columns(provider)))


def segments(shards: Sequence[Mapping[str, Any]], total_rows: int) -> list[tuple[str, int, int]]:
    """(shard name, start, stop) covering rows 0..total_rows in order: the shards' ranges, and
    ranges no shard covers (name "") in between and after them."""
    out: list[tuple[str, int, int]] = []
    pos = 0
    for s in sorted(shards, key=lambda s: int(s["row_start"])):
        start, stop = int(s["row_start"]), int(s["row_stop"])
        if start < pos or stop < start or stop > total_rows:
            raise ValueError(f"shard {s['name']}: rows {start}..{stop} overlap another shard or pass the {total_rows} records")
        if start > pos:
            out.append(("", pos, start))
        out.append((str(s["name"]), start, stop))
        pos = stop
    if pos < total_rows:
        out.append(("", pos, total_rows))
    return out


def regroup(frames: Iterable[pl.DataFrame], counts: Sequence[int]) -> Iterator[pl.DataFrame]:
    """The rows of `frames`, in order, cut into frames of `counts` rows each (records.parquet's
    row groups; an empty frame for a count of 0). Raises when the rows do not add up."""
    pending: list[pl.DataFrame] = []
    have = seen = 0
    wanted = iter(counts)
    need = next(wanted, None)
    for frame in frames:
        if frame.height:
            pending.append(frame)
            have += frame.height
            seen += frame.height
        while need is not None and have >= need:
            if need == 0:
                yield pl.DataFrame()
            else:
                joined = pl.concat(pending, rechunk=False) if len(pending) > 1 else pending[0]
                yield joined.slice(0, need)
                rest = joined.slice(need)
                pending, have = ([rest] if rest.height else []), have - need
            need = next(wanted, None)
    while need == 0:
        yield pl.DataFrame()
        need = next(wanted, None)
    if need is not None or have:
        raise ValueError(f"answers for {seen} rows, records.parquet has {sum(counts)}")


# Long, distinct values: a dictionary or min/max statistics help no reader and cost encode CPU
# (~25 % of writing them).
_LONG_COLUMNS = ("response", "embedding", "error_message")


def _encoder(schema: pl.Schema, compression: str) -> Callable[[pl.DataFrame], bytes]:
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    arrow_schema = pl.DataFrame(schema=schema).to_arrow().schema  # plain string types in the file
    short = [name for name in schema if name not in _LONG_COLUMNS]

    def encode(frame: pl.DataFrame) -> bytes:
        table = frame.select(schema.names()).to_arrow(compat_level=pl.CompatLevel.newest()).cast(arrow_schema) if frame.width else pa.table(
            {n: pa.nulls(0, t) for n, t in zip(arrow_schema.names, arrow_schema.types)})
        buf = io.BytesIO()
        pq.write_table(
            table, buf, row_group_size=max(table.num_rows, 1),
            compression="none" if compression == "none" else compression,
            compression_level=1 if compression == "zstd" else None,
            use_dictionary=short, write_statistics=short, store_schema=False,
        )
        return buf.getvalue()

    return encode


def _splice(
    records_path: str | os.PathLike[str],
    dest_path: str | os.PathLike[str],
    schema: pl.Schema,
    compression: str,
    frames: Callable[[Sequence[int]], Iterable[pl.DataFrame]],
) -> None:
    """Write results.parquet at `dest_path`: records.parquet's encoded column chunks (copied,
    see parquet_splice) beside the answer columns `frames(row group sizes)` yields, one frame
    per records.parquet row group, encoded with `schema` and `compression`. A failure leaves no
    file behind."""
    encode = _encoder(schema, compression)
    writer = parquet_splice.SplicedParquetWriter(records_path, dest_path)
    try:
        # pyarrow encodes a row group on one thread with the GIL released: two encoders keep both
        # cores busy beside polars' work on the next frames; a few row groups in flight bound the memory.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="encode") as pool:
            pending: deque[Future[bytes]] = deque()
            for frame in frames(writer.left_row_counts):
                pending.append(pool.submit(encode, frame))
                while len(pending) > 3:
                    writer.append(pending.popleft().result())
            while pending:
                writer.append(pending.popleft().result())
        writer.close(schema_part=encode(pl.DataFrame(schema=schema)))
    except BaseException:
        writer.abort()
        raise


def write_results(
    records_path: str | os.PathLike[str],
    shards: Sequence[Any],
    output_paths: Iterable[str | os.PathLike[str]],
    provider: Provider,
    dest_path: str | os.PathLike[str],
    skipped: pl.Expr | None = None,
    storage_options: Mapping[str, str] | None = None,
    file_labels: Mapping[str, tuple[int, str]] | None = None,
    compression: str = "zstd",
) -> ResultsSummary:
    """Join the outputs onto the local `records.parquet` shard by shard and write one parquet file:
    every records column as it is encoded there (copied, not decoded: see parquet_splice), then
    the answer columns, compressed with `compression` (a codec of `specs.RESULTS_CODECS`; zstd
    at level 1: on the benchmark's text level 3 made a 16 % smaller file for 1.6x the write time).

    `shards` are the ShardInfo (or dicts with name/row_start/row_stop) of the written shards;
    `<shard name>.out` files (local or s3:// with `storage_options`) answer for that shard's rows
    (retries of a shard reuse its name). One shard's outputs at a time keeps memory bounded
    whatever the input size; row groups follow records.parquet's, encoded on two threads while
    polars parses the next shard. Output lines in files of no known shard count as orphans.
    Records no shard covers come out as skipped/missing. `file_labels` is passed to join_results
    (attempt / answered_by columns).
    """
    opts = dict(storage_options) if storage_options else None
    by_shard: dict[str, list[str]] = {}
    for p in output_paths:
        if not is_manifest(str(p)):
            by_shard.setdefault(_shard_of_output(str(p)), []).append(str(p))
    infos = [s if isinstance(s, Mapping) else dataclasses.asdict(s) for s in shards]
    known = {s["name"] for s in infos}
    orphan_files = sorted(f for name, files in by_shard.items() if name not in known for f in files)
    records_scan = pl.scan_parquet(records_path)
    records_columns = records_scan.collect_schema().names()
    clash = clashing_columns(records_columns, provider)
    if clash:
        raise ValueError(f"{records_path}: input column(s) {', '.join(clash)} have the name of a result column")
    schema = answer_columns(records_columns, provider, skipped, file_labels)
    counts = dict.fromkeys((STATUS_SUCCEEDED, STATUS_FAILED, STATUS_SKIPPED, STATUS_MISSING), 0)
    tally = {"duplicates": 0, "orphans": 0, "rows": 0}
    parse_stats = ParseStats()

    def parsed(segment: tuple[str, int, int]) -> tuple[pl.DataFrame, ParseStats]:
        # One ParseStats per call, merged on the consuming thread (prefetch runs this on a worker).
        mine = ParseStats()
        outs = collect_outputs(by_shard.get(segment[0], []) if segment[0] else [], provider, storage_options=opts, stats=mine)
        return outs, mine

    def answered_segments(ranges: list[tuple[str, int, int]]) -> Iterator[pl.DataFrame]:
        # The next shard's outputs are parsed on a worker thread while this one is joined and
        # encoded (polars and pyarrow release the GIL).
        for (name, start, stop), (outs, mine) in zip(ranges, prefetched(parsed, ranges, depth=1, name="outputs")):
            parse_stats.add(mine)
            table, dups, orph = _answer_segment(records_scan, start, stop, outs, skipped, file_labels)
            tally["duplicates"] += dups
            tally["orphans"] += orph
            tally["rows"] += table.height
            for status, n in table["status"].value_counts().iter_rows():
                counts[status] += n
            yield table

    _splice(records_path, dest_path, schema, compression,
            lambda row_groups: regroup(answered_segments(segments(infos, sum(row_groups))), row_groups))
    duplicates, orphans, rows = tally["duplicates"], tally["orphans"], tally["rows"]
    for f in orphan_files:
        orphans += int(read_outputs([f], provider, storage_options=opts).select(pl.len()).collect().item())
    return ResultsSummary(
        rows=rows,
        succeeded=counts[STATUS_SUCCEEDED],
        failed=counts[STATUS_FAILED],
        skipped=counts[STATUS_SKIPPED],
        missing=counts[STATUS_MISSING],
        duplicates=duplicates,
        orphans=orphans,
        slow_path_files=len(parse_stats.slow_files),
        slow_path_lines=parse_stats.slow_lines,
    )


# --- joined_results from the ledger ----------------------------------------------------------
# Columns results.parquet adds after the records' own: the answer (provider columns, errors),
# where it came from, and the request it answers.
_LEDGER_LABELS = {"attempt": pl.Int32(), "answered_by": pl.String(), "request_digest": pl.String(), "status": pl.String()}


def ledger_answer_columns(provider: Provider) -> pl.Schema:
    """Names and types of the columns write_answers adds after the records' own columns."""
    return pl.Schema(ledger.answer_schema(provider) | _LEDGER_LABELS)


def _ledger_segment(index: pl.DataFrame, answers: pl.DataFrame, provider: Provider, skip_empty: bool) -> pl.DataFrame:
    """The answer columns for a slice of `index` (one row per record, in record order: `__a` =
    the row of `answers` holding its request's answer, `request_digest`, `cached`; see
    write_answers). A record with no request was skipped (skip_empty); one whose request has no
    answer is missing. Gathered by position, so a slice costs its own rows, not the table's."""
    cols = list(ledger.answer_schema(provider))
    matched = index["__a"].is_not_null()
    picked = answers.select(*cols, "attempt", "answered_by").gather(index["__a"].fill_null(0)) if answers.height else None
    frame = index.select("request_digest", "cached").with_columns(matched.alias(_MATCHED))
    if picked is None:
        frame = frame.with_columns(pl.lit(None, dtype).alias(name) for name, dtype in
                                   (ledger.answer_schema(provider) | {"attempt": pl.Int32(), "answered_by": pl.String()}).items())
    else:
        frame = frame.with_columns(picked.with_columns(pl.when(matched).then(pl.col(c)) for c in picked.columns))
    status = (
        pl.when(pl.col("request_digest").is_null()).then(pl.lit(STATUS_SKIPPED if skip_empty else STATUS_MISSING))
        .when(~pl.col(_MATCHED)).then(pl.lit(STATUS_MISSING))
        .when(pl.col("error_code").is_not_null() | pl.col("error_message").is_not_null()).then(pl.lit(STATUS_FAILED))
        .otherwise(pl.lit(STATUS_SUCCEEDED))
    )
    answered_by = pl.when(pl.col("cached").fill_null(False) & pl.col(_MATCHED)).then(pl.lit("cache")).otherwise(pl.col("answered_by"))
    return frame.select(
        *cols, pl.col("attempt").cast(pl.Int32), answered_by.alias("answered_by"),
        pl.when(pl.col(_MATCHED)).then(pl.col("request_digest")).alias("request_digest"), status.alias("status"),
    )


def write_answers(
    records_path: str | os.PathLike[str],
    requests: pl.DataFrame,
    answers: pl.DataFrame,
    provider: Provider,
    dest_path: str | os.PathLike[str],
    skip_empty: bool = False,
    compression: str = "zstd",
) -> ResultsSummary:
    """results.parquet from the ledger: every records.parquet row (copied encoded, see
    parquet_splice) with its request's answer. `requests` is jsonl_shards' requests.parquet
    (record_id, request_digest, cached); `answers` holds one ledger row per request digest
    (ledger.best_answers). One records.parquet row group at a time, encoded on two threads."""
    records_scan = pl.scan_parquet(records_path)
    records_columns = records_scan.collect_schema().names()
    clash = clashing_columns(records_columns, provider)
    if clash:
        raise ValueError(f"{records_path}: input column(s) {', '.join(clash)} have the name of a result column")
    schema = ledger_answer_columns(provider)
    counts = dict.fromkeys((STATUS_SUCCEEDED, STATUS_FAILED, STATUS_SKIPPED, STATUS_MISSING), 0)
    # One join of keys only: each record -> its request -> the row of `answers` answering it.
    # The answer columns are then gathered per row group by position.
    keys = requests.select(RECORD_ID, "request_digest", "cached").join(
        answers.select("request_digest").with_row_index("__a"), on="request_digest", how="left", maintain_order="left")
    index = records_scan.select(RECORD_ID).collect().join(keys, on=RECORD_ID, how="left", maintain_order="left")
    rows = 0

    def frames(row_groups: Sequence[int]) -> Iterator[pl.DataFrame]:
        nonlocal rows
        start = 0
        for n in row_groups:
            frame = _ledger_segment(index.slice(start, n), answers, provider, skip_empty) if n else pl.DataFrame()
            start += n
            rows += frame.height
            if frame.height:
                for status, k in frame["status"].value_counts().iter_rows():
                    counts[status] += k
            yield frame

    _splice(records_path, dest_path, schema, compression, frames)
    return ResultsSummary(
        rows=rows, succeeded=counts[STATUS_SUCCEEDED], failed=counts[STATUS_FAILED],
        skipped=counts[STATUS_SKIPPED], missing=counts[STATUS_MISSING], duplicates=0, orphans=0,
    )
