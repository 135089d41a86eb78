"""Cost: a dated price table, token estimates from the rendered records, and cost estimates.

Prices (USD per 1M tokens, on-demand and batch, per base model id) come from the packaged
`pricing/prices.json`, each row with its `as_of` date and `source`. A user file named by
`BEDROCK_ASSETS_PRICING=/path.json` (same format) is merged over it: its rows replace or extend
the packaged ones field by field. A model with no price is never costed at 0: the estimate is
*unknown* and says "no price for model X; add it to BEDROCK_ASSETS_PRICING". Both files are
parsed by a strict typed model (`_Table`): a malformed one (a string price, a negative price, an
unknown field such as `batchh`) is an error naming the file, the row and the field.

Token estimates before submission (see docs/models.md, "Cost estimate"):

* input tokens, upper bound: the bytes each record's line adds to the constant body (the
  rendered text as JSON, the record id included) / `BYTES_PER_TOKEN_ESTIMATE` (3), plus the
  constant text the model reads (system prompt, chat template), plus `FORMAT_TOKENS_PER_RECORD`
  for the role markers a chat API adds. English averages ~4 bytes per token, so this errs high;
* input tokens, typical: the same bytes / 4 (no escape, id or format allowance);
* output tokens, upper bound: records x the body's max tokens (written into every text body);
  typical: only when the caller gives one (e.g. tokens per record observed in earlier jobs of
  the batch), never guessed. Embedding models have no output tokens.

For the pipeline: `estimate_batch(spec, provider, shard_paths_or_lines)` -> `BatchEstimate`
(`.metadata()` for Dagster, `.usd`), and `check_budget(estimate, spec.budget_usd)` -> pass/fail
with a message, to block before any job is created.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import polars as pl
import pydantic
from pydantic import AfterValidator, ConfigDict, Field

from bedrock_assets.providers import Provider, bare_model_id, base_model_id
from bedrock_assets.providers.base import BYTES_PER_TOKEN_ESTIMATE
from bedrock_assets.validation import problem_lines

PACKAGED_PRICES = Path(__file__).with_name("pricing") / "prices.json"
PRICING_ENV = "BEDROCK_ASSETS_PRICING"
PATHS = ("batch", "on-demand")
PricePath = Literal["batch", "on-demand"]
_PATH_KEY = {"batch": "batch", "on-demand": "on_demand"}
# Typical English text is ~4 UTF-8 bytes per token in BPE tokenizers (Claude, Llama 3, Nova).
TYPICAL_BYTES_PER_TOKEN = 4
# Role/turn markers a chat API wraps around a message (Anthropic, Nova, Converse, Mistral chat).
FORMAT_TOKENS_PER_RECORD = 10
_PER_MILLION = 1_000_000


def _iso_date(value: str) -> str:
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a date YYYY-MM-DD") from None
    return value


Date = Annotated[str, AfterValidator(_iso_date)]


class PricingError(ValueError):
    """The price table is malformed, or a cost was required and is unknown."""


# --- price table ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PriceRow:
    """One model's prices (USD per 1M tokens) for one path, with where they came from."""

    key: str  # the table key that matched (a base model id or a prefix of one)
    path: str  # "batch" | "on-demand"
    input_per_million: float
    output_per_million: float
    as_of: str
    source: str
    table: str  # "packaged" or the override file's path

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _Prices(pydantic.BaseModel):
    """USD per 1M tokens for one path (`batch` or `on_demand`)."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)

    input: float = Field(ge=0, description="USD per 1M input tokens.")
    output: float | None = Field(default=None, ge=0, description="USD per 1M output tokens (0 for embedding models).")


class _Row(pydantic.BaseModel):
    """One model's prices, keyed in `models` by base model id, a prefix of one, or a full
    inference-profile id (for a profile billed differently)."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)

    on_demand: _Prices | None = Field(default=None, description="On-demand (InvokeModel / Converse) prices.")
    batch: _Prices | None = Field(default=None, description="Batch inference prices.")
    as_of: Date | None = Field(default=None, description="Date the prices were read, YYYY-MM-DD.")
    source: str | None = Field(default=None, min_length=1, description="Where the prices come from.")


class _Table(pydantic.BaseModel):
    """A price file: the packaged pricing/prices.json or a user's override (same format)."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)

    models: dict[str, _Row] = Field(description="Rows keyed by model id or id prefix.")
    as_of: Date | None = Field(default=None, description="Default `as_of` of the rows.")
    # Descriptive fields of the packaged table, accepted in overrides too.
    schema_: int | None = Field(default=None, alias="schema")
    currency: Literal["USD"] | None = None
    unit: str | None = None
    region: str | None = None
    notes: list[str] | None = None


def _read_table(path: Path, origin: str) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise PricingError(f"cannot read price file {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise PricingError(f"price file {path} is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), dict):
        raise PricingError(f"price file {path}: expected an object with a \"models\" object")
    try:
        table = _Table.model_validate(doc)
    except pydantic.ValidationError as exc:
        raise PricingError("\n".join(problem_lines(exc, f"price file {path}", _Table))) from None
    # Only the fields the file gives (an explicit null included): merging keeps the others.
    return {
        key: {**row.model_dump(exclude_unset=True), "__table": origin, "__as_of": table.as_of or ""}
        for key, row in table.models.items()
    }


def load_prices(override: str | os.PathLike[str] | None = None) -> dict[str, dict[str, Any]]:
    """The packaged table with the override file (argument, else $BEDROCK_ASSETS_PRICING) merged
    over it, row by row and field by field."""
    table = _read_table(PACKAGED_PRICES, "packaged")
    user = override if override is not None else os.environ.get(PRICING_ENV)
    if user:
        for key, row in _read_table(Path(user), str(user)).items():
            # A row the user touches is attributed to the user's file unless it names a source.
            row = {"source": f"override file {user}", "as_of": row["__as_of"], **row}
            table[key] = {**table.get(key, {}), **row}
    return table


def _row_for(model_id: str, table: Mapping[str, Mapping[str, Any]]) -> tuple[str, Mapping[str, Any]] | None:
    """Exact id (with its geography prefix, then the base id), else the longest key it starts with."""
    for candidate in (bare_model_id(model_id), base_model_id(model_id)):
        if candidate in table:
            return candidate, table[candidate]
    base = base_model_id(model_id)
    keys = [k for k in table if base.startswith(k)]
    if not keys:
        return None
    key = max(keys, key=len)
    return key, table[key]


def no_price_message(model_id: str, path: str, detail: str = "") -> str:
    return (
        f"no price for model {model_id} ({path}{'; ' + detail if detail else ''}); add it to "
        f"{PRICING_ENV}=/path.json, e.g. {{\"models\": {{\"{base_model_id(model_id)}\": "
        f"{{\"{_PATH_KEY.get(path, path)}\": {{\"input\": <USD per 1M>, \"output\": <USD per 1M>}}, "
        f"\"as_of\": \"YYYY-MM-DD\", \"source\": \"...\"}}}}}}"
    )


def price_for(
    model_id: str, path: PricePath = "batch", table: Mapping[str, Mapping[str, Any]] | None = None,
    need_output: bool = True,
) -> PriceRow | str:
    """The PriceRow for a model and path, or the "no price" message (a str) when there is none."""
    if path not in PATHS:
        raise PricingError(f"path must be one of {list(PATHS)}, got {path!r}")
    table = load_prices() if table is None else table
    found = _row_for(model_id, table)
    if found is None:
        return no_price_message(model_id, path)
    key, row = found
    prices = row.get(_PATH_KEY[path])
    if not prices:
        return no_price_message(model_id, path, f"row {key!r} has no {_PATH_KEY[path]} prices")
    if need_output and "output" not in prices:
        return no_price_message(model_id, path, f"row {key!r} has no output price")
    return PriceRow(
        key=key,
        path=path,
        input_per_million=float(prices["input"]),
        output_per_million=float(prices.get("output", 0.0)),
        as_of=str(row.get("as_of") or row.get("__as_of") or ""),
        source=str(row.get("source", "")),
        table=str(row.get("__table", "")),
    )


# --- cost -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CostEstimate:
    """USD for a token count, or unknown (`usd is None`, `reason` says why: never a silent 0)."""

    model_id: str
    path: str
    input_tokens: int
    output_tokens: int
    usd: float | None
    price: PriceRow | None
    reason: str | None = None

    @property
    def known(self) -> bool:
        return self.usd is not None

    def require(self) -> float:
        if self.usd is None:
            raise PricingError(self.reason or f"no price for model {self.model_id}")
        return self.usd

    def __str__(self) -> str:
        if self.usd is None:
            return f"unknown ({self.reason})"
        assert self.price is not None
        return (
            f"${self.usd:,.4f} ({self.path}, {self.input_tokens:,} in / {self.output_tokens:,} out tokens at "
            f"${self.price.input_per_million:g} / ${self.price.output_per_million:g} per 1M, "
            f"price row {self.price.key!r} as of {self.price.as_of})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "path": self.path,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "usd": self.usd,
            "price": self.price.to_dict() if self.price else None,
            "reason": self.reason,
        }


def _cost(model_id: str, input_tokens: int, output_tokens: int, path: PricePath, table: Any) -> CostEstimate:
    for name, n in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise PricingError(f"{name} must be an integer >= 0, got {n!r}")
    row = price_for(model_id, path, table, need_output=output_tokens > 0)
    if isinstance(row, str):
        return CostEstimate(model_id, path, input_tokens, output_tokens, None, None, row)
    usd = (input_tokens * row.input_per_million + output_tokens * row.output_per_million) / _PER_MILLION
    return CostEstimate(model_id, path, input_tokens, output_tokens, usd, row)


def estimate_cost(
    model_id: str, input_tokens: int, output_tokens: int, path: PricePath = "batch",
    table: Mapping[str, Mapping[str, Any]] | None = None,
) -> CostEstimate:
    """Cost of (estimated) token counts; `usd` None with a reason when the price is unknown."""
    return _cost(model_id, input_tokens, output_tokens, path, table)


def actual_cost(
    model_id: str, input_tokens: int, output_tokens: int, path: PricePath = "batch",
    table: Mapping[str, Mapping[str, Any]] | None = None,
) -> CostEstimate:
    """Cost of the tokens a job reported (manifest.json.out inputTokenCount/outputTokenCount,
    or the summed per-record usage). Same arithmetic as estimate_cost, from measured counts."""
    return _cost(model_id, input_tokens, output_tokens, path, table)


# --- token estimates --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TokenEstimate:
    records: int
    input_bytes: int  # bytes the records add to the constant body (text as JSON, ids)
    input_tokens: int  # upper bound
    input_tokens_typical: int
    output_tokens: int  # upper bound: records x max tokens (0 for embeddings)
    output_tokens_typical: int | None  # only when the caller supplied a per-record figure
    max_tokens_per_record: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def prompt_constant_text(provider: Provider) -> str:
    """The text the model reads on every record besides the record's own text."""
    text = getattr(provider, "prompt_constant_text", None)
    if text is None:
        text = provider.system or ""
    return text


def max_output_tokens(provider: Provider) -> int:
    if provider.kind != "text":
        return 0
    n = getattr(provider, "max_tokens", None)
    if not isinstance(n, int):
        raise PricingError(f"{provider.family}: provider exposes no max_tokens; cannot bound output tokens")
    return n


def _constant_line_bytes(provider: Provider) -> int:
    """Bytes of a line rendered with an empty record id and empty text."""
    body = pl.DataFrame({"__t": [""]}).select(provider.model_input(pl.col("__t"))).item()
    return len('{"recordId":"","modelInput":}'.encode()) + len(body.encode())


def _line_totals(lines: pl.LazyFrame | pl.DataFrame | Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
                 storage_options: Mapping[str, str] | None) -> tuple[int, int]:
    """(lines, total bytes without newlines) of a rendered-lines frame, of written shards (their
    ShardInfo: counted while writing, so no second pass over the files) or of JSONL files."""
    if isinstance(lines, Sequence) and lines and all(hasattr(s, "records") and hasattr(s, "bytes") for s in lines):
        # Each shard line ends in exactly one newline (shards.write_shards).
        return sum(s.records for s in lines), sum(s.bytes - s.records for s in lines)  # type: ignore[union-attr]
    if isinstance(lines, (pl.LazyFrame, pl.DataFrame)):
        lf = lines.lazy()
        col = "line" if "line" in lf.collect_schema().names() else lf.collect_schema().names()[-1]
        df = lf.select(pl.len().alias("n"), pl.col(col).str.strip_suffix("\n").str.len_bytes().sum().alias("b")).collect()
    else:
        paths = [str(lines)] if isinstance(lines, (str, os.PathLike)) else [str(p) for p in lines]
        if not paths:
            return 0, 0
        scan = pl.scan_lines(paths, name="line", storage_options=dict(storage_options) if storage_options else None)
        df = (
            scan.filter(pl.col("line").str.contains(r"\S"))
            .select(pl.len().alias("n"), pl.col("line").str.len_bytes().sum().alias("b"))
            .collect()
        )
    return int(df["n"][0]), int(df["b"][0] or 0)


def estimate_tokens(
    lines: pl.LazyFrame | pl.DataFrame | Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    provider: Provider,
    typical_output_tokens_per_record: int | None = None,
    bytes_per_token: float = BYTES_PER_TOKEN_ESTIMATE,
    storage_options: Mapping[str, str] | None = None,
) -> TokenEstimate:
    """Token counts for the records as rendered: `lines` is the `line` frame of
    `shards.render_lines` or the shard files (local paths or s3:// URIs). One streaming pass,
    no per-row Python. See the module doc for the bounds."""
    n, total = _line_totals(lines, storage_options)
    constant_text = prompt_constant_text(provider)
    # What each record adds to the constant line: its id and its text, both as JSON.
    record_bytes = max(0, total - n * _constant_line_bytes(provider))
    constant_bytes = len(constant_text.encode())
    format_tokens = FORMAT_TOKENS_PER_RECORD if provider.kind == "text" else 0
    upper = math.ceil(record_bytes / bytes_per_token) + n * (math.ceil(constant_bytes / bytes_per_token) + format_tokens)
    typical = math.ceil(max(0, record_bytes - n * 2) / TYPICAL_BYTES_PER_TOKEN) + n * math.ceil(
        constant_bytes / TYPICAL_BYTES_PER_TOKEN
    )
    per_record_max = max_output_tokens(provider)
    if provider.kind != "text":
        out_typical: int | None = 0
    elif typical_output_tokens_per_record is None:
        out_typical = None
    else:
        out_typical = n * min(per_record_max, int(typical_output_tokens_per_record))
    return TokenEstimate(
        records=n,
        input_bytes=record_bytes,
        input_tokens=upper,
        input_tokens_typical=typical,
        output_tokens=n * per_record_max,
        output_tokens_typical=out_typical,
        max_tokens_per_record=per_record_max,
    )


# --- what jsonl_shards shows and checks -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BatchEstimate:
    model_id: str
    path: str
    tokens: TokenEstimate
    cost: CostEstimate  # upper bound (input upper bound + records x max tokens)
    cost_typical: CostEstimate | None  # None when no typical output figure is known

    @property
    def usd(self) -> float | None:
        return self.cost.usd

    def metadata(self) -> dict[str, Any]:
        """Plain values for Dagster asset metadata (the lead wraps them as needed)."""
        t = self.tokens
        out: dict[str, Any] = {
            "estimated_cost_usd": round(self.cost.usd, 6) if self.cost.usd is not None else None,
            "estimated_cost": str(self.cost),
            "estimated_cost_typical_usd": (
                round(self.cost_typical.usd, 6) if self.cost_typical and self.cost_typical.usd is not None else None
            ),
            "estimated_input_tokens": t.input_tokens,
            "estimated_input_tokens_typical": t.input_tokens_typical,
            "estimated_output_tokens_max": t.output_tokens,
            "max_tokens_per_record": t.max_tokens_per_record,
            "pricing_path": self.path,
        }
        if self.cost.price is not None:
            out["price_row"] = self.cost.price.to_dict()
        else:
            out["price_unknown"] = self.cost.reason
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "path": self.path,
            "tokens": self.tokens.to_dict(),
            "cost": self.cost.to_dict(),
            "cost_typical": self.cost_typical.to_dict() if self.cost_typical else None,
        }


def estimate_batch(
    spec: Any,
    provider: Provider,
    lines: pl.LazyFrame | pl.DataFrame | Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    path: PricePath = "batch",
    typical_output_tokens_per_record: int | None = None,
    storage_options: Mapping[str, str] | None = None,
    table: Mapping[str, Mapping[str, Any]] | None = None,
) -> BatchEstimate:
    """Token and cost estimate of a partition's shards (files or rendered lines) for spec.model_id."""
    tokens = estimate_tokens(
        lines, provider, typical_output_tokens_per_record=typical_output_tokens_per_record,
        storage_options=storage_options,
    )
    table = load_prices() if table is None else table
    cost = _cost(spec.model_id, tokens.input_tokens, tokens.output_tokens, path, table)
    typical = None
    if tokens.output_tokens_typical is not None:
        typical = _cost(spec.model_id, tokens.input_tokens_typical, tokens.output_tokens_typical, path, table)
    return BatchEstimate(spec.model_id, path, tokens, cost, typical)


@dataclasses.dataclass(frozen=True)
class BudgetCheck:
    passed: bool
    message: str
    budget_usd: float | None
    estimated_usd: float | None


def check_budget(estimate: BatchEstimate, budget_usd: float | None) -> BudgetCheck:
    """Pass when no budget is set or the upper-bound estimate is within it. An unknown price with
    a budget fails (the budget cannot be shown to hold)."""
    usd = estimate.cost.usd
    if budget_usd is None:
        return BudgetCheck(True, f"no budget_usd set; estimated cost {estimate.cost}", None, usd)
    if usd is None:
        return BudgetCheck(
            False, f"budget_usd={budget_usd:g} cannot be checked: {estimate.cost.reason}", budget_usd, None
        )
    if usd > budget_usd:
        return BudgetCheck(
            False,
            f"estimated cost ${usd:,.4f} (upper bound: {estimate.tokens.records:,} records, "
            f"{estimate.tokens.input_tokens:,} input tokens, {estimate.tokens.output_tokens:,} output tokens at "
            f"max {estimate.tokens.max_tokens_per_record} per record) exceeds budget_usd={budget_usd:g}; lower "
            f"max_tokens, split the input, or raise budget_usd",
            budget_usd,
            usd,
        )
    return BudgetCheck(True, f"estimated cost ${usd:,.4f} within budget_usd={budget_usd:g}", budget_usd, usd)


def actual_cost_metadata(
    model_id: str, batch_input: int, batch_output: int, on_demand_input: int = 0, on_demand_output: int = 0,
) -> dict[str, Any]:
    """Plain metadata for the measured spend of a partition: batch tokens (the jobs'
    manifest.json.out totals) at batch prices plus on-demand-answered tokens (the results rows
    with answered_by == "on-demand") at on-demand prices. A part with an unknown price makes the
    total unknown (None), with the reason."""
    parts = [actual_cost(model_id, batch_input, batch_output, "batch")]
    if on_demand_input or on_demand_output:
        parts.append(actual_cost(model_id, on_demand_input, on_demand_output, "on-demand"))
    unknown = [p.reason for p in parts if not p.known]
    total = None if unknown else sum(p.usd or 0.0 for p in parts)
    out: dict[str, Any] = {
        "actual_cost_usd": round(total, 6) if total is not None else None,
        "actual_cost": "; ".join(str(p) for p in parts),
    }
    if unknown:
        out["price_unknown"] = unknown[0]
    return out
