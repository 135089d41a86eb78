"""The request digest, the answer ledger's pure helpers, and jsonl_shards' cache filter
(shards.write_requests) on real files."""

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest

from bedrock_assets import ledger, providers, records, results, shards

from dp_helpers import CLAUDE, TITAN, make_spec
from nasty_strings import NASTY


def _records(**cols):
    return records.assign_record_ids(pl.LazyFrame(cols))


def _write(tmp_path, spec, lf, answered=None):
    return shards.write_requests(lf, spec, providers.for_spec(spec), tmp_path / "out", "input.csv", answered=answered)


def _shard_lines(tmp_path, shard_set):
    return [line for info in shard_set.shards for line in (tmp_path / "out" / info.name).read_text("utf-8").split("\n") if line]


def _body(line: str) -> bytes:
    """The modelInput bytes of a shard line, cut by hand (independent of the code under test)."""
    raw = line.encode("utf-8")
    start = raw.index(b',"modelInput":') + len(b',"modelInput":')
    return raw[start:-1]


@pytest.mark.parametrize("text", NASTY)
def test_digest_covers_exactly_the_request_body(tmp_path, text):
    spec = make_spec(prompt="Q: {q}", min_records_per_job=100)
    out = _write(tmp_path, spec, _records(q=[text, text + "!"]))
    lines = _shard_lines(tmp_path, out)
    want = [ledger.digest_of_body(_body(line), CLAUDE, "InvokeModel") for line in lines]
    assert out.requests[ledger.DIGEST].to_list() == want
    assert want[0] != want[1]


@pytest.mark.parametrize(
    ("change", "same"),
    [
        ({}, True),
        ({"model_id": "anthropic.claude-3-5-sonnet-20240620-v1:0"}, False),  # another model
        ({"params": {"max_tokens": 11}}, False),  # another parameter
        ({"prompt": "Q:  {q}"}, False),  # one more space in the prompt
        ({"invocation_type": "Converse"}, False),  # another invocation type
        ({"name": "other-batch", "max_records_per_job": 300}, True),  # not part of the request
    ],
)
def test_digest_changes_with_what_is_asked_and_only_with_it(tmp_path, change, same):
    base = make_spec(params={"max_tokens": 10})
    lf = _records(q=["a", "b"])
    one = _write(tmp_path / "1", base, lf).requests
    two = _write(tmp_path / "2", make_spec(**{"params": {"max_tokens": 10}, **change}), lf).requests
    assert (one[ledger.DIGEST].to_list() == two[ledger.DIGEST].to_list()) is same


def test_request_digests_agree_with_what_was_written(tmp_path):
    spec = make_spec(skip_empty=True)
    lf = _records(q=["x", "", "y", None, "x"])
    written = _write(tmp_path, spec, lf).requests.select("record_id", ledger.DIGEST)
    assert shards.request_digests(lf, spec, providers.for_spec(spec), piece_rows=2).equals(written)


def test_identical_requests_are_sent_once(tmp_path):
    spec = make_spec()
    out = _write(tmp_path, spec, _records(q=["same", "other", "same", "same"]))
    assert out.requests["sent"].to_list() == [True, True, False, False]
    assert out.duplicates == 2 and out.cached == 0
    assert [json.loads(line)["recordId"] for line in _shard_lines(tmp_path, out)] == ["R0000000000", "R0000000001"]
    assert out.requests["shard"].to_list() == ["shard-00000.jsonl", "shard-00000.jsonl", None, None]


@pytest.mark.parametrize("as_scan", [False, True])  # a Series, or a ledger scan (what the asset passes)
def test_answered_requests_are_left_out_and_shards_rebuilt_balanced(tmp_path, as_scan):
    spec = make_spec(max_records_per_job=300, min_records_per_job=100)
    lf = _records(q=[f"question {i}" for i in range(1000)])
    full = _write(tmp_path / "full", spec, lf)
    assert [s.records for s in full.shards] == [250, 250, 250, 250]
    # Every third request answered already: 666 are cached, 334 remain -> 2 shards of 167.
    answered = full.requests[ledger.DIGEST].gather_every(3, offset=1)
    answered = pl.concat([answered, full.requests[ledger.DIGEST].gather_every(3, offset=2)])
    if as_scan:  # with digests the input does not ask, as a real ledger has
        answered = pl.LazyFrame({ledger.DIGEST: pl.concat([answered, pl.Series([f"{i:032x}" for i in range(500)])])})
    out = _write(tmp_path, spec, lf, answered=answered)
    assert out.cached == 666 and [s.records for s in out.shards] == [167, 167]
    lines = _shard_lines(tmp_path, out)
    want_ids = full.requests["record_id"].gather_every(3).to_list()
    assert [json.loads(line)["recordId"] for line in lines] == want_ids
    # Bytes copied unchanged, and the infos describe the files.
    full_lines = {json.loads(line)["recordId"]: line for line in _shard_lines(tmp_path / "full", full)}
    assert lines == [full_lines[i] for i in want_ids]
    for info in out.shards:
        data = (tmp_path / "out" / info.name).read_bytes()
        assert info.bytes == len(data) and info.digest == shards.digest_bytes(data) and info.records == data.count(b"\n")
    sent = out.requests.filter(pl.col("sent"))
    assert sent["record_id"].to_list() == want_ids
    assert sent["shard"].to_list() == ["shard-00000.jsonl"] * 167 + ["shard-00001.jsonl"] * 167


@pytest.mark.parametrize("rows", [0, 1, 50, 99])
def test_everything_answered_or_under_the_minimum(tmp_path, rows):
    spec = make_spec(min_records_per_job=100)
    lf = _records(q=[f"q{i}" for i in range(100)])
    full = _write(tmp_path / "full", spec, lf)
    answered = full.requests[ledger.DIGEST].slice(rows)  # all but the first `rows`
    out = _write(tmp_path, spec, lf, answered=answered)
    assert sum(s.records for s in out.shards) == rows and len(out.shards) == (1 if rows else 0)
    assert out.cached == 100 - rows
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [s.name for s in out.shards]


def test_a_small_input_makes_one_shard_under_the_minimum(tmp_path):
    out = _write(tmp_path, make_spec(min_records_per_job=100), _records(q=[f"q{i}" for i in range(50)]))
    assert [s.records for s in out.shards] == [50]


def _ledger_frame(provider, rows):
    schema = ledger.ledger_schema(provider)
    base = {name: None for name in schema}
    return pl.DataFrame([{**base, **row} for row in rows], schema=schema)


def test_reusable_and_best_answers():
    provider = providers.for_spec(make_spec())
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    later = t0 + dt.timedelta(hours=1)
    frame = _ledger_frame(provider, [
        {"request_digest": "a", "response": "old", "answered_at": t0},
        {"request_digest": "a", "response": "new", "answered_at": later},
        {"request_digest": "b", "error_code": "429", "error_message": "slow down", "answered_at": later},
        {"request_digest": "c", "error_code": "400", "error_message": "bad body", "answered_at": t0},
        {"request_digest": "d", "error_code": "500", "error_message": "oops", "answered_at": later},
        {"request_digest": "d", "response": "ok", "answered_at": t0},
    ])
    assert sorted(ledger.reusable(frame.lazy()).collect()["request_digest"].unique()) == ["a", "c", "d"]
    assert ledger.reusable(frame.lazy(), fresh=True).collect().height == 0
    best = ledger.best_answers(frame.lazy()).collect().sort("request_digest")
    assert best["response"].to_list() == ["new", None, None, "ok"]
    assert best["error_code"].to_list() == [None, "429", "400", None]


def test_ledger_rows_key_answers_by_digest_and_count_orphans():
    provider = providers.for_spec(make_spec())
    outputs = pl.DataFrame({"record_id": ["R1", "R2", "R9"], "response": ["x", "y", "z"]}).with_columns(
        *[pl.lit(None, dtype).alias(name) for name, dtype in ledger.answer_schema(provider).items() if name != "response"])
    requests = pl.DataFrame({"record_id": ["R1", "R2"], ledger.DIGEST: ["d1", "d2"]})
    rows, orphans = ledger.ledger_rows(outputs, requests, provider, answered_by=ledger.AnsweredBy.BATCH,
                                       job_arn="arn:j", attempt=1, partition="b/x.csv")
    assert orphans == 1 and rows.schema == ledger.ledger_schema(provider)
    assert dict(zip(rows[ledger.DIGEST], rows["response"])) == {"d1": "x", "d2": "y"}


def test_model_key_separates_models_and_invocation_types():
    keys = {ledger.model_key(m, t) for m in (CLAUDE, "us." + CLAUDE, TITAN) for t in ("InvokeModel", "Converse")}
    assert len(keys) == 6 and all("/" not in k for k in keys)


def test_results_from_the_ledger_label_each_row(tmp_path):
    spec = make_spec(skip_empty=True)
    provider = providers.for_spec(spec)
    lf = _records(q=["a", "b", "", "a", "c"])
    records.write_records(lf, tmp_path / "records.parquet")
    out = _write(tmp_path, spec, pl.scan_parquet(tmp_path / "records.parquet"))
    req = out.requests.with_columns(pl.col("record_id").is_in(["R0000000001"]).alias("cached"))
    d = dict(zip(req["record_id"], req[ledger.DIGEST]))
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    answers = _ledger_frame(provider, [
        {"request_digest": d["R0000000000"], "response": "A", "answered_by": "batch", "attempt": 1, "answered_at": t0},
        {"request_digest": d["R0000000001"], "response": "B", "answered_by": "on-demand", "attempt": 2, "answered_at": t0},
    ])
    summary = results.write_answers(tmp_path / "records.parquet", req, answers, provider, tmp_path / "r.parquet", skip_empty=True)
    df = pl.read_parquet(tmp_path / "r.parquet")
    assert df["q"].to_list() == ["a", "b", "", "a", "c"]
    assert df["response"].to_list() == ["A", "B", None, "A", None]
    assert df["status"].to_list() == ["succeeded", "succeeded", "skipped", "succeeded", "missing"]
    assert df["answered_by"].to_list() == ["batch", "cache", None, "batch", None]
    assert df["request_digest"].to_list() == [d["R0000000000"], d["R0000000001"], None, d["R0000000000"], None]
    assert (summary.rows, summary.succeeded, summary.skipped, summary.missing) == (5, 3, 1, 1)


@pytest.mark.parametrize("record_id", ["R0000000001", 'k"0', "a\\b", "é\u2028x", 'q\\"', "{\"recordId\":\"x\"}"])
def test_shard_lines_give_back_their_record_ids(tmp_path, record_id):
    """attempts reads which records a shard (or follow-up) holds from its lines: ids with escapes
    must come back exactly, or answered records would be asked (and paid for) again."""
    from bedrock_assets.attempts import _record_ids_of_lines

    path = tmp_path / "shard.jsonl"
    path.write_text(json.dumps({"recordId": record_id, "modelInput": {"x": record_id}}, ensure_ascii=False,
                               separators=(",", ":")) + "\n", encoding="utf-8")
    assert _record_ids_of_lines(path).collect()["record_id"].to_list() == [record_id]


@pytest.mark.parametrize("distinct, want", [(1000, [1000]), (2900, [1000, 1000, 900]), (30, [30])])
def test_repeats_across_pieces_and_shards_are_sent_once(tmp_path, distinct, want):
    spec = make_spec(max_records_per_job=1000, min_records_per_job=100)
    lf = _records(q=[f"question {i % distinct}" for i in range(3000)])
    out = _write(tmp_path, spec, lf)
    assert [s.records for s in out.shards] == want
    lines = _shard_lines(tmp_path, out)
    assert [json.loads(line)["recordId"] for line in lines] == [f"R{i:010d}" for i in range(distinct)]
    assert out.duplicates == 3000 - distinct and out.requests["sent"].sum() == distinct
    assert out.requests.filter(~pl.col("sent"))["shard"].null_count() == 3000 - distinct


@pytest.mark.parametrize("record_id", ['k"0', "é\u2028x", "a\\b", "日本語"])
def test_digest_ignores_the_record_id_whatever_its_bytes(tmp_path, record_id):
    """The digest is cut out of the rendered line after the record id: ids with escapes or
    multi-byte characters must not shift the cut."""
    spec = make_spec(prompt="Q: {q}", id_column="k", min_records_per_job=100)
    lf = records.assign_record_ids(pl.LazyFrame({"k": [record_id, "plain"], "q": ["same", "same"]}), "k")
    out = _write(tmp_path, spec, lf)
    assert out.requests[ledger.DIGEST].n_unique() == 1 and out.duplicates == 1
    line = _shard_lines(tmp_path, out)[0]
    assert out.requests[ledger.DIGEST][0] == ledger.digest_of_body(_body(line), CLAUDE, "InvokeModel")


@pytest.mark.parametrize("pieces, size, distinct", [(1, 500, 100), (40, 250, 3000), (7, 1000, 10), (30, 100, 5000)])
def test_seen_requests_keeps_the_first_of_each_digest_across_pieces(pieces, size, distinct):
    rng = np.random.default_rng(pieces)
    pool = rng.bytes(16 * distinct)
    seen, reference = shards._SeenRequests(), set()
    for _ in range(pieces):
        picks = rng.integers(0, distinct, size)
        raw = b"".join(pool[16 * k : 16 * k + 16] for k in picks)
        want = []
        for k in picks:
            want.append(int(k) not in reference)
            reference.add(int(k))
        assert seen.first_time(raw).tolist() == want


@pytest.mark.parametrize("as_scan", [False, True])
def test_answered_mask_matches_whole_digests_only(as_scan):
    a, b = bytes(range(16)), bytes(range(16, 32))
    twin = a[:8] + bytes(8)  # the same first half as `a`, another second half
    known = ledger.hex_digests(a + twin)
    answered = known.to_frame().lazy() if as_scan else known
    assert shards._answered_mask(answered, a + b + a + twin[:8] + b[8:]).tolist() == [True, False, True, False]
    assert shards._answered_mask(None, a).tolist() == [False]


@pytest.mark.parametrize("keep", [[1, 1, 1, 1, 1], [0, 0, 0, 0, 0], [1, 0, 1, 0, 1], [0, 1, 1, 1, 0], [1, 1, 0, 0, 1], [0, 0, 0, 1, 1]])
def test_kept_buffers_are_exactly_the_kept_lines(keep):
    """Lines back to back in two buffers (as polars' string views hold them): the kept lines'
    bytes, in order, whatever runs they form and wherever a buffer ends."""
    lines = [b"aa\n", b"b\n", b"ccc\n", b"dddd\n", b"e\n"]
    buffers = [memoryview(b"".join(lines[:3])), memoryview(b"".join(lines[3:]))]
    mask = np.array(keep, dtype=bool)
    got = shards._kept_buffers(buffers, np.array([len(x) for x in lines]), mask)
    assert b"".join(bytes(b) for b in got) == b"".join(x for x, k in zip(lines, keep) if k)
