import json
import random

import numpy as np
import polars as pl
import pytest

from bedrock_assets import providers, records, shards
from bedrock_assets.shards import Column, InputValidationError, ShardPlanError

from dp_helpers import TITAN, make_spec
from nasty_strings import NASTY


def _records(**cols):
    return records.assign_record_ids(pl.LazyFrame(cols))


def _lines(spec, lf):
    return shards.render_lines(lf, spec, providers.for_spec(spec)).collect()


@pytest.mark.parametrize("text", NASTY)
def test_line_round_trips_nasty_text(text):
    spec = make_spec(prompt="Q: {q}\n\"{{quoted}}\" {q}")
    df = _lines(spec, _records(q=[text]))
    line = df["line"][0]
    assert "\n" not in line and "\r" not in line
    doc = json.loads(line)
    assert doc["recordId"] == "R0000000000"
    assert doc["modelInput"]["messages"][0]["content"][0]["text"] == f"Q: {text}\n\"{{quoted}}\" {text}"


@pytest.mark.parametrize(
    "template, parts",
    [
        ("Tell me about {topic}.", ["Tell me about ", Column("topic"), "."]),
        ("{a}{b}", [Column("a"), Column("b")]),
        ("{{literal}} {x}", ["{literal} ", Column("x")]),
        ("no placeholders", ["no placeholders"]),
        ("{user.name}!", [Column("user.name"), "!"]),
    ],
)
def test_parse_template(template, parts):
    assert shards.parse_template(template) == parts


@pytest.mark.parametrize("template, match", [("{}", "positional"), ("{x:>5}", "format spec"), ("{x!r}", "format spec"), ("{x", "malformed")])
def test_parse_template_rejects(template, match):
    with pytest.raises(InputValidationError, match=match):
        shards.parse_template(template)


def test_template_matches_str_format_with_non_string_columns():
    tpl = "{name} is {age} ({score}) {{ok}} {flag}"
    data = {"name": ["Ann", "Bob"], "age": [31, 42], "score": [1.5, 2.25], "flag": [True, False]}
    spec = make_spec(prompt=tpl)
    df = _lines(spec, _records(**data))
    got = [json.loads(l)["modelInput"]["messages"][0]["content"][0]["text"] for l in df["line"]]
    want = [tpl.format(name=n, age=a, score=s, flag=str(f).lower()) for n, a, s, f in zip(*data.values())]
    assert got == want


def test_titan_line_uses_text_column():
    spec = make_spec(model_id=TITAN, prompt=None, text_column="body", params={"dimensions": 512})
    df = _lines(spec, _records(body=["héllo\n", "x"]))
    assert json.loads(df["line"][0]) == {"recordId": "R0000000000", "modelInput": {"inputText": "héllo\n", "dimensions": 512, "normalize": True}}


def test_record_id_column_ids_are_escaped():
    spec = make_spec()
    lf = records.assign_record_ids(pl.LazyFrame({"k": ['a"1', "b\\2"], "q": ["x", "y"]}), id_column="k")
    assert [json.loads(l)["recordId"] for l in _lines(spec, lf)["line"]] == ['a"1', "b\\2"]


def _validate(spec, lf, label="in.csv"):
    return shards.validate(lf, spec, providers.for_spec(spec), label)


def test_missing_template_column_names_column_and_file():
    spec = make_spec(prompt="About {topic} and {mood}")
    with pytest.raises(InputValidationError, match=r"in.csv: the prompt template uses \{mood\} but the input has no column 'mood'"):
        _validate(spec, _records(topic=["a"] * 200))


@pytest.mark.parametrize("column", ["status", "response", "error_code", "answered_by"])
def test_input_column_named_like_a_result_column_fails_before_any_shard(tmp_path, column):
    spec = make_spec(prompt="About {topic}")
    lf = _records(topic=["a"] * 200, **{column: ["x"] * 200})
    with pytest.raises(InputValidationError, match=rf"in.csv: input column\(s\) '{column}' have the name of a column joined_results adds"):
        _validate(spec, lf)
    with pytest.raises(InputValidationError, match=column):
        shards.write_shards(lf, spec, providers.for_spec(spec), tmp_path / "shards", "in.csv")
    assert not list((tmp_path / "shards").glob("*.jsonl")) if (tmp_path / "shards").exists() else True


def test_missing_text_column():
    spec = make_spec(model_id=TITAN, prompt=None, text_column="body", params={})
    with pytest.raises(InputValidationError, match=r"text_column is \{body\}.*no column 'body'"):
        _validate(spec, _records(text=["a"] * 200))


def test_no_prompt_no_text_column():
    with pytest.raises(InputValidationError, match="needs a prompt"):
        _validate(make_spec(prompt=None), _records(q=["a"] * 200))


def test_empty_text_names_rows_and_record_ids():
    q = ["x"] * 200
    q[5], q[17], q[30] = "", None, "  \n\t"
    with pytest.raises(InputValidationError) as exc:
        _validate(make_spec(), _records(q=q))
    msg = str(exc.value)
    assert msg.startswith("in.csv: 3 row(s) have null or blank text in column(s) 'q'")
    assert "row 5 (record_id 'R0000000005')" in msg and "row 17 (record_id 'R0000000017')" in msg
    assert "skip_empty" in msg


def test_skip_empty_drops_rows_and_reports():
    q = ["x"] * 200
    q[3] = None
    q[4] = ""
    spec = make_spec(skip_empty=True)
    report = _validate(spec, _records(q=q))
    assert (report.rows, report.skipped, report.records) == (200, 2, 198)
    ids = _lines(spec, _records(q=q))["record_id"].to_list()
    assert len(ids) == 198 and "R0000000003" not in ids and "R0000000004" not in ids


def test_oversized_record_names_row_and_column():
    body = ["short"] * 150
    body[42] = "word " * 20_000  # 100k chars > 50k Titan limit
    spec = make_spec(model_id=TITAN, prompt=None, text_column="body", params={})
    with pytest.raises(InputValidationError, match=r"1 record\(s\) are too long.*'body'.*50,000 characters.*row 42 \(record_id 'R0000000042'\)"):
        _validate(spec, _records(body=body))


def test_line_over_file_limit_names_row():
    q = ["x"] * 150
    q[7] = "\x01" * 300  # escapes to 1,800 bytes
    spec = make_spec(max_bytes_per_file=1_500)
    with pytest.raises(InputValidationError, match=r"larger than max_bytes_per_file \(1,500 bytes\): row 7 \(record_id 'R0000000007'\)"):
        _validate(spec, _records(q=q))


def test_few_records_pass_and_none_fail():
    # Under the minimum job size the records are answered on-demand (attempts.py); no rows at all
    # is a mistake worth a message.
    assert _validate(make_spec(), _records(q=["a"] * 99)).records == 99
    with pytest.raises(InputValidationError, match="has no rows"):
        _validate(make_spec(), _records(q=pl.Series([], dtype=pl.String)))


@pytest.mark.parametrize("n", [100, 101, 199, 1000, 5_001, 12_345])
@pytest.mark.parametrize("max_records, min_records", [(100, 100), (1000, 100), (5000, 100), (300, 150)])
def test_plan_shards_by_count(n, max_records, min_records):
    try:
        b = shards.plan_shards(n, None, max_records, min_records, 10**9)
    except ShardPlanError:
        # only when no split into [min, max] exists
        k = -(-n // max_records)
        assert n // k < min_records
        return
    sizes = np.diff(b)
    assert b[0] == 0 and b[-1] == n
    assert len(sizes) == -(-n // max_records)  # as few shards as the record limit allows
    assert sizes.max() <= max_records and sizes.min() >= min_records
    assert sizes.max() - sizes.min() <= 1  # balanced, no short tail
    assert np.array_equal(b, shards.plan_shards(n, None, max_records, min_records, 10**9))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("max_bytes", [5_000, 20_000, 100_000])
def test_plan_shards_by_bytes(seed, max_bytes):
    rng = np.random.default_rng(seed)
    n = 2_000
    sizes_b = rng.integers(10, 400, size=n)
    b = shards.plan_shards(n, sizes_b, 500, 10, max_bytes)
    cum = np.concatenate(([0], np.cumsum(sizes_b)))
    per_shard = cum[b[1:]] - cum[b[:-1]]
    assert b[-1] == n and (np.diff(b) <= 500).all() and (np.diff(b) >= 10).all()
    assert (per_shard <= max_bytes).all()
    assert np.array_equal(b, shards.plan_shards(n, sizes_b, 500, 10, max_bytes))


def test_plan_shards_errors():
    with pytest.raises(ShardPlanError, match="fewer than min_records_per_job=100"):
        shards.plan_shards(50, None, 1000, 100, 10**9)
    with pytest.raises(ShardPlanError, match="over the 100-byte file limit"):
        shards.plan_shards(3, np.array([10, 200, 10]), 10, 1, 100)
    with pytest.raises(ShardPlanError, match="cannot split 150 records"):
        shards.plan_shards(150, None, 100, 100, 10**9)


def _write(spec, lf, out):
    return shards.write_shards(lf, spec, providers.for_spec(spec), out, "in.parquet")


def _dataset(n=1_000, seed=0):
    rng = random.Random(seed)
    # Distinct texts: identical requests are sent once (test_dp_ledger covers that).
    return {"q": [rng.choice(NASTY) * rng.randint(1, 5) + f" #{i}" for i in range(n)], "n": list(range(n))}


def test_write_shards_files_and_info(tmp_path):
    spec = make_spec(max_records_per_job=300, min_records_per_job=100)
    infos = _write(spec, _records(**_dataset(1_000)), tmp_path / "s")
    assert [i.name for i in infos] == [f"shard-0000{i}.jsonl" for i in range(4)]
    assert [i.records for i in infos] == [250, 250, 250, 250]
    all_ids = []
    for info in infos:
        data = (tmp_path / "s" / info.name).read_bytes()
        assert len(data) == info.bytes and shards.digest_bytes(data) == info.digest
        lines = data.decode().split("\n")
        assert lines[-1] == "" and len(lines) - 1 == info.records
        ids = [json.loads(l)["recordId"] for l in lines[:-1]]
        assert (ids[0], ids[-1]) == (info.first_record_id, info.last_record_id)
        all_ids += ids
    assert all_ids == [f"R{i:010d}" for i in range(1_000)]
    assert [(i.row_start, i.row_stop) for i in infos] == [(0, 250), (250, 500), (500, 750), (750, 1000)]


def test_write_shards_byte_identical_on_repeat(tmp_path):
    spec = make_spec(max_records_per_job=400)
    data = _dataset(1_000, seed=3)
    a = _write(spec, _records(**data), tmp_path / "a")
    b = _write(spec, _records(**data), tmp_path / "b")
    assert [i.digest for i in a] == [i.digest for i in b]
    for i in a:
        assert (tmp_path / "a" / i.name).read_bytes() == (tmp_path / "b" / i.name).read_bytes()


def test_write_shards_byte_limit_replans(tmp_path):
    data = _dataset(1_000, seed=1)
    spec = make_spec(max_records_per_job=1_000, min_records_per_job=10, max_bytes_per_file=60_000)
    infos = _write(spec, _records(**data), tmp_path / "s")
    assert len(infos) > 1 and all(i.bytes <= 60_000 for i in infos)
    assert sum(i.records for i in infos) == 1_000
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [i.name for i in infos]


def test_write_shards_skip_empty_row_ranges_cover_all_rows(tmp_path):
    data = _dataset(600)
    for i in (0, 1, 299, 599):
        data["q"][i] = ""
    spec = make_spec(max_records_per_job=300, skip_empty=True)
    infos = _write(spec, _records(**data), tmp_path / "s")
    assert sum(i.records for i in infos) == 596
    assert infos[0].row_start == 0 and infos[-1].row_stop == 600
    assert all(a.row_stop == b.row_start for a, b in zip(infos, infos[1:]))
    assert infos[0].first_record_id == "R0000000002"


def test_write_shards_validates_before_writing(tmp_path):
    data = _dataset(200)
    data["q"][10] = None
    with pytest.raises(InputValidationError, match="row 10"):
        _write(make_spec(), _records(**data), tmp_path / "s")
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    "bad, match",
    [
        (None, r"null or blank text .*row 2400 \(record_id 'R0000002400'\)"),
        ("x " * 1_000_000, r"too long for the model .*row 2400 \(record_id 'R0000002400'\)"),
    ],
    ids=["blank", "too-long"],
)
def test_a_bad_row_late_in_the_input_fails_with_the_full_report_and_leaves_no_shard(tmp_path, bad, match):
    # Validation runs inside the render pass: shards 0 and 1 are already written when row
    # 2400 (shard 2, a later piece) is rendered; they must be removed, and the error must be
    # validate's full report, not a generic one.
    data = _dataset(2_600)
    data["q"] = [q[:90] + f" #{i}" for i, q in enumerate(data["q"])]
    data["q"][2400] = bad
    frame = records.assign_record_ids(pl.DataFrame(data)).collect()
    frame.write_parquet(tmp_path / "r.parquet", row_group_size=500)
    spec = make_spec(max_records_per_job=1_000)
    with pytest.raises(InputValidationError, match=match):
        _write(spec, pl.scan_parquet(tmp_path / "r.parquet"), tmp_path / "s")
    assert not (tmp_path / "s").exists()
    # The same input without the bad row goes through: the failure was that row's alone.
    fixed = frame.with_columns(pl.when(pl.col("n") == 2400).then(pl.lit("fine")).otherwise(pl.col("q")).alias("q"))
    infos = _write(spec, fixed.lazy(), tmp_path / "s")
    assert [i.records for i in infos] == [867, 867, 866]


@pytest.mark.parametrize(
    "lines",
    [
        ["a\n", "bb\n", "ccc\n"],  # short strings are inlined in the views: copy path
        ['{"recordId":"R0000000000"}\n' * k for k in (1, 3, 50)],
        ["ü" * 40 + "\n", "x" * 13 + "\n", "😀" * 1000 + "\n"],
    ],
)
def test_line_buffers_are_the_exact_bytes(lines):
    s = pl.concat([pl.Series(lines[:1]), pl.Series(lines[1:])], rechunk=False)
    assert b"".join(bytes(b) for b in shards._line_buffers(s)) == "".join(lines).encode()
    rendered = pl.DataFrame({"a": lines}).select(pl.concat_str([pl.lit("0123456789abcdef"), pl.col("a")]))
    got = b"".join(bytes(b) for b in shards._line_buffers(rendered.to_series()))
    assert got == "".join("0123456789abcdef" + l for l in lines).encode()


@pytest.mark.parametrize("piece_rows", [333, 1_000])
def test_pieces_do_not_change_bytes(tmp_path, monkeypatch, piece_rows):
    data = _dataset(3_000, seed=5)
    for i in range(0, 3_000, 97):
        data["q"][i] = " "
    spec = make_spec(max_records_per_job=1_100, skip_empty=True)
    whole = _write(spec, _records(**data), tmp_path / "whole")
    monkeypatch.setattr(shards, "PIECE_MAX_ROWS", piece_rows)
    monkeypatch.setattr(shards, "PIECE_MIN_ROWS", 1)
    monkeypatch.setattr(shards, "PIECE_BYTES", 1 << 40)
    pieces = _write(spec, _records(**data), tmp_path / "pieces")
    assert whole == pieces
    assert [i.records for i in whole] == [990, 990, 989]


@pytest.mark.parametrize(
    "template",
    ["{q}", "Q: {q}", "{q} tail\n\"x\"", "pre {{br}} \u00e9 {q} post \\ end", "{q}{{", "\x01{q}\x1f"],
)
@pytest.mark.parametrize("model", ["claude", "titan"])
def test_text_slot_fast_path_is_byte_identical(template, model):
    spec = make_spec(prompt=template) if model == "claude" else make_spec(
        model_id=TITAN, prompt=template, params={"dimensions": 256, "normalize": False})
    provider = providers.for_spec(spec)
    df = pl.DataFrame({"q": NASTY})
    fast = df.select(shards.model_input_expr(spec, provider)).to_series()
    generic = df.select(provider.model_input(shards.text_expr(shards.parse_template(template)))).to_series()
    assert fast.to_list() == generic.to_list()
    for text, body in zip(NASTY, fast):
        doc = json.loads(body)
        got = doc["inputText"] if model == "titan" else doc["messages"][0]["content"][0]["text"]
        assert got == template.format(q=text)
