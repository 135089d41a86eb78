import json
import random

import polars as pl
import pytest

from bedrock_assets import providers, records, results, shards

from dp_helpers import TITAN, make_spec


def _claude_ok(rid, text, stop="end_turn", tin=10, tout=5):
    return {"recordId": rid, "modelInput": {"messages": [{"role": "user", "content": "secret PII"}]},
            "modelOutput": {"id": "msg_1", "type": "message", "role": "assistant",
                            "content": [{"type": "text", "text": text}], "stop_reason": stop,
                            "stop_sequence": None, "usage": {"input_tokens": tin, "output_tokens": tout}}}


def _error(rid, code, message="bad request"):
    return {"recordId": rid, "modelInput": {"x": 1}, "error": {"errorCode": code, "errorMessage": message}}


def _write_out(path, docs, seed=0):
    docs = list(docs)
    random.Random(seed).shuffle(docs)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))
    return str(path)


def _claude():
    return providers.for_spec(make_spec())


def test_read_outputs_claude_shuffled_with_errors(tmp_path):
    docs = [_claude_ok(f"R{i:010d}", f"answer {i} ü\n\"q\"", tin=i, tout=2 * i) for i in range(50)]
    docs += [_error("R0000000050", 400), _error("R0000000051", "ThrottlingException", "slow down")]
    f = _write_out(tmp_path / "shard-00000.jsonl.out", docs)
    (tmp_path / "manifest.json.out").write_text('{"totalRecordCount": 52}')
    lf = results.read_outputs([f, str(tmp_path / "manifest.json.out")], _claude())
    df = lf.collect().sort("record_id")
    assert "modelInput" not in df.columns and not any("PII" in str(v) for v in df.row(0))
    assert df.columns[:7] == ["record_id", "response", "stop_reason", "input_tokens", "output_tokens", "error_code", "error_message"]
    row7 = df.filter(pl.col("record_id") == "R0000000007").row(0, named=True)
    assert row7["response"] == 'answer 7 ü\n"q"' and row7["input_tokens"] == 7 and row7["output_tokens"] == 14
    assert row7["stop_reason"] == "end_turn" and row7["error_code"] is None
    errs = df.filter(pl.col("error_code").is_not_null()).select("record_id", "error_code", "error_message").rows()
    assert errs == [("R0000000050", "400", "bad request"), ("R0000000051", "ThrottlingException", "slow down")]
    assert df.filter(pl.col("error_code").is_not_null())["response"].null_count() == 2


def test_claude_response_joins_text_blocks():
    p = _claude()
    mo = pl.DataFrame({"mo": [{"content": [{"type": "text", "text": "a"}, {"type": "tool_use", "text": None},
                                           {"type": "text", "text": "b"}], "stop_reason": "tool_use",
                               "usage": {"input_tokens": 1, "output_tokens": 2}}]},
                      schema={"mo": p.output_schema})
    assert mo.select(**p.output_columns(pl.col("mo")))["response"][0] == "ab"


def test_read_outputs_titan(tmp_path):
    p = providers.for_spec(make_spec(model_id=TITAN, prompt=None, text_column="t", params={"dimensions": 256}))
    docs = [{"recordId": f"R{i:010d}", "modelInput": {"inputText": "x"},
             "modelOutput": {"embedding": [i / 1000.0] * 256, "inputTextTokenCount": 3 + i,
                             "embeddingsByType": {"float": [0.0] * 256}}} for i in range(20)]
    docs.append(_error("R0000000020", 400))
    df = results.read_outputs([_write_out(tmp_path / "shard-00000.jsonl.out", docs)], p).collect().sort("record_id")
    assert df.schema["embedding"] == pl.Array(pl.Float32, 256)
    assert df.columns[:3] == ["record_id", "embedding", "input_tokens"]
    assert df["input_tokens"].to_list()[:3] == [3, 4, 5]
    assert df["embedding"][5].to_list() == pytest.approx([0.005] * 256)
    assert df["embedding"][20] is None and df["error_code"][20] == "400"


def _records_lf(n):
    return records.assign_record_ids(pl.LazyFrame({"q": [f"question {i}" for i in range(n)]}))


def test_join_keeps_every_record_once_with_status(tmp_path):
    n = 30
    docs = [_claude_ok(f"R{i:010d}", f"a{i}") for i in range(0, 20)]
    docs += [_error(f"R{i:010d}", 400) for i in range(20, 25)]
    # R5 answered twice: once failed (first file), once succeeded -> the success wins
    docs.append(_error("R0000000005", 500, "internal"))
    # R6 answered twice with two successes -> first by (file, line), independent of shuffling
    f1 = _write_out(tmp_path / "a" / "shard-00000.jsonl.out", docs, seed=1)
    f2 = _write_out(tmp_path / "b" / "shard-00000.jsonl.out", [_claude_ok("R0000000006", "second")], seed=2)
    outs = results.read_outputs([f2, f1], _claude())
    assert results.count_duplicates(outs) == 1  # R6 paid twice; R5's error + answer is a retry
    skipped = pl.col("q") == "question 27"
    df = results.join_results(_records_lf(n), outs, skipped=skipped).collect()
    assert df.height == n and df["record_id"].to_list() == [f"R{i:010d}" for i in range(n)]
    assert df["q"].to_list() == [f"question {i}" for i in range(n)]
    status = df["status"].to_list()
    assert status[:20] == ["succeeded"] * 20 and status[20:25] == ["failed"] * 5
    assert status[25:] == ["missing", "missing", "skipped", "missing", "missing"]
    assert df["response"][5] == "a5" and df["error_code"][5] is None
    assert df["response"][6] == "a6"
    assert df["error_code"][21] == "400"
    for seed in (3, 4):  # line order does not change which duplicate is kept
        _write_out(tmp_path / "a" / "shard-00000.jsonl.out", docs, seed=seed)
        again = results.join_results(_records_lf(n), results.read_outputs([f1, f2], _claude())).collect()
        assert again.drop("status").equals(df.drop("status"))


def test_read_manifests_sums_and_tolerates_missing_keys(tmp_path):
    (tmp_path / "j1").mkdir()
    (tmp_path / "j2").mkdir()
    (tmp_path / "j1" / "manifest.json.out").write_text(json.dumps(
        {"totalRecordCount": 10, "processedRecordCount": 10, "successRecordCount": 9, "errorRecordCount": 1,
         "inputTokenCount": 100, "outputTokenCount": 50}))
    (tmp_path / "j2" / "manifest.json.out").write_text(json.dumps(
        {"totalRecordCount": 5, "processedRecordCount": 5, "successRecordCount": 5, "errorRecordCount": 0,
         "inputTokenCount": 20}))
    paths = [str(tmp_path / "j1" / "manifest.json.out"), str(tmp_path / "j2" / "manifest.json.out"), "x/shard-00000.jsonl.out"]
    assert results.read_manifests(paths) == results.ManifestTotals(
        records=15, processed=15, success=14, error=1, input_tokens=120, output_tokens=50)


def test_write_results_end_to_end(tmp_path):
    n = 450
    spec = make_spec(max_records_per_job=200, skip_empty=True)
    data = {"q": [f"q{i}" if i % 50 else "" for i in range(n)]}
    recs = records.assign_record_ids(pl.LazyFrame(data))
    recs.sink_parquet(tmp_path / "records.parquet")
    provider = providers.for_spec(spec)
    infos = shards.write_shards(pl.scan_parquet(tmp_path / "records.parquet"), spec, provider, tmp_path / "shards", "in")
    outs = []
    for k, info in enumerate(infos):
        ids = [json.loads(l)["recordId"] for l in (tmp_path / "shards" / info.name).read_text().splitlines()]
        docs = [_error(r, 400) if int(r[1:]) % 7 == 0 else _claude_ok(r, "ok " + r) for r in ids[:-3]]
        docs.append(_claude_ok(next(r for r in ids if int(r[1:]) % 7), "dup"))  # answered twice
        outs.append(_write_out(tmp_path / "out" / info.name / "job" / (info.name + ".out"), docs, seed=k))
        (tmp_path / "out" / info.name / "job" / "manifest.json.out").write_text("{}")
        outs.append(str(tmp_path / "out" / info.name / "job" / "manifest.json.out"))
    labels = {f: (1, "batch") for f in outs if f.endswith(".jsonl.out")}
    summary = results.write_results(str(tmp_path / "records.parquet"), infos, outs, provider,
                                    tmp_path / "results.parquet", skipped=shards.empty_text(shards.text_parts(spec, provider)),
                                    file_labels=labels)
    df = pl.read_parquet(tmp_path / "results.parquet")
    # Plain parquet types: no Arrow `string_view` in the file (pyarrow < 16 cannot read it).
    import pyarrow.parquet as pq

    schema = pq.read_schema(tmp_path / "results.parquet")
    assert "view" not in str(schema) and schema.field("response").type in ("string", "large_string")
    assert df.schema["attempt"] == pl.Int32 and df.schema["input_tokens"] == pl.Int64
    answered = df.filter(pl.col("status").is_in(["succeeded", "failed"]))
    assert answered["attempt"].to_list() == [1] * answered.height
    assert set(answered["answered_by"]) == {"batch"}
    assert df.height == n and df["record_id"].to_list() == [f"R{i:010d}" for i in range(n)]
    assert summary.rows == n and summary.skipped == 9 and summary.missing == 3 * len(infos)
    assert summary.duplicates == len(infos) and summary.orphans == 0
    assert summary.failed == df.filter(pl.col("status") == "failed").height > 0
    assert summary.succeeded + summary.failed + summary.skipped + summary.missing == n


@pytest.mark.parametrize(("codec", "parquet_name"), [("zstd", "ZSTD"), ("lz4", "LZ4"), ("snappy", "SNAPPY"), ("none", "UNCOMPRESSED")])
def test_write_results_uses_the_requested_codec_and_keeps_the_rows(tmp_path, codec, parquet_name):
    import pyarrow.parquet as pq

    recs = records.assign_record_ids(pl.LazyFrame({"q": [f"question {i} " * 20 for i in range(300)]}))
    recs.sink_parquet(tmp_path / "records.parquet")
    ids = [f"R{i:010d}" for i in range(300)]
    out = _write_out(tmp_path / "out" / "all.jsonl.out", [_claude_ok(r, "answer " + r * 10) for r in ids])
    shard = {"name": "all.jsonl", "row_start": 0, "row_stop": 300}
    summary = results.write_results(str(tmp_path / "records.parquet"), [shard], [out], _claude(), tmp_path / "r.parquet",
                                    compression=codec)
    meta = pq.ParquetFile(tmp_path / "r.parquet").metadata
    codec_of = {meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i).compression for i in range(meta.num_columns)}
    # The answer columns get the spec's codec; the records' columns are copied as encoded there
    # (polars' default, zstd).
    assert {codec_of[c] for c in codec_of if c not in ("record_id", "q")} == {parquet_name}
    assert codec_of["record_id"] == codec_of["q"] == pq.ParquetFile(tmp_path / "records.parquet").metadata.row_group(0).column(1).compression
    df = pl.read_parquet(tmp_path / "r.parquet")
    assert summary.succeeded == 300 and df["record_id"].to_list() == ids
    assert df["response"].to_list() == ["answer " + r * 10 for r in ids]


def _ordered(doc, order):
    return {k: doc[k] for k in order if k in doc}


_NASTY = 'a "modelOutput": {"x": 1} and "error": 2 \\ ünï 😀 \n line'
_DOCUMENTED = ("recordId", "modelInput", "modelOutput", "error")


@pytest.mark.parametrize(
    ("order", "compact", "fast"),
    [
        (_DOCUMENTED, True, True),  # Bedrock's documented layout
        (_DOCUMENTED, False, True),  # `"key": value` with spaces
        (("modelInput", "modelOutput", "error", "recordId"), True, True),  # id after the answer
        (("modelInput", "recordId", "modelOutput", "error"), True, False),  # id cut away: full parse
        (("modelOutput", "error", "modelInput", "recordId"), False, True),  # answer first
    ],
)
def test_answer_only_decoding_agrees_with_the_full_parse(tmp_path, order, compact, fast):
    ids = [f"R{i:010d}" for i in range(40)]
    docs = [_error(r, 400 + i % 2, "bad \"modelOutput\": request") if i % 9 == 0 else _claude_ok(r, _NASTY + r) for i, r in enumerate(ids)]
    for d in docs:
        d["modelInput"] = {"messages": [{"role": "user", "content": [{"type": "text", "text": _NASTY}]}]}
    sep = (",", ":") if compact else (", ", ": ")
    lines = [json.dumps(_ordered(d, order), ensure_ascii=False, separators=sep) for d in docs]
    path = tmp_path / "shard.jsonl.out"
    path.write_text("\n".join(lines[:20]) + "\n\n  \n" + "\n".join(lines[20:]) + "\n")
    full = results.read_outputs([str(path)], _claude()).collect()
    assert full.height == 40 and full["record_id"].null_count() == 0
    assert results.collect_outputs([str(path)], _claude()).equals(full)
    answers_only = results._parse_answers(results._scan_lines([str(path)], None), _claude()).collect()
    assert answers_only.equals(full) is fast
    stats = results.ParseStats()
    results.collect_outputs([str(path)], _claude(), stats=stats)
    assert (stats.files, stats.lines) == (1, 40)
    assert (stats.slow_files, stats.slow_lines) == (([], 0) if fast else ([str(path)], 40))


@pytest.mark.parametrize("first_key", ["modelOutput", "error"])
@pytest.mark.parametrize("text", ["é", "東京 naïve ü", "😀" * 50, "\u2028 line\u2029sep \x85"])
def test_multibyte_text_before_the_key_keeps_the_fast_path(tmp_path, first_key, text):
    """polars 2.2's str.find counts characters, earlier ones bytes: the cut must land on the key
    either way, so non-ASCII requests keep the answer-only decoding (no slow path)."""
    answer = {"content": [{"type": "text", "text": "ok " + text}], "stop_reason": "end_turn",
              "usage": {"input_tokens": 3, "output_tokens": 2}}
    error = {"errorCode": 500, "errorMessage": "m " + text}
    lines = []
    for i in range(10):
        doc = {"recordId": f"R{i:010d}", "modelInput": {"messages": [{"role": "user", "content": text * (i + 1)}]}}
        if first_key == "modelOutput" or i % 2:
            doc["modelOutput"] = answer
        else:
            doc["error"] = error
        lines.append(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
    path = tmp_path / "shard.jsonl.out"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    stats = results.ParseStats()
    fast = results.collect_outputs([str(path)], _claude(), stats=stats)
    assert stats.slow_lines == 0 and stats.lines == 10
    assert fast.equals(results.read_outputs([str(path)], _claude()).collect())
    assert fast.filter(pl.col("error_code").is_null())["response"].unique().to_list() == ["ok " + text]


@pytest.mark.parametrize(
    ("line", "record_id", "response"),
    [
        # a record id with an escape is not taken from the head of the line
        ('{"recordId":"R\\"1","modelInput":{"a":1},"modelOutput":{"content":[{"type":"text","text":"t"}]}}', 'R"1', "t"),
        # a key named modelOutput inside the request: the cut line is not JSON
        ('{"recordId":"R1","modelInput":{"meta":{"modelOutput":{"x":1}}},"modelOutput":{"content":[{"type":"text","text":"t"}]}}', "R1", "t"),
        # neither an answer nor an error: nothing to cut at
        ('{"recordId":"R1","modelInput":{"a":1}}', "R1", None),
        # an error before an answer: both are kept, as the full parse keeps them
        ('{"recordId":"R1","modelInput":{},"error":{"errorCode":500,"errorMessage":"m"},"modelOutput":{"content":[{"type":"text","text":"t"}]}}', "R1", "t"),
    ],
)
def test_unusual_lines_are_read_as_the_full_parse_reads_them(tmp_path, line, record_id, response):
    ok = json.dumps(_claude_ok("R2", "fine"), separators=(",", ":"))
    path = tmp_path / "shard.jsonl.out"
    path.write_text(ok + "\n" + line + "\n")
    full = results.read_outputs([str(path)], _claude()).collect()
    assert results.collect_outputs([str(path)], _claude()).equals(full)
    assert full["record_id"].to_list() == ["R2", record_id] and full["response"].to_list() == ["fine", response]


@pytest.mark.parametrize("id_column", [None, "key"])  # positional ids (in id order) / the user's ids (not)
def test_a_complete_shard_joins_like_the_hash_join(tmp_path, id_column):
    n = 250
    frame = pl.LazyFrame({"key": [f"k{(i * 7919) % n:04d}" for i in range(n)], "q": [f"q{i}" for i in range(n)]})
    recs = records.assign_record_ids(frame, id_column=id_column)
    recs.sink_parquet(tmp_path / "records.parquet")
    ids = pl.read_parquet(tmp_path / "records.parquet")["record_id"].to_list()
    docs = [_error(r, 400) if i % 11 == 0 else _claude_ok(r, "answer " + r) for i, r in enumerate(ids)]
    out = _write_out(tmp_path / "o" / "s.jsonl.out", docs, seed=3)  # shuffled, one line per record
    labels = {out: (2, "batch")}
    shard = {"name": "s.jsonl", "row_start": 0, "row_stop": n}
    summary = results.write_results(str(tmp_path / "records.parquet"), [shard], [out], _claude(), tmp_path / "r.parquet",
                                    file_labels=labels)
    expected = results.join_results(pl.scan_parquet(tmp_path / "records.parquet"), results.read_outputs([out], _claude()),
                                     file_labels=labels).collect()
    assert pl.read_parquet(tmp_path / "r.parquet").equals(expected)
    assert (summary.rows, summary.failed, summary.succeeded) == (n, 23, n - 23)


def test_a_truncated_output_file_names_the_file_and_line_without_quoting_it(tmp_path):
    recs = records.assign_record_ids(pl.LazyFrame({"q": ["a", "b", "c"]}))
    recs.sink_parquet(tmp_path / "records.parquet")
    good = [json.dumps(_claude_ok(f"R{i:010d}", "fine")) for i in range(2)]
    path = tmp_path / "s.jsonl.out"
    path.write_text("\n".join(good) + '\n{"recordId":"R0000000002","modelInput":{"t":"secret PII"},"modelOut\n')
    shard = {"name": "s.jsonl", "row_start": 0, "row_stop": 3}
    with pytest.raises(results.OutputParseError) as err:
        results.write_results(str(tmp_path / "records.parquet"), [shard], [str(path)], _claude(), tmp_path / "r.parquet")
    assert str(err.value).startswith(f"{path} line 3: not valid JSON")
    assert "secret" not in str(err.value)


@pytest.mark.parametrize("row_group_rows", [70, 200, 1000])
@pytest.mark.parametrize("id_column", [None, "key"])
def test_write_results_equals_the_join_of_all_outputs_whatever_the_row_groups(tmp_path, row_group_rows, id_column):
    """The spliced file (records' chunks copied, answers encoded per records row group) holds
    exactly what joining every output line onto the records gives, for row groups that do not
    line up with the shards, non-positional ids (hash join) and shards with errors, missing and
    duplicate lines, skipped rows and a range no shard covers."""
    n = 530
    keys = [f"k{(i * 7919) % 1000:04d}" for i in range(n)]  # unique, not in id order
    frame = pl.DataFrame({"key": keys, "q": [f"q {i} «{i % 9}»" if i % 40 else " " for i in range(n)], "n": list(range(n))})
    recs = records.assign_record_ids(frame.lazy(), id_column=id_column).collect()
    recs.write_parquet(tmp_path / "records.parquet", row_group_size=row_group_rows)
    ids = recs["record_id"].to_list()
    ranges = [("shard-00000.jsonl", 0, 200), ("shard-00001.jsonl", 200, 400), ("shard-00002.jsonl", 400, 500)]
    outs, labels = [], {}
    for k, (name, a, b) in enumerate(ranges):
        docs = [_error(r, 429 if i % 2 else 400) if i % 13 == 0 else _claude_ok(r, f"answer {r}\n", tin=i, tout=i % 5)
                for i, r in zip(range(a, b), ids[a:b]) if i % 40 and i % 31]
        docs.append(_claude_ok(ids[a + 1], "again"))  # a duplicate answer
        path = _write_out(tmp_path / "out" / name / "job" / f"{name}.out", docs, seed=k)
        outs.append(path)
        labels[path] = (k + 1, "batch")
    skipped = pl.col("q").str.strip_chars() == ""
    summary = results.write_results(tmp_path / "records.parquet", [{"name": n_, "row_start": a, "row_stop": b} for n_, a, b in ranges],
                                    outs, _claude(), tmp_path / "results.parquet", skipped=skipped, file_labels=labels)
    got = pl.read_parquet(tmp_path / "results.parquet")
    expected = results.join_results(recs.lazy(), results.read_outputs(outs, _claude()), skipped, file_labels=labels).collect()
    assert got.columns == expected.columns
    assert got.equals(expected)
    assert summary.rows == n and summary.duplicates == 3
    unanswered = [i for i in range(n) if i >= 500 or not (i % 40 and i % 31)]
    blank = [i for i in unanswered if i % 40 == 0]
    assert summary.skipped == got.filter(pl.col("status") == "skipped").height == len(blank) == 14
    assert summary.missing == got.filter(pl.col("status") == "missing").height == len(unanswered) - len(blank) == 45


@pytest.mark.parametrize(("sizes", "counts"), [
    ([50, 50, 30], [40, 40, 40, 10]),
    ([130], [10] * 13),
    ([10] * 13, [130]),
    ([0, 20, 0, 5], [0, 25, 0]),
    ([], []),
])
def test_regroup_cuts_rows_at_the_row_groups_in_order(sizes, counts):
    frames, start = [], 0
    for n in sizes:
        frames.append(pl.DataFrame({"i": list(range(start, start + n))}, schema={"i": pl.Int64}))
        start += n
    out = list(results.regroup(frames, counts))
    assert [f.height for f in out] == counts
    assert [v for f in out if f.height for v in f["i"].to_list()] == list(range(sum(sizes)))


@pytest.mark.parametrize(("sizes", "counts"), [([50], [40]), ([50], [60]), ([10, 10], [5, 5, 5])])
def test_regroup_refuses_rows_that_do_not_add_up(sizes, counts):
    frames = [pl.DataFrame({"i": list(range(n))}) for n in sizes]
    with pytest.raises(ValueError, match=f"answers for {sum(sizes)} rows, records.parquet has {sum(counts)}"):
        list(results.regroup(frames, counts))


@pytest.mark.parametrize(("ranges", "total", "expected"), [
    ([(0, 10), (10, 25)], 25, [("s0", 0, 10), ("s1", 10, 25)]),
    ([(10, 25), (0, 10)], 30, [("s1", 0, 10), ("s0", 10, 25), ("", 25, 30)]),
    ([(5, 10)], 12, [("", 0, 5), ("s0", 5, 10), ("", 10, 12)]),
    ([], 7, [("", 0, 7)]),
    ([], 0, []),
])
def test_segments_cover_every_row_once(ranges, total, expected):
    shards_ = [{"name": f"s{k}", "row_start": a, "row_stop": b} for k, (a, b) in enumerate(ranges)]
    assert results.segments(shards_, total) == expected


@pytest.mark.parametrize("ranges", [[(0, 10), (5, 20)], [(0, 30)], [(8, 4)]])
def test_segments_refuse_overlapping_or_oversized_shards(ranges):
    with pytest.raises(ValueError, match="overlap another shard or pass"):
        results.segments([{"name": f"s{k}", "row_start": a, "row_stop": b} for k, (a, b) in enumerate(ranges)], 20)
