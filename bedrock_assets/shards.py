"""jsonl_shards: validate records, render each as a Bedrock JSONL line, plan and write shards.

A line is `{"recordId":"…","modelInput":{…}}` built by polars expressions: the prompt template
becomes a `concat_str` of literals and columns, the provider wraps it in its request body, and
polars' JSON serializer does the escaping (exactly what `json.loads` reads back). Rows stream
through the engine in batches; no Python code runs per row.

Shards obey Bedrock's quotas (docs/bedrock-facts.md §3): at most `max_records_per_job` records and
`max_bytes_per_file` bytes per file, and at least `min_records_per_job` records per job where the
records allow it (fewer make one shard, which the shard step answers on-demand). Sizes are
balanced (9,000 records over 50,000-record shards = 1 shard; 100,001 = 3 shards of ~33,334, not
50,000 + 50,000 + 1), so a tail shard is never below the minimum when that can be avoided.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import string
from concurrent.futures import Future, ThreadPoolExecutor
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import polars_hash  # noqa: F401 - registers the `nchash` expression namespace (request digests)
import pyarrow as pa
import xxhash


from bedrock_assets import ledger, results
from bedrock_assets.prefetch import prefetched
from bedrock_assets.providers import Provider, json_object, json_value
from bedrock_assets.providers.base import BYTES_PER_TOKEN_ESTIMATE
from bedrock_assets.records import RECORD_ID

SHARD_NAME = "shard-{:05d}.jsonl"
_SHOW_ROWS = 5  # offending rows named in an error message
# JSON escaping can grow a byte to at most 6 (`\u001f`), so 6x the raw size bounds a line.
_MAX_ESCAPE_GROWTH = 6
# Rows per batch handed from the polars engine to the shard writer (~tens of MB of lines).
WRITE_BATCH_ROWS = 20_000


class InputValidationError(ValueError):
    """The input cannot be turned into valid Bedrock records; the message names file, row, column."""


class ShardPlanError(InputValidationError):
    """The records cannot be split into shards that satisfy the record/byte quotas."""


@dataclasses.dataclass(frozen=True)
class Column:
    """A `{name}` placeholder of a prompt template."""

    name: str


TemplatePart = str | Column


@dataclasses.dataclass(frozen=True)
class ShardInfo:
    """One written shard. Rows `row_start..row_stop` (0-based, half-open, positions in the
    records table, skipped rows included) are the records this shard answers for."""

    name: str
    records: int
    bytes: int
    digest: str  # content_digest of the file's bytes: the shard's identity for its Bedrock jobs
    first_record_id: str
    last_record_id: str
    row_start: int
    row_stop: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class ValidationReport:
    rows: int  # input rows
    skipped_rows: np.ndarray  # sorted 0-based positions of rows skipped as empty (spec.skip_empty)
    text_bytes: int  # UTF-8 bytes of all rendered texts that are sent

    @property
    def skipped(self) -> int:
        return len(self.skipped_rows)

    @property
    def records(self) -> int:
        return self.rows - self.skipped

    def row_of_record(self, k: np.ndarray | int) -> np.ndarray:
        """Row position of the k-th sent record (records are rows minus skipped rows)."""
        adjusted = self.skipped_rows - np.arange(len(self.skipped_rows))
        k = np.asarray(k, dtype=np.int64)
        return k + np.searchsorted(adjusted, k, side="right")


# --- templates -----------------------------------------------------------------------------


def parse_template(template: str) -> list[TemplatePart]:
    """Split a `str.format`-style template into literals and `Column`s.

    `{{` and `}}` are literal braces, as in str.format. The whole text between braces is the
    column name (so a column may be called `user.name`); format specs and conversions (`{x:>5}`,
    `{x!r}`) and empty placeholders `{}` are rejected because a column has no such meaning.
    """
    parts: list[TemplatePart] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise InputValidationError(f"prompt template is malformed ({exc}); use {{{{ and }}}} for literal braces") from None
    for literal, field, spec, conversion in parsed:
        if literal:
            # Formatter splits at each `{{`/`}}`; merge so the parts are minimal.
            if parts and isinstance(parts[-1], str):
                parts[-1] += literal
            else:
                parts.append(literal)
        if field is None:
            continue
        if field == "" or field.isdigit():
            raise InputValidationError("prompt template has a positional placeholder {}; name a column, e.g. {text}")
        if spec or conversion:
            raise InputValidationError(
                f"prompt template placeholder {{{field}{'!' + conversion if conversion else ''}"
                f"{':' + spec if spec else ''}}} has a format spec; only plain {{column}} is supported"
            )
        parts.append(Column(field))
    return parts


def text_parts(spec: Any, provider: Provider) -> list[TemplatePart]:
    """The text a record sends: the spec's prompt template, else its `text_column`."""
    template = spec.template
    if template is not None:
        return parse_template(template)
    if spec.text_column:
        return [Column(spec.text_column)]
    what = "a prompt (prompt or prompt_id)" if provider.kind == "text" else "text_column (or a prompt)"
    raise InputValidationError(f"batch {spec.name!r}: {provider.family} needs {what} in the spec")


def input_columns(parts: Sequence[TemplatePart]) -> list[str]:
    """Distinct columns a template reads, in order of first use."""
    return list(dict.fromkeys(p.name for p in parts if isinstance(p, Column)))


def _as_text(name: str) -> pl.Expr:
    return pl.col(name).cast(pl.String)


def text_expr(parts: Sequence[TemplatePart]) -> pl.Expr:
    """The rendered text: literals and (string-cast) columns concatenated; null if any is null."""
    exprs = [pl.lit(p) if isinstance(p, str) else _as_text(p.name) for p in parts]
    if len(exprs) == 1 and not isinstance(parts[0], str):
        return exprs[0]
    return pl.concat_str(exprs) if exprs else pl.lit("")


def empty_text(parts: Sequence[TemplatePart]) -> pl.Expr:
    """True when any column the text reads is null, empty or whitespace only.

    Such a record would send a prompt with a hole in it (or nothing to embed), which Bedrock
    rejects or, worse, answers. `skip_empty` drops these rows; otherwise they are an error.
    """
    cols = input_columns(parts)
    if not cols:
        return pl.lit(False)
    return pl.any_horizontal([~_as_text(c).str.contains(r"\S").fill_null(False) for c in cols])


def _literal_sizes(parts: Sequence[TemplatePart]) -> tuple[int, int]:
    lits = [p for p in parts if isinstance(p, str)]
    return sum(len(p.encode()) for p in lits), sum(len(p) for p in lits)


def text_bytes_expr(parts: Sequence[TemplatePart]) -> pl.Expr:
    """UTF-8 byte length of the rendered text, without building it."""
    lit_bytes, _ = _literal_sizes(parts)
    cols = [p.name for p in parts if isinstance(p, Column)]
    return pl.sum_horizontal([pl.lit(lit_bytes, pl.Int64)] + [_as_text(c).str.len_bytes().cast(pl.Int64) for c in cols])


def text_chars_expr(parts: Sequence[TemplatePart]) -> pl.Expr:
    """Character length of the rendered text, without building it."""
    _, lit_chars = _literal_sizes(parts)
    cols = [p.name for p in parts if isinstance(p, Column)]
    return pl.sum_horizontal([pl.lit(lit_chars, pl.Int64)] + [_as_text(c).str.len_chars().cast(pl.Int64) for c in cols])


# What follows a line's record id: the request body comes right after it (shards written here
# always have this layout, which attempts and the request digests rely on).
MODEL_INPUT_KEY = ',"modelInput":'


def record_id_json() -> pl.Expr:
    """`{"recordId":"<escaped id>"` (the line's opening, without the closing brace)."""
    return json_object({"recordId": pl.col(RECORD_ID)}).str.strip_suffix("}")


def _text_slot_parts(spec: Any, provider: Provider) -> tuple[str, pl.Expr, str] | None:
    """`(lead, escaped, trail)` such that `lead + escaped + trail` is the JSON of modelInput, with
    only the text column going through the JSON escaper; None when the fast path does not apply.

    When the text has one column and the provider offers a `text_slot`, the template's literals
    are escaped once here instead of on every row; a 1 kB template around a 600-byte column then
    costs ~40% of escaping the whole prompt. Same bytes as `provider.model_input(text_expr(...))`
    (tested).
    """
    parts = text_parts(spec, provider)
    cols = [i for i, p in enumerate(parts) if isinstance(p, Column)]
    slot = provider.text_slot()
    if slot is None or len(cols) != 1 or not slot[1].startswith("}"):
        return None
    prefix, suffix = slot
    i = cols[0]
    head = "".join(p for p in parts[:i] if isinstance(p, str))
    tail = "".join(p for p in parts[i + 1 :] if isinstance(p, str))
    column = _as_text(parts[i].name)  # type: ignore[union-attr]
    value = pl.concat_str([column, pl.lit(tail)]) if tail else column
    # `{"t":"<escaped value>"}` minus its 6-byte opening: the closing `"}` ends the JSON string
    # and the object the text is the last member of (suffix[0] == "}").
    escaped = json_object({"t": value}).str.slice(6)
    return prefix + json_value(head)[:-1], escaped, suffix[1:]


def model_input_expr(spec: Any, provider: Provider) -> pl.Expr:
    """JSON text of each row's modelInput (see `_text_slot_parts` for the fast path)."""
    slot = _text_slot_parts(spec, provider)
    if slot is None:
        return provider.model_input(text_expr(text_parts(spec, provider)))
    lead, escaped, trail = slot
    return pl.concat_str([pl.lit(lead), escaped, pl.lit(trail)])


def line_expr(spec: Any, provider: Provider, newline: bool = False) -> pl.Expr:
    """The JSONL line `{"recordId":…,"modelInput":{…}}` of each row (optionally with `\\n`).

    One `concat_str` over the pieces (rather than nesting the modelInput's own concat in it):
    every byte of a 2 kB line is then copied once instead of twice.
    """
    tail = "}\n" if newline else "}"
    slot = _text_slot_parts(spec, provider)
    if slot is None:
        pieces = [pl.lit(MODEL_INPUT_KEY), model_input_expr(spec, provider), pl.lit(tail)]
    else:
        lead, escaped, trail = slot
        pieces = [pl.lit(MODEL_INPUT_KEY + lead), escaped, pl.lit(trail + tail)]
    return pl.concat_str([record_id_json(), *pieces]).alias("line")


def render_lines(lf: pl.LazyFrame, spec: Any, provider: Provider) -> pl.LazyFrame:
    """`record_id, line` for every record that is sent (rows skipped by skip_empty are left out)."""
    parts = text_parts(spec, provider)
    if spec.skip_empty:
        lf = lf.filter(~empty_text(parts))
    return lf.select(pl.col(RECORD_ID), line_expr(spec, provider))


# --- validation ----------------------------------------------------------------------------


def _row_label(row: dict[str, Any]) -> str:
    return f"row {row['__row']} (record_id {row[RECORD_ID]!r})"


def check_columns(lf: pl.LazyFrame, spec: Any, provider: Provider, source_label: str) -> list[TemplatePart]:
    """The text's template parts, after checking that the records have `record_id` and every
    column the text reads (InputValidationError naming the file and the missing columns)."""
    parts = text_parts(spec, provider)
    columns = lf.collect_schema().names()
    if RECORD_ID not in columns:
        raise InputValidationError(f"{source_label}: records have no {RECORD_ID!r} column (assign_record_ids first)")
    missing = [c for c in input_columns(parts) if c not in columns]
    if missing:
        where = "prompt template uses" if spec.template is not None else "text_column is"
        raise InputValidationError(
            f"{source_label}: the {where} {', '.join('{' + c + '}' for c in missing)} but the input has no "
            f"column {', '.join(repr(c) for c in missing)}; columns: {[c for c in columns if c != RECORD_ID]}"
        )
    # Checked here, before any job: results.parquet puts the records' columns beside the answer
    # columns, and a second `status` or `response` would make the file ambiguous.
    clash = results.clashing_columns(columns, provider)
    if clash:
        raise InputValidationError(
            f"{source_label}: input column(s) {', '.join(repr(c) for c in clash)} have the name of a column "
            f"joined_results adds; rename them (reserved: {', '.join(results.reserved_columns(provider))})"
        )
    return parts


def _max_text_bytes(provider: Provider) -> int:
    return provider.max_input_tokens * BYTES_PER_TOKEN_ESTIMATE


def _chars_over(parts: Sequence[TemplatePart], max_chars: int | None) -> pl.Expr:
    """Characters of the text where it may exceed `max_chars`, else 0 (chars <= bytes, so only
    rows over the limit in bytes need counting)."""
    if max_chars is None:
        return pl.lit(0, pl.Int64)
    return pl.when(text_bytes_expr(parts) > max_chars).then(text_chars_expr(parts)).otherwise(0)


def row_problem(spec: Any, provider: Provider) -> pl.Expr:
    """True for a record `validate` would reject for its text (blank/null, or too long for the
    model); the line-size check needs the rendered line and is done next to it."""
    parts = text_parts(spec, provider)
    max_chars = provider.max_input_chars
    return (
        empty_text(parts)
        | (text_bytes_expr(parts) > _max_text_bytes(provider))
        | (_chars_over(parts, max_chars) > (max_chars or 0))
    )


def validate(lf: pl.LazyFrame, spec: Any, provider: Provider, source_label: str) -> ValidationReport:
    """Check the records before anything is written; raise InputValidationError naming the
    file (`source_label`), the 0-based row, its record_id and the column.

    Checks: every template placeholder and the text column exist; no null/blank text unless
    `spec.skip_empty`; each record's text within the provider's size rule; each line under
    `spec.max_bytes_per_file`; at least `spec.min_records_per_job` records remain.
    One streaming pass over the text columns; only offending rows are collected.
    """
    parts = check_columns(lf, spec, provider, source_label)
    const_line = len(line_expr_constant_bytes(spec, provider))
    text_bytes = text_bytes_expr(parts)
    max_chars = provider.max_input_chars
    max_text_bytes = _max_text_bytes(provider)
    checks = {
        "__empty": empty_text(parts),
        "__bytes": text_bytes,
        "__chars": _chars_over(parts, max_chars),
        "__line_bound": pl.lit(const_line, pl.Int64) + text_bytes * _MAX_ESCAPE_GROWTH
        + pl.col(RECORD_ID).str.len_bytes().cast(pl.Int64) * _MAX_ESCAPE_GROWTH,
    }
    flagged = (
        lf.with_row_index("__row")
        .select("__row", RECORD_ID, **checks)
        .filter(
            pl.col("__empty")
            | (pl.col("__bytes") > max_text_bytes)
            | (pl.col("__chars") > (max_chars or 0))
            | (pl.col("__line_bound") > spec.max_bytes_per_file)
        )
    )
    total = lf.select(pl.len(), (~empty_text(parts)).cast(pl.Int64).dot(text_bytes).alias("__text_bytes"))
    flagged_df, total_df = pl.collect_all([flagged, total], engine="streaming")
    rows = int(total_df["len"][0])
    cols_label = ", ".join(repr(c) for c in input_columns(parts))

    empty = flagged_df.filter(pl.col("__empty"))
    if empty.height and not spec.skip_empty:
        shown = "; ".join(_row_label(r) for r in empty.head(_SHOW_ROWS).iter_rows(named=True))
        raise InputValidationError(
            f"{source_label}: {empty.height} row(s) have null or blank text in column(s) {cols_label}: {shown}. "
            f"Fill them, or set `skip_empty: true` in the batch spec to skip such rows"
        )
    sent = flagged_df.filter(~pl.col("__empty"))
    too_long = sent.filter((pl.col("__bytes") > max_text_bytes) | (pl.col("__chars") > (max_chars or 0)))
    if too_long.height:
        shown = "; ".join(
            f"{_row_label(r)}: {r['__bytes']:,} bytes" for r in too_long.head(_SHOW_ROWS).iter_rows(named=True)
        )
        raise InputValidationError(
            f"{source_label}: {too_long.height} record(s) are too long for the model (text from column(s) "
            f"{cols_label}); limit is {provider.size_rule()}: {shown}. Shorten or drop them"
        )
    maybe_big = sent.filter(pl.col("__line_bound") > spec.max_bytes_per_file)
    if maybe_big.height:
        # The bound is loose (6x); render just these rows to measure exactly.
        positions = maybe_big["__row"]
        exact = (
            lf.with_row_index("__row")
            .filter(pl.col("__row").is_in(positions.implode()))
            .select("__row", RECORD_ID, line_expr(spec, provider).str.len_bytes().alias("__line"))
            .filter(pl.col("__line") + 1 > spec.max_bytes_per_file)
            .collect()
        )
        if exact.height:
            shown = "; ".join(
                f"{_row_label(r)}: {r['__line'] + 1:,} bytes" for r in exact.head(_SHOW_ROWS).iter_rows(named=True)
            )
            raise InputValidationError(
                f"{source_label}: {exact.height} record(s) from column(s) {cols_label} make a JSONL line larger "
                f"than max_bytes_per_file ({spec.max_bytes_per_file:,} bytes): {shown}"
            )
    report = ValidationReport(
        rows=rows,
        skipped_rows=empty["__row"].cast(pl.Int64).sort().to_numpy(),
        text_bytes=int(total_df["__text_bytes"][0] or 0),
    )
    if report.rows == 0:
        # Fewer records than the minimum job size are fine (answered on-demand); none at all is not.
        raise InputValidationError(f"{source_label}: the input has no rows; nothing to send")
    return report


def line_expr_constant_bytes(spec: Any, provider: Provider) -> bytes:
    """The constant part of a line (the line rendered with empty text and an empty id)."""
    df = pl.DataFrame({RECORD_ID: [""], "__t": [""]})
    model_input = provider.model_input(pl.col("__t"))
    line = pl.concat_str([record_id_json(), pl.lit(',"modelInput":'), model_input, pl.lit("}")])
    return df.select(line).item().encode()


# --- planning ------------------------------------------------------------------------------


def plan_shards(
    n_records: int,
    line_bytes: np.ndarray | None,
    max_records: int,
    min_records: int,
    max_bytes: int,
) -> np.ndarray:
    """Shard boundaries `[0, b1, …, n_records]`: shard i holds records `b[i]..b[i+1]`.

    Uses as few shards as the record and byte limits allow, with sizes balanced by count (each
    shard takes ceil(remaining / shards left)), cut short only where the byte limit forces it.
    `line_bytes` (bytes of each line incl. its newline) may be None when the caller knows the
    byte limit cannot bind. Deterministic. Raises ShardPlanError when no plan satisfies
    min/max records and max bytes (e.g. fewer records than `min_records`).
    """
    if n_records < min_records:
        raise ShardPlanError(
            f"{n_records} record(s) is fewer than min_records_per_job={min_records}; Bedrock rejects smaller jobs"
        )
    if line_bytes is not None:
        line_bytes = np.asarray(line_bytes, dtype=np.int64)
        if len(line_bytes) != n_records:
            raise ValueError(f"line_bytes has {len(line_bytes)} entries for {n_records} records")
        if n_records and int(line_bytes.max()) > max_bytes:
            row = int(line_bytes.argmax())
            raise ShardPlanError(f"record {row} is {int(line_bytes[row]):,} bytes, over the {max_bytes:,}-byte file limit")
        cum = np.concatenate(([0], np.cumsum(line_bytes)))
        total = int(cum[-1])
    else:
        cum = None
        total = 0
    k = max(1, math.ceil(n_records / max_records), math.ceil(total / max_bytes) if total else 1)
    while True:
        bounds = [0]
        start = 0
        for j in range(k):
            left = k - j
            if left == 1:
                stop = n_records
            else:
                stop = min(start + math.ceil((n_records - start) / left), start + max_records)
                if cum is not None:
                    # Last row that still fits under the byte limit from `start`.
                    fit = int(np.searchsorted(cum, cum[start] + max_bytes, side="right")) - 1
                    stop = min(stop, fit)
            bounds.append(stop)
            start = stop
        b = np.asarray(bounds, dtype=np.int64)
        sizes = np.diff(b)
        over_bytes = cum is not None and bool((cum[b[1:]] - cum[b[:-1]] > max_bytes).any())
        if sizes.max() <= max_records and not over_bytes:
            break
        k += 1  # the last shard overflowed because earlier ones were cut by bytes; spread wider
    if sizes.min() < min_records:
        raise ShardPlanError(
            f"cannot split {n_records:,} records into shards of {min_records:,}..{max_records:,} records and "
            f"at most {max_bytes:,} bytes (smallest shard would hold {int(sizes.min()):,}); "
            f"raise max_records_per_job / max_bytes_per_file or lower min_records_per_job"
        )
    return b


# --- writing -------------------------------------------------------------------------------
# Shards are rendered in pieces: a piece is a slice of the records (parquet slice pushdown reads
# only its row groups), rendered by the polars engine on all cores while the previous piece is
# written and hashed here. Memory holds ~2 pieces, whatever the number of rows.
PIECE_BYTES = 32 << 20  # target rendered size of a piece
PIECE_MAX_ROWS = 50_000
PIECE_MIN_ROWS = 1_000


def _line_buffers(lines: pl.Series) -> list[memoryview]:
    """The bytes of `lines` (each ending in a newline) as buffers to write, in order.

    Zero-copy when the string-view data buffers hold the lines back to back (how concat_str
    builds them; checked, not assumed); otherwise one contiguous copy via large_string.
    """
    arr = lines.to_arrow(compat_level=pl.CompatLevel.newest())
    if arr.null_count == 0 and len(arr):
        bufs = arr.buffers()
        views = np.frombuffer(bufs[1], dtype=np.int32).reshape(-1, 4)[arr.offset : arr.offset + len(arr)]
        length, buf, off = views[:, 0].astype(np.int64), views[:, 2], views[:, 3]
        new = np.r_[True, buf[1:] != buf[:-1]]
        used = buf[new]
        ok = (
            bool((length > 12).all())  # longer than 12 bytes = stored in a data buffer, not inline
            and bool((np.diff(used) > 0).all())  # each buffer used once, in order
            and bool((off[new] == 0).all())
            and bool((off[1:][~new[1:]] == (off[:-1] + length[:-1])[~new[1:]]).all())
        )
        if ok:
            ends = np.r_[np.flatnonzero(new)[1:], len(arr)]
            out = []
            for b, start, stop in zip(used.tolist(), np.flatnonzero(new).tolist(), ends.tolist()):
                size = int(off[stop - 1] + length[stop - 1])
                out.append(memoryview(bufs[2 + b])[:size])
            return out
    large = lines.to_arrow()  # large_string: one contiguous data buffer
    offsets = np.frombuffer(large.buffers()[1], dtype=np.int64)[large.offset : large.offset + len(large) + 1]
    return [memoryview(large.buffers()[2])[int(offsets[0]) : int(offsets[-1])]]


def _kept_buffers(buffers: list[memoryview], lengths: np.ndarray, keep: np.ndarray) -> list[memoryview]:
    """The parts of `buffers` (lines back to back, `lengths` bytes each, none spanning two
    buffers) that hold the lines `keep` marks, as zero-copy slices, one per run of kept lines.
    Filtering the rendered frame instead copied every line of a piece that held one repeat."""
    if keep.all():
        return buffers
    if not keep.any():
        return []
    ends = np.cumsum([len(b) for b in buffers])
    start = np.r_[0, np.cumsum(lengths)[:-1]]
    which = np.searchsorted(ends, start, side="right")  # the buffer each line starts in
    base = np.r_[0, ends[:-1]]
    idx = np.flatnonzero(keep)
    brk = np.flatnonzero((np.diff(idx) != 1) | (np.diff(which[idx]) != 0)) + 1
    out = []
    for run in np.split(idx, brk):
        b = int(which[run[0]])
        a, e = int(start[run[0]] - base[b]), int(start[run[-1]] + lengths[run[-1]] - base[b])
        out.append(buffers[b][a:e])
    return out


class _RowRejected(Exception):
    """A rendered piece holds a record `validate` rejects (raised to switch to the full check)."""


def _render_piece(
    lf: pl.LazyFrame, spec: Any, provider: Provider, start: int, stop: int, check: bool
) -> pl.DataFrame:
    """Rows `start..stop` as `record_id, line` (line ends in a newline). With `check`, the same
    select also tests every row like `validate` does and raises _RowRejected on any failure:
    the check then costs no extra pass over the records."""
    piece = lf.slice(start, stop - start)
    if spec.skip_empty:
        piece = piece.filter(~empty_text(text_parts(spec, provider)))
    line = line_expr(spec, provider, newline=True)
    # The digest hashes the modelInput bytes where they sit inside the rendered line (a byte
    # slice of the same buffers, no copy): rendering modelInput again for it, or as a column of
    # its own that the line then copies, cost 1-2 CPU-s more at 2.2M rows (bench/RESULTS.md).
    body_at = record_id_json().str.len_bytes() + len(MODEL_INPUT_KEY.encode())
    body = pl.col("line").cast(pl.Binary).bin.slice(pl.col("__start"), pl.col("line").str.len_bytes() - pl.col("__start") - 2)
    digest = _digest_of(body, spec).alias("__digest")
    piece = piece.select(pl.col(RECORD_ID), line, body_at.alias("__start"),
                         *([row_problem(spec, provider).alias("__bad")] if check else []))
    piece = piece.with_columns(digest).drop("__start")
    if not check:
        return piece.collect()
    df = piece.collect()
    if df["__bad"].any() or (df["line"].str.len_bytes() > spec.max_bytes_per_file).any():
        raise _RowRejected
    return df.drop("__bad")


def _pieces(report: ValidationReport, bounds: np.ndarray, piece_rows: int) -> list[tuple[int, int, int]]:
    """(shard index, first row, stop row) of each piece; pieces never cross a shard boundary."""
    out = []
    n_shards = len(bounds) - 1
    starts = [0] + [int(report.row_of_record(int(b))) for b in bounds[1:-1]] + [report.rows]
    for j in range(n_shards):
        lo, hi = starts[j], starts[j + 1]
        for a in range(lo, hi, piece_rows):
            out.append((j, a, min(a + piece_rows, hi)))
    return out


def content_digest() -> Any:
    """A new hasher for shard content: XXH3-128 (hex `.hexdigest()`).

    The digest names a shard's Bedrock jobs and seeds their idempotency tokens, so it must change
    whenever the bytes do; accidental collisions of a 128-bit hash are out of reach
    (cryptographic strength buys nothing here: the shards are the user's own data). sha256 cost
    2.2 CPU-s at 2.2M rows, a third of jsonl_shards' CPU; XXH3 costs ~0.2 s.
    """
    return xxhash.xxh3_128()


def digest_bytes(data: bytes) -> str:
    hasher = content_digest()
    hasher.update(data)
    return hasher.hexdigest()


def _release(fh: Any) -> None:
    """Flush a finished shard file to disk, drop it from the page cache, close it.

    Nothing in this step reads a shard again, and the next shard's writes then reuse these pages.
    That matters on VMs that hand free memory back to the host (this benchmark's Firecracker VM):
    there, writing into never-used page-cache pages cost ~2 s of kernel time per GB, into
    just-freed ones ~0.3 s (measured: 4.2 GB in 7.7-9.0 s vs 2.3-2.4 s). Runs on its own thread,
    one shard behind the writer, so the disk write overlaps the next shard's rendering.
    """
    try:
        fh.flush()
        if hasattr(os, "posix_fadvise"):  # Linux; elsewhere the page cache is left to the OS
            os.fdatasync(fh.fileno())
            os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        fh.close()


def _hash_buffers(hasher: Any, buffers: list[memoryview]) -> None:
    for buf in buffers:
        hasher.update(buf)


def request_digest_expr(spec: Any, provider: Provider) -> pl.Expr:
    """Each row's request digest as 16 bytes: XXH3-128 of the modelInput JSON, exactly the bytes
    its line carries, seeded with the model id and invocation type (ledger.request_seed).
    polars-hash computes it inside the polars engine (multi-threaded, no Python per row); the
    values equal the xxhash package's `xxh3_128_digest(body, seed)` (tested)."""
    return _digest_of(model_input_expr(spec, provider), spec)


def _digest_of(body: pl.Expr, spec: Any) -> pl.Expr:
    """XXH3-128 of `body` (a modelInput JSON text column), seeded with the model and invocation type."""
    seed = ledger.request_seed(spec.model_id, spec.invocation_type)
    return body.nchash.xxh3_128(seed=seed, return_binary=True, byte_order="big")


def _digest_bytes(digests: pl.Series) -> bytes:
    """16-byte digests, concatenated."""
    arr = digests.to_arrow().cast(pa.binary(16))
    return arr.buffers()[1].to_pybytes()[arr.offset * 16 : (arr.offset + len(arr)) * 16]


def _request_digests(df: pl.DataFrame) -> tuple[bytes, np.ndarray]:
    """The rendered piece's 16-byte request digests, concatenated, and each line's byte length."""
    return _digest_bytes(df["__digest"]), df["line"].str.len_bytes().cast(pl.Int64).to_numpy()


class _SeenRequests:
    """Request digests already written in this pass, to send each distinct request once.

    Two levels, no Python object per row. A byte map indexed by 25 bits of each digest says
    "certainly new" for almost every request (one random read in 32 MiB); only the few whose
    byte is already set (a repeat, or ~1 in 15 false alarms at 2.2M requests) are looked up
    exactly, by binary search, in sorted runs of the digests' two 64-bit halves. Runs of similar
    size are merged, so each digest is moved O(log pieces) times. Searching every request in the
    runs cost 1-1.6 s at 2.2M rows (cache misses), the byte map ~0.1 s (bench/RESULTS.md). A
    request is "seen" only when both halves match: the rare digests that share a first half with
    another are at worst sent twice, never merged with another request."""

    BITS = 25

    def __init__(self) -> None:
        self.runs: list[tuple[np.ndarray, np.ndarray]] = []
        self.marks = np.zeros(1 << self.BITS, dtype=np.uint8)

    def first_time(self, raw: bytes) -> np.ndarray:
        """For each 16-byte digest of `raw`, whether no earlier one (here or before) equals it."""
        halves = np.frombuffer(raw, dtype="<u8").reshape(-1, 2)
        keep = np.zeros(len(halves), dtype=bool)
        if not len(halves):
            return keep
        order = np.argsort(halves[:, 0], kind="stable")  # equal halves keep their input order
        hi, lo = halves[order, 0], halves[order, 1]
        repeat = np.r_[False, (hi[1:] == hi[:-1]) & (lo[1:] == lo[:-1])]
        slot = (hi >> np.uint64(64 - self.BITS)).astype(np.intp)
        maybe = np.flatnonzero(self.marks[slot] != 0)
        for run_hi, run_lo in self.runs:
            at = np.searchsorted(run_hi, hi[maybe]).clip(0, len(run_hi) - 1)
            repeat[maybe] |= (run_hi[at] == hi[maybe]) & (run_lo[at] == lo[maybe])
        new = ~repeat
        keep[order[new]] = True
        self.marks[slot[new]] = 1
        self._add(hi[new], lo[new])
        return keep

    def _add(self, hi: np.ndarray, lo: np.ndarray) -> None:
        while self.runs and len(self.runs[-1][0]) <= 2 * len(hi):
            run_hi, run_lo = self.runs.pop()
            hi, lo = np.concatenate([run_hi, hi]), np.concatenate([run_lo, lo])
            order = np.argsort(hi, kind="stable")  # two sorted runs: timsort merges them in linear time
            hi, lo = hi[order], lo[order]
        if len(hi):
            self.runs.append((hi, lo))


def _write_all(
    lf: pl.LazyFrame,
    spec: Any,
    provider: Provider,
    out: Path,
    report: ValidationReport,
    bounds: np.ndarray,
    check: bool = False,
    requests: list | None = None,
) -> list[ShardInfo] | None:
    """Write every shard; None (and no ShardInfo) if a shard would exceed max_bytes_per_file.

    Four things run at once: the polars engine renders the next pieces (the render thread also
    drops repeats of a request already written, `_SeenRequests`), this thread writes the current piece, a second thread hashes it (`content_digest`) and a third
    releases the previous shard file (`_release`). `check`: see `_render_piece`. `requests`
    receives (record ids, digests, line lengths, shard index, written) per piece. A shard may
    hold fewer records than planned (repeats left out); write_requests re-plans when that matters.
    """
    requests = requests if requests is not None else []
    avg_line = max(1, (report.text_bytes * 11 // 10) // max(1, report.records) + 200)
    piece_rows = max(PIECE_MIN_ROWS, min(PIECE_MAX_ROWS, PIECE_BYTES // avg_line))
    pieces = _pieces(report, bounds, piece_rows)
    infos: list[ShardInfo] = []
    fh = None
    current = -1
    state: dict[str, Any] = {}
    released: list[tuple[Future[None], Any]] = []
    seen = _SeenRequests()

    def render(piece: tuple[int, int, int]) -> tuple[pl.DataFrame, bytes, np.ndarray, np.ndarray]:
        # The render thread takes pieces in order, so it also drops each piece's repeated
        # requests (numpy) right after rendering it. A stage of its own overlapped that with the
        # next render but held one more piece in memory: on 2 cores it cost more (page faults)
        # than it saved.
        df = _render_piece(lf, spec, provider, piece[1], piece[2], check)
        raw, lengths = _request_digests(df)
        return df, raw, lengths, seen.first_time(raw)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hash") as hashing, ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="release"
    ) as releasing, contextlib.closing(prefetched(render, pieces, name="render")) as rendered:
        try:
            for (j, a, b), (df, raw, lengths, keep) in zip(pieces, rendered):
                if j != current:
                    if fh is not None:
                        released.append((releasing.submit(_release, fh), fh))
                        fh = None
                        infos.append(_shard_info(state, current, bounds))
                    current = j
                    fh = open(out / SHARD_NAME.format(j), "wb")  # noqa: SIM115 - closed above/below
                    state = {"hash": content_digest(), "bytes": 0, "records": 0, "dropped": 0, "first": None,
                             "last": None, "row_start": a}
                requests.append((df[RECORD_ID], raw, lengths, j, keep))
                kept = int(keep.sum())
                state["dropped"] += len(keep) - kept
                if kept:
                    buffers = _kept_buffers(_line_buffers(df["line"]), lengths, keep)
                    state["bytes"] += sum(len(buf) for buf in buffers)
                    if state["bytes"] > spec.max_bytes_per_file:
                        return None
                    hashed = hashing.submit(_hash_buffers, state["hash"], buffers)
                    for buf in buffers:
                        fh.write(buf)
                    hashed.result()
                    state["records"] += kept
                    ids = df[RECORD_ID] if kept == len(keep) else df[RECORD_ID].filter(pl.Series(keep))
                    state["first"] = state["first"] or ids[0]
                    state["last"] = ids[-1]
                state["row_stop"] = b
            if fh is not None:
                released.append((releasing.submit(_release, fh), fh))
                fh = None
                infos.append(_shard_info(state, current, bounds))
        finally:
            if fh is not None:
                fh.close()
            # Releases still queued (a disk slower than rendering) are skipped: those files are just
            # closed and left to the kernel's writeback, so a slow disk never delays the step.
            for done, handle in released:
                if done.cancel():
                    handle.close()
    return infos


def _shard_info(state: dict[str, Any], j: int, bounds: np.ndarray) -> ShardInfo:
    expected = int(bounds[j + 1] - bounds[j]) - state.get("dropped", 0)
    if state["records"] != expected:  # the records changed between validation and writing
        raise InputValidationError(f"shard {j}: rendered {state['records']} records, planned {expected}")
    return ShardInfo(
        name=SHARD_NAME.format(j),
        records=state["records"],
        bytes=state["bytes"],
        digest=state["hash"].hexdigest(),
        first_record_id=state["first"] or "",
        last_record_id=state["last"] or "",
        row_start=state["row_start"],
        row_stop=state["row_stop"],
    )


def line_sizes(lf: pl.LazyFrame, spec: Any, provider: Provider) -> np.ndarray:
    """Bytes (incl. newline) of every line that is sent, in order (one streaming pass)."""
    lines = render_lines(lf, spec, provider)
    return (
        lines.select((pl.col("line").str.len_bytes() + 1).cast(pl.Int64))
        .collect(engine="streaming")
        .to_series()
        .to_numpy()
    )


def _clear(out: Path) -> None:
    for old in out.glob("shard-*.jsonl"):
        old.unlink()


def _unchecked_report(lf: pl.LazyFrame, spec: Any, provider: Provider, source_label: str) -> ValidationReport:
    """What planning needs without a validation pass: the row count (parquet metadata) and a
    text size from the first rows (only used to size pieces)."""
    parts = check_columns(lf, spec, provider, source_label)
    rows = int(lf.select(pl.len()).collect().item())
    sample = lf.head(1_000).select(text_bytes_expr(parts).mean()).collect().item()
    return ValidationReport(rows=rows, skipped_rows=np.empty(0, np.int64), text_bytes=int((sample or 0) * rows))


@dataclasses.dataclass(frozen=True)
class ShardSet:
    """What jsonl_shards wrote: the shards to send, and one row per rendered record
    (`requests`: record_id, request_digest, shard (null when not sent), sent, cached)."""

    shards: list[ShardInfo]
    requests: pl.DataFrame

    @property
    def cached(self) -> int:
        """Records whose request the ledger already answers (not sent)."""
        return int(self.requests["cached"].sum())

    @property
    def duplicates(self) -> int:
        """Records whose identical request another record of this input sends (sent once)."""
        return int((~self.requests["sent"] & ~self.requests["cached"]).sum())


def write_shards(
    lf: pl.LazyFrame,
    spec: Any,
    provider: Provider,
    out_dir: str | os.PathLike[str],
    source_label: str,
) -> list[ShardInfo]:
    """`write_requests` with an empty ledger: every distinct request is sent."""
    return write_requests(lf, spec, provider, out_dir, source_label).shards


def _plan(n: int, sizes: np.ndarray | None, spec: Any) -> np.ndarray:
    """plan_shards, except that too few records for the minimum job size make shards anyway:
    the shard step answers a shard under the minimum on-demand (attempts.py)."""
    try:
        return plan_shards(n, sizes, spec.max_records_per_job, spec.min_records_per_job, spec.max_bytes_per_file)
    except ShardPlanError:
        if n and sizes is not None and int(sizes.max()) > spec.max_bytes_per_file:
            raise
        return plan_shards(n, sizes, spec.max_records_per_job, 1, spec.max_bytes_per_file)


def write_requests(
    lf: pl.LazyFrame,
    spec: Any,
    provider: Provider,
    out_dir: str | os.PathLike[str],
    source_label: str,
    answered: pl.LazyFrame | pl.Series | None = None,
) -> ShardSet:
    """Validate, render, digest and write the requests that still need an answer as
    `shard-00000.jsonl`, … into the local folder `out_dir`.

    `answered` holds the request digests the ledger already answers for good
    (`ledger.reusable`: a LazyFrame scan with a `request_digest` column, or a Series); records with one of them are not sent (`cached`), and a request that
    several records make identically is sent once (the first record carries it; the others get
    its answer in joined_results). All records are rendered and digested in one pass
    (`_write_all`); only when something was left out are the kept lines copied byte for byte into
    a new, balanced set of shards (a file copy, no re-rendering), so the common case, nothing
    cached, costs one digest per record over the old write.

    `lf` holds the records (record_id first) and should be a scan of records.parquet: shards
    are rendered from slices of it, which parquet serves by row group (see
    `records.write_records`); any other source works but is re-read per slice.

    Validation is fused with rendering: each piece is checked in the same polars select that
    renders it (no separate pass over the records). On the first rejected row the shards
    written so far are deleted and `validate` runs to raise its full report (file, rows,
    record ids, columns), so a bad input leaves no shard behind and nothing can be uploaded or
    submitted. With `skip_empty` the skipped rows must be known before planning, so `validate`
    runs first. Shards are planned by count; if one would pass `max_bytes_per_file`, every line
    is measured, the plan is redone by bytes and the shards are written again (rare: only when
    lines average more than max_bytes / max_records, 20 kB at the defaults). Fewer records than
    `min_records_per_job` still make a shard (answered on-demand). Same input, spec and ledger
    -> byte-identical files. Stale `shard-*.jsonl` files in `out_dir` are removed.
    """
    out = Path(out_dir)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    _clear(out)

    def discard() -> None:  # a failed write leaves nothing behind (not even a folder it made)
        _clear(out)
        if created and not any(out.iterdir()):
            out.rmdir()

    fused = not spec.skip_empty
    pieces: list = []
    try:
        report = _unchecked_report(lf, spec, provider, source_label) if fused else validate(lf, spec, provider, source_label)
        if report.records == 0:
            if report.rows == 0 or not spec.skip_empty:
                validate(lf, spec, provider, source_label)  # raises, with the reason
            return ShardSet([], _requests_frame([], []).drop("__bytes", "__shard", "__written"))
        bounds = _plan(report.records, None, spec)
        infos = _write_all(lf, spec, provider, out, report, bounds, check=fused, requests=pieces)
        if infos is None:
            _clear(out)
            pieces = []
            sizes = line_sizes(lf, spec, provider)
            bounds = _plan(report.records, sizes, spec)
            infos = _write_all(lf, spec, provider, out, report, bounds, check=fused, requests=pieces)
            if infos is None:  # pragma: no cover - a byte-aware plan cannot overflow
                raise AssertionError("byte-aware shard plan overflowed")
        requests = _requests_frame(pieces, infos)
        cached = pl.Series(_answered_mask(answered, b"".join(p[1] for p in pieces)))
        written = requests["__written"]
        sent = written & ~cached
        requests = requests.with_columns(sent.alias("sent"), cached.alias("cached"))
        sizes = [i.records for i in infos]
        # Re-plan only when the cache left records out, or leaving out repeats emptied a shard or
        # made one smaller than the minimum job size where the records allow full ones.
        if bool((written & cached).any()) or 0 in sizes or (
            min(sizes) < spec.min_records_per_job <= sum(sizes) and len(sizes) > 1
        ):
            infos = _rebuild(out, infos, requests, spec)
            requests = _assign_shards(requests, infos)
    except _RowRejected:
        discard()
        validate(lf, spec, provider, source_label)  # raises InputValidationError naming the rows
        raise AssertionError("a row failed the render-time check but passed validate") from None  # pragma: no cover
    except BaseException:
        discard()
        raise
    return ShardSet(infos, requests.drop("__bytes", "__shard", "__written"))


def _halves(digests: pl.Expr) -> list[pl.Expr]:
    """A hex request digest as two UInt64 columns (`__hi`, `__lo`): polars joins two integers
    ~20x faster than one 32-character string (0.09 vs 1.8 s for 2.2M against 2.2M)."""
    return [digests.str.slice(0, 16).str.to_integer(base=16, dtype=pl.UInt64).alias("__hi"),
            digests.str.slice(16, 16).str.to_integer(base=16, dtype=pl.UInt64).alias("__lo")]


def _answered_mask(answered: pl.LazyFrame | pl.Series | None, raw: bytes) -> np.ndarray:
    """For each request (16-byte digests concatenated in `raw`), whether `answered` holds its
    digest. A LazyFrame (a ledger scan) is semi-joined on the streaming engine against this
    input's distinct requests, so memory follows this input, not the ledger's size."""
    n = len(raw) // 16
    if answered is None or n == 0:
        return np.zeros(n, dtype=bool)
    known = answered.to_frame(ledger.DIGEST).lazy() if isinstance(answered, pl.Series) else answered
    # Big-endian halves: the same integers as the hex text's two halves read in base 16.
    halves = np.frombuffer(raw, dtype=">u8").reshape(-1, 2).astype(np.uint64)
    asked = pl.DataFrame({"__hi": halves[:, 0], "__lo": halves[:, 1]})
    keys = ["__hi", "__lo"]
    matched = (known.select(_halves(pl.col(ledger.DIGEST))).join(asked.lazy(), on=keys, how="semi")
               .unique().collect(engine="streaming"))
    if not matched.height:
        return np.zeros(n, dtype=bool)
    return asked.select(pl.struct(keys).is_in(matched.select(pl.struct(keys)).to_series().implode())).to_series().to_numpy()


def _requests_frame(pieces: list, infos: list[ShardInfo]) -> pl.DataFrame:
    """record_id, request_digest, shard, sent, cached, plus __bytes (line length), __shard (index
    of the shard the line was planned in) and __written (the line is in that shard's file) of
    every rendered line."""
    if not pieces:
        return pl.DataFrame(schema={RECORD_ID: pl.String, ledger.DIGEST: pl.String, "shard": pl.String,
                                    "sent": pl.Boolean, "cached": pl.Boolean, "__bytes": pl.Int64, "__shard": pl.Int64,
                                    "__written": pl.Boolean})
    ids = pl.concat([p[0] for p in pieces], rechunk=True)
    digests = ledger.hex_digests(b"".join(p[1] for p in pieces))
    lengths = np.concatenate([p[2] for p in pieces]).astype(np.int64)
    index = np.concatenate([np.full(len(p[2]), p[3], dtype=np.int64) for p in pieces])
    written = np.concatenate([p[4] for p in pieces])
    return pl.DataFrame({RECORD_ID: ids, ledger.DIGEST: digests, "shard": _shard_names(np.where(written, index, -1), infos),
                         "sent": written, "cached": np.zeros(len(index), dtype=bool),
                         "__bytes": lengths, "__shard": index, "__written": written})


def _shard_names(index: np.ndarray, infos: list[ShardInfo]) -> pl.Series:
    """The shard name for each shard index (-1: none -> null)."""
    return pl.Series("shard", index).replace_strict(
        list(range(len(infos))), [i.name for i in infos], default=None, return_dtype=pl.String)


def _assign_shards(requests: pl.DataFrame, infos: list[ShardInfo]) -> pl.DataFrame:
    """The shard each sent record is in after _rebuild (shards hold the sent records in order)."""
    index = np.full(requests.height, -1, dtype=np.int64)
    index[requests["sent"].to_numpy()] = np.repeat(np.arange(len(infos)), [i.records for i in infos])
    return requests.with_columns(_shard_names(index, infos))


def _rebuild(out: Path, infos: list[ShardInfo], requests: pl.DataFrame, spec: Any) -> list[ShardInfo]:
    """Copy the lines of sent requests from the written shards into new balanced shards (byte
    ranges of the old files, in order), replacing them. Returns the new shards' infos."""
    old_index = requests["__shard"].to_numpy()
    lengths = requests["__bytes"].to_numpy()
    written = requests["__written"].to_numpy()
    sent = requests["sent"].to_numpy()
    # Offset of each written line within its old file.
    starts = np.zeros(len(lengths), dtype=np.int64)
    for j in range(len(infos)):
        mask = (old_index == j) & written
        starts[mask] = np.concatenate(([0], np.cumsum(lengths[mask])[:-1]))
    kept = np.flatnonzero(sent)
    tmp = out / ".rebuild"
    tmp.mkdir(exist_ok=True)
    new_infos: list[ShardInfo] = []
    sources: dict[int, Any] = {}
    try:
        if len(kept):
            bounds = _plan(len(kept), lengths[kept], spec)
            ids = requests[RECORD_ID]
            for g in range(len(bounds) - 1):
                rows = kept[bounds[g] : bounds[g + 1]]
                hasher = content_digest()
                size = 0
                dst = open(tmp / SHARD_NAME.format(g), "wb")  # noqa: SIM115 - released below
                try:
                    # Runs of lines contiguous in one old file are copied with one read.
                    brk = np.flatnonzero((np.diff(old_index[rows]) != 0) | (np.diff(starts[rows]) != lengths[rows[:-1]])) + 1
                    for run in np.split(rows, brk):
                        j = int(old_index[run[0]])
                        src = sources.get(j) or sources.setdefault(j, open(out / SHARD_NAME.format(j), "rb"))  # noqa: SIM115
                        a, b = int(starts[run[0]]), int(starts[run[-1]] + lengths[run[-1]])
                        src.seek(a)
                        data = src.read(b - a)
                        hasher.update(data)
                        dst.write(data)
                        size += len(data)
                finally:
                    _release(dst)
                new_infos.append(ShardInfo(
                    name=SHARD_NAME.format(g), records=len(rows), bytes=size, digest=hasher.hexdigest(),
                    first_record_id=ids[int(rows[0])], last_record_id=ids[int(rows[-1])],
                    # Positions in requests.parquet of the first and last record it holds (cached and
                    # repeated records between them are answered from the ledger, not by this shard).
                    row_start=int(rows[0]), row_stop=int(rows[-1]) + 1,
                ))
    finally:
        for src in sources.values():
            src.close()
    _clear(out)
    for f in tmp.iterdir():
        f.rename(out / f.name)
    tmp.rmdir()
    return new_infos


def request_digests(lf: pl.LazyFrame, spec: Any, provider: Provider, piece_rows: int = PIECE_MAX_ROWS) -> pl.DataFrame:
    """`record_id, request_digest` of every record `lf` would send under `spec` now (rendered
    and digested as jsonl_shards does, nothing written). joined_results' `answers_match_requests`
    compares these with the digests of the answers it joined."""
    rows = int(lf.select(pl.len()).collect().item())
    ids: list[pl.Series] = []
    raw: list[bytes] = []
    for start in range(0, rows, piece_rows):
        piece = lf.slice(start, min(rows, start + piece_rows) - start)
        if spec.skip_empty:
            piece = piece.filter(~empty_text(text_parts(spec, provider)))
        df = piece.select(pl.col(RECORD_ID), request_digest_expr(spec, provider).alias("__digest")).collect()
        if df.height:
            ids.append(df[RECORD_ID])
            raw.append(_digest_bytes(df["__digest"]))
    if not ids:
        return pl.DataFrame(schema={RECORD_ID: pl.String, ledger.DIGEST: pl.String})
    return pl.DataFrame({RECORD_ID: pl.concat(ids), ledger.DIGEST: ledger.hex_digests(b"".join(raw))})
