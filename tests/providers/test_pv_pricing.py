"""Pricing table, override file, cost arithmetic, token estimates from rendered lines / shard
files, and the budget check."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest

from bedrock_assets import pricing, providers, shards
from bedrock_assets.emulator.tokens import count_tokens
from bedrock_assets.records import RECORD_ID

from nasty_strings import NASTY
from pv_helpers import CLAUDE, LLAMA, NOVA, SYSTEM, TITAN, make_spec


@pytest.fixture(autouse=True)
def _no_user_prices(monkeypatch):
    monkeypatch.delenv(pricing.PRICING_ENV, raising=False)


def test_packaged_table_is_dated_and_sourced():
    doc = json.loads(pricing.PACKAGED_PRICES.read_text())
    assert doc["as_of"] and doc["currency"] == "USD" and "1,000,000" in doc["unit"]
    for key, row in doc["models"].items():
        assert row["as_of"] and row["source"], key
        assert "on_demand" in row, key
        if "batch" in row:  # batch is half of on-demand for every packaged row (docs/bedrock-facts.md §6)
            for side in ("input", "output"):
                assert math.isclose(row["batch"][side], row["on_demand"][side] / 2), (key, side)


@pytest.mark.parametrize(
    "model_id, inp, out, path, usd",
    [
        (CLAUDE, 1_000_000, 1_000_000, "batch", 0.125 + 0.625),
        (CLAUDE, 1_000_000, 1_000_000, "on-demand", 0.25 + 1.25),
        ("us.anthropic.claude-3-haiku-20240307-v1:0", 2_000_000, 0, "batch", 0.25),
        ("arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0", 0, 1_000_000, "batch", 0.625),
        (NOVA, 10_000_000, 1_000_000, "batch", 10 * 0.03 + 0.12),
        ("eu.amazon.nova-micro-v1:0", 1_000_000, 1_000_000, "on-demand", 0.035 + 0.14),
        ("amazon.nova-pro-v1:0", 1_000_000, 1_000_000, "batch", 0.40 + 1.60),
        (TITAN, 50_000_000, 0, "batch", 0.5),
        (TITAN, 50_000_000, 0, "on-demand", 1.0),
        ("mistral.mistral-7b-instruct-v0:2", 1_000_000, 1_000_000, "on-demand", 0.35),
        (CLAUDE, 0, 0, "batch", 0.0),
    ],
)
def test_estimate_cost(model_id, inp, out, path, usd):
    cost = pricing.estimate_cost(model_id, inp, out, path)
    assert cost.known and math.isclose(cost.usd, usd, rel_tol=1e-9)
    assert cost.price is not None and cost.price.path == path and cost.price.as_of and cost.price.source
    assert pricing.actual_cost(model_id, inp, out, path).usd == cost.usd
    assert "$" in str(cost)


@pytest.mark.parametrize(
    "model_id, path, detail",
    [
        (LLAMA, "batch", ""),  # deliberately unpriced (sources disagree)
        ("mistral.mistral-large-2407-v1:0", "batch", ""),
        ("mistral.mistral-7b-instruct-v0:2", "batch", "has no batch prices"),
        ("acme.unknown-model-v1", "on-demand", ""),
    ],
)
def test_unknown_price_is_unknown_never_zero(model_id, path, detail):
    cost = pricing.estimate_cost(model_id, 1000, 1000, path)
    assert cost.usd is None and cost.price is None and not cost.known
    assert f"no price for model {model_id}" in cost.reason and "add it to BEDROCK_ASSETS_PRICING" in cost.reason
    assert detail in cost.reason
    assert str(cost).startswith("unknown (")
    with pytest.raises(pricing.PricingError, match="no price for model"):
        cost.require()


def _write(tmp_path, doc) -> str:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(doc))
    return str(path)


@pytest.mark.parametrize(
    "rows, model_id, path, usd, source",
    [
        # A new model.
        ({LLAMA: {"batch": {"input": 0.11, "output": 0.11}, "source": "my contract"}}, LLAMA, "batch", 0.22, "my contract"),
        # Override one path of a packaged row; the other path keeps the packaged prices.
        ({"anthropic.claude-3-haiku-20240307": {"batch": {"input": 1.0, "output": 1.0}}}, CLAUDE, "batch", 2.0, "override file"),
        ({"anthropic.claude-3-haiku-20240307": {"batch": {"input": 1.0, "output": 1.0}}}, CLAUDE, "on-demand", 1.5, "override file"),
        # A row keyed by the full profile id wins over the base id (e.g. global. endpoints priced differently).
        ({"global.anthropic.claude-3-haiku-20240307-v1:0": {"batch": {"input": 0.5, "output": 0.5}, "source": "g"}},
         "global.anthropic.claude-3-haiku-20240307-v1:0", "batch", 1.0, "g"),
        # A prefix key covers every version of a model.
        ({"meta.llama3-1-": {"on_demand": {"input": 1, "output": 2}, "source": "p"}}, LLAMA, "on-demand", 3.0, "p"),
    ],
)
def test_user_file_is_merged_over_the_packaged_table(tmp_path, monkeypatch, rows, model_id, path, usd, source):
    monkeypatch.setenv(pricing.PRICING_ENV, _write(tmp_path, {"as_of": "2030-01-01", "models": rows}))
    cost = pricing.estimate_cost(model_id, 1_000_000, 1_000_000, path)
    assert cost.known and math.isclose(cost.usd, usd)
    assert source in cost.price.source
    # Untouched packaged rows are still there.
    assert pricing.estimate_cost(NOVA, 1, 1).known


@pytest.mark.parametrize(
    "doc, match",
    [
        ({"models": {"x": {"batch": {"input": -1, "output": 0}}}}, r"field `models.x.batch.input`: must be >= 0"),
        ({"models": {"x": {"batch": {"input": "cheap"}}}}, r"field `models.x.batch.input`: must be a number"),
        ({"models": {"x": {"batch": {"output": 1}}}}, r"field `models.x.batch.input` is required"),
        ({"models": {"x": {"batch": {"input": 1, "cached": 1}}}}, r"unknown field `models.x.batch.cached`"),
        ({"prices": {}}, 'expected an object with a "models" object'),
    ],
)
def test_malformed_user_file_is_an_error(tmp_path, monkeypatch, doc, match):
    monkeypatch.setenv(pricing.PRICING_ENV, _write(tmp_path, doc))
    with pytest.raises(pricing.PricingError, match=match):
        pricing.estimate_cost(CLAUDE, 1, 1)


def test_missing_user_file_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv(pricing.PRICING_ENV, str(tmp_path / "nope.json"))
    with pytest.raises(pricing.PricingError, match="cannot read price file"):
        pricing.load_prices()


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_token_counts_must_be_counts(bad):
    with pytest.raises(pricing.PricingError, match="must be an integer >= 0"):
        pricing.estimate_cost(CLAUDE, bad, 0)


def test_unknown_path_is_an_error():
    with pytest.raises(pricing.PricingError, match="path must be one of"):
        pricing.estimate_cost(CLAUDE, 1, 1, "provisioned")


def _frame(n: int, texts=None) -> pl.DataFrame:
    texts = texts or [f"{NASTY[i % len(NASTY)]} tell me about topic {i}" for i in range(n)]
    return pl.DataFrame({RECORD_ID: [f"R{i:010d}" for i in range(n)], "q": texts[:n]})


SPECS = [
    ("claude", dict(model_id=CLAUDE, system=SYSTEM, params={"max_tokens": 200})),
    ("nova", dict(model_id=NOVA, params={"max_tokens": 300})),
    ("llama", dict(model_id=LLAMA, system=SYSTEM, params={"max_tokens": 100})),
    ("mistral", dict(model_id="mistral.mistral-7b-instruct-v0:2", system=SYSTEM, params={"max_tokens": 50})),
    ("converse", dict(model_id=LLAMA, invocation_type="Converse", params={"max_tokens": 64})),
    ("titan", dict(model_id=TITAN, prompt=None, text_column="q", params={"dimensions": 256})),
]


@pytest.mark.parametrize("name, kwargs", SPECS, ids=[s[0] for s in SPECS])
def test_estimate_tokens_from_lines_shard_files_and_shard_infos_agree_and_bound_the_tokens(name, kwargs, tmp_path):
    spec = make_spec(**kwargs)
    provider = providers.for_spec(spec)
    frame = _frame(150)
    frame.write_parquet(tmp_path / "r.parquet")
    infos = shards.write_shards(pl.scan_parquet(tmp_path / "r.parquet"), spec, provider, tmp_path / "s", "r")
    files = [tmp_path / "s" / i.name for i in infos]
    from_files = pricing.estimate_tokens(files, provider)
    from_lines = pricing.estimate_tokens(shards.render_lines(frame.lazy(), spec, provider), provider)
    from_infos = pricing.estimate_tokens(infos, provider)  # what jsonl_shards uses: no re-read
    assert from_files == from_lines == from_infos
    t = from_files
    assert t.records == 150
    # Upper bound: at least the UTF-8 bytes of text + system / 3, and above the typical figure.
    text_bytes = sum(len(("Q: " + q if spec.prompt else q).encode()) for q in frame["q"])
    system_bytes = len((spec.system or "").encode())
    assert t.input_tokens >= math.ceil((text_bytes + 150 * system_bytes) / 3)
    assert t.input_tokens_typical < t.input_tokens
    # The emulator's tokenizer (one token per word or punctuation mark) stays under the bound.
    emulated = sum(count_tokens(("Q: " + q if spec.prompt else q)) + count_tokens(spec.system or "") for q in frame["q"])
    assert emulated <= t.input_tokens
    if provider.kind == "text":
        assert t.output_tokens == 150 * provider.max_tokens and t.output_tokens_typical is None
    else:
        assert t.output_tokens == 0 and t.output_tokens_typical == 0


def test_typical_output_uses_the_given_figure_capped_at_max_tokens():
    spec = make_spec(model_id=NOVA, params={"max_tokens": 100})
    provider = providers.for_spec(spec)
    lines = shards.render_lines(_frame(120).lazy(), spec, provider)
    assert pricing.estimate_tokens(lines, provider, typical_output_tokens_per_record=40).output_tokens_typical == 4800
    assert pricing.estimate_tokens(lines, provider, typical_output_tokens_per_record=400).output_tokens_typical == 12000
    est = pricing.estimate_batch(spec, provider, lines, typical_output_tokens_per_record=40)
    assert est.cost_typical is not None and est.cost_typical.usd < est.cost.usd


@pytest.mark.parametrize(
    "model_id, budget, passed, match",
    [
        (NOVA, None, True, "no budget_usd set"),
        (NOVA, 100.0, True, "within budget_usd=100"),
        (NOVA, 0.0001, False, "exceeds budget_usd=0.0001"),
        (LLAMA, 100.0, False, "cannot be checked: no price for model"),
        (LLAMA, None, True, "unknown"),
    ],
)
def test_budget_check(model_id, budget, passed, match):
    spec = make_spec(model_id=model_id, params={"max_tokens": 100}, budget_usd=budget)
    provider = providers.for_spec(spec)
    est = pricing.estimate_batch(spec, provider, shards.render_lines(_frame(200).lazy(), spec, provider))
    check = pricing.check_budget(est, spec.budget_usd)
    assert check.passed is passed
    assert match in check.message
    md = est.metadata()
    assert md["estimated_input_tokens"] == est.tokens.input_tokens
    assert ("price_row" in md) is est.cost.known and ("price_unknown" in md) is (not est.cost.known)
    assert md["estimated_cost_usd"] == (round(est.usd, 6) if est.cost.known else None)
    json.dumps(md)  # plain values


def test_estimate_matches_hand_arithmetic():
    spec = make_spec(model_id=CLAUDE, prompt="{q}", params={"max_tokens": 10})
    provider = providers.for_spec(spec)
    frame = pl.DataFrame({RECORD_ID: [f"{i:03d}" for i in range(100)], "q": ["abcdefghi"] * 100})  # 3 + 9 bytes each
    est = pricing.estimate_batch(spec, provider, shards.render_lines(frame.lazy(), spec, provider))
    assert est.tokens.input_bytes == 100 * 12
    assert est.tokens.input_tokens == 100 * 12 // 3 + 100 * pricing.FORMAT_TOKENS_PER_RECORD
    assert est.tokens.output_tokens == 1000
    assert math.isclose(est.usd, (est.tokens.input_tokens * 0.125 + 1000 * 0.625) / 1e6)


@pytest.mark.parametrize(
    "model_id, args, usd",
    [
        (CLAUDE, (1_000_000, 1_000_000), 0.75),
        (CLAUDE, (1_000_000, 1_000_000, 1_000_000, 0), 0.75 + 0.25),  # on-demand remainder at on-demand price
        (LLAMA, (10, 10), None),
    ],
)
def test_actual_cost_metadata(model_id, args, usd):
    md = pricing.actual_cost_metadata(model_id, *args)
    if usd is None:
        assert md["actual_cost_usd"] is None and "no price for model" in md["price_unknown"]
    else:
        assert math.isclose(md["actual_cost_usd"], usd)
