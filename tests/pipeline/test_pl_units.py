"""Pure helpers of the orchestration layer: job identities, attempts, sensor cursor, layout."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from bedrock_assets.jobs import Backoff, EndEstimate, JobIdentity, job_id_from_arn, next_pause
from bedrock_assets.sensors import InputCursor, classify, select_new
from bedrock_assets.storage import PartitionKeyError, PartitionLayout, check_input_name, split_partition_key

JOB_NAME_RE = re.compile(r"^[a-zA-Z0-9]{1,63}(-*[a-zA-Z0-9+\-.]){0,63}$")
SHA = "0123456789abcdef" * 4
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


@pytest.mark.parametrize(
    "partition",
    ["jokes/topics.csv", "cot/train", "a/" + "x" * 120, "UPPER_case/Some.File-Name_v2.parquet"],
)
def test_job_identity_is_a_legal_deterministic_bedrock_name(partition):
    one = JobIdentity(partition, "shard-00012.jsonl", SHA, MODEL)
    two = JobIdentity(partition, "shard-00012.jsonl", SHA, MODEL)
    assert one.job_name == two.job_name and one.client_request_token == two.client_request_token
    assert len(one.job_name) <= 63 and JOB_NAME_RE.match(one.job_name)
    assert re.fullmatch(r"[a-f0-9]{64}", one.client_request_token)
    assert one.job_name.startswith(one.name_prefix) and one.job_name.endswith("-a1")


@pytest.mark.parametrize(
    "change",
    [
        dict(shard_digest="f" * 64),
        dict(attempt=2),
        dict(partition="jokes/other.csv"),
        dict(shard_name="shard-00013.jsonl"),
        dict(scope="another-bucket"),
        dict(model_id="anthropic.claude-3-5-sonnet-20240620-v1:0"),
        dict(invocation_type="Converse"),
    ],
)
def test_any_change_of_identity_gives_a_new_token(change):
    base = JobIdentity("jokes/topics.csv", "shard-00012.jsonl", SHA, MODEL)
    other = JobIdentity(**{**base.__dict__, **change})
    assert other.client_request_token != base.client_request_token
    if "attempt" not in change and "shard_name" not in change:
        # Other work is another job name too (the attempt number and shard number are in the name).
        assert other.name_prefix != base.name_prefix


def test_follow_up_tokens_bind_the_resubmitted_records():
    identity = JobIdentity("jokes/topics.csv", "shard-00000.jsonl", SHA, MODEL, attempt=2)
    assert identity.token_for_input(SHA) == identity.client_request_token
    one, two = identity.token_for_input("a" * 64), identity.token_for_input("b" * 64)
    assert one != two and re.fullmatch(r"[a-f0-9]{64}", one)


def test_backoff_is_jittered_and_capped():
    import random

    backoff = Backoff(base=1.0, cap=8.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(50)]
    assert all(0 <= d <= 8.0 for d in delays)
    assert len(set(round(d, 6) for d in delays)) > 40  # jittered, not a fixed schedule


@pytest.mark.parametrize(
    "delay, poll, left, pause, after",
    [
        (1.0, 30.0, None, 1.0, 2.0),  # no estimate: plain backoff 1, 2, 4 ...
        (16.0, 30.0, None, 16.0, 30.0),  # ... capped at the poll interval
        (30.0, 30.0, 12.5, 12.5, 1.0),  # last record due before the next poll: wake then
        (30.0, 30.0, 0.2, 1.0, 1.0),  # never closer than MIN_POLL_SECONDS
        (30.0, 30.0, 45.0, 30.0, 30.0),  # due after the next poll: the estimate changes nothing
        (30.0, 30.0, 0.0, 30.0, 30.0),  # all processed, outputs being written: plain backoff
        (0.2, 0.2, 0.1, 0.2, 0.2),  # a poll below MIN_POLL_SECONDS is never lengthened
    ],
)
def test_next_pause_wakes_at_the_estimated_end_and_never_later_than_the_backoff(delay, poll, left, pause, after):
    assert next_pause(delay, poll, left) == pytest.approx((pause, after))
    assert next_pause(delay, poll, left)[0] <= delay


def test_end_estimate_uses_the_rate_since_the_first_progress():
    est = EndEstimate()
    job = {"status": "InProgress", "totalRecordCount": 1000}
    assert est.seconds_left(100.0, {**job, "status": "Scheduled", "processedRecordCount": 0}) is None
    assert est.seconds_left(101.0, {**job, "processedRecordCount": 0}) is None  # counts 0 early on
    assert est.seconds_left(102.0, {**job, "processedRecordCount": 100}) is None  # one point: no rate
    assert est.seconds_left(112.0, {**job, "processedRecordCount": 300}) == pytest.approx(35.0)  # 20 rec/s
    assert est.seconds_left(113.0, {**job, "processedRecordCount": 300}) == pytest.approx(700 / (200 / 11))
    assert est.seconds_left(150.0, {**job, "status": "Completed", "processedRecordCount": 1000}) is None


def test_job_id_from_arn():
    arn = "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abcdefghijkl"
    assert job_id_from_arn(arn) == "abcdefghijkl"


@pytest.mark.parametrize("key", ["jokes", "/x", "jokes/", "a/b/c"[:0]])
def test_bad_partition_keys(key):
    with pytest.raises(PartitionKeyError):
        split_partition_key(key)


@pytest.mark.parametrize("name, ok", [
    ("topics.csv", True), ("a b.csv", True), ("café #1?.csv", True), ("x,y.csv", False), ("train", True), (".hidden", False),
    ("tab\there.csv", False), (" lead.csv", False), ("x" * 1100 + ".csv", False),
])
def test_input_names(name, ok):
    if ok:
        assert check_input_name(name) == name
    else:
        with pytest.raises(PartitionKeyError):
            check_input_name(name)


def test_awkward_names_get_safe_distinct_folders():
    from bedrock_assets.storage import INPUT_NAME, input_folder

    assert input_folder("topics.csv") == "topics.csv"  # safe names keep their folders
    folders = {input_folder(n) for n in ("a b.csv", "a_b.csv", "a  b.csv", "café.csv", "cafe\u0301.csv", "q#?.parquet")}
    assert len(folders) == 6 and all(INPUT_NAME.match(f) for f in folders)
    assert input_folder("my file (1).CSV").endswith(".csv") and len(input_folder("x" * 900 + ".csv")) < 100
    layout = PartitionLayout("bkt", "jokes/a b.csv")
    assert layout.input_key == "inputs/jokes/a b.csv"
    assert layout.records_key == f"records/jokes/{input_folder('a b.csv')}/records.parquet"


def test_layout_keys_are_under_the_partition():
    layout = PartitionLayout("bkt", "jokes/topics.csv")
    assert layout.uri(layout.records_key) == "s3://bkt/records/jokes/topics.csv/records.parquet"
    assert layout.outputs_prefix("shard-00001.jsonl") == "outputs/jokes/topics.csv/shard-00001/"
    assert layout.batch == "jokes" and layout.input_name == "topics.csv"


T0 = dt.datetime(2026, 11, 24, 12, 0, 0, tzinfo=dt.timezone.utc)


def _obj(key, second, etag="e1"):
    return {"Key": key, "LastModified": T0 + dt.timedelta(seconds=second), "ETag": f'"{etag}"'}


def test_cursor_first_tick_takes_everything_and_second_nothing():
    objs = [_obj("inputs/jokes/a.csv", 0), _obj("inputs/jokes/b.csv", 1)]
    fresh, cur = select_new(objs, InputCursor())
    assert [o["Key"] for o in fresh] == ["inputs/jokes/a.csv", "inputs/jokes/b.csv"]
    again, cur2 = select_new(objs, InputCursor.parse(cur.dump()))
    assert again == [] and cur2 == cur


def test_cursor_keeps_files_landing_in_the_same_second():
    first = [_obj("inputs/jokes/a.csv", 5)]
    _, cur = select_new(first, InputCursor())
    later = first + [_obj("inputs/jokes/b.csv", 5)]  # same second as the newest seen
    fresh, cur2 = select_new(later, cur)
    assert [o["Key"] for o in fresh] == ["inputs/jokes/b.csv"]
    assert select_new(later, cur2)[0] == []


def test_cursor_sees_a_reupload_with_new_content():
    _, cur = select_new([_obj("inputs/jokes/a.csv", 5, "e1")], InputCursor())
    fresh, _ = select_new([_obj("inputs/jokes/a.csv", 5, "e2")], cur)
    assert len(fresh) == 1 and fresh[0]["ETag"] == '"e2"'


@pytest.mark.parametrize(
    "key, ok",
    [
        ("inputs/jokes/a.csv", True),
        ("inputs/jokes/a.parquet", True),
        ("inputs/jokes/a.JSONL", True),
        ("inputs/nope/a.csv", False),
        ("inputs/jokes/a.xlsx", False),
        ("inputs/jokes/", False),
        ("inputs/jokes/sub/a.csv", False),
        ("inputs/jokes/a b.csv", True),
        ("inputs/jokes/a,b.csv", False),
    ],
)
def test_classify(key, ok):
    found, reason = classify({"Key": key, "ETag": '"abc"'}, {"jokes"})
    assert (found is not None) == ok
    if ok:
        assert found.partition == "jokes/" + key.rsplit("/", 1)[-1] and found.run_key.endswith(":abc")
    else:
        assert reason and key in reason


def _attempt(n, status, route="batch"):
    return {"attempt": n, "route": route, "job_name": f"ba-x-s00000-abc-a{n}", "status": status}


@pytest.mark.parametrize(
    "attempts, listed_names, ok",
    [
        ([_attempt(1, "Completed")], ["ba-x-s00000-abc-a1"], True),
        ([_attempt(1, "PartiallyCompleted"), _attempt(2, "Completed")], ["ba-x-s00000-abc-a1", "ba-x-s00000-abc-a2"], True),
        ([_attempt(1, "Completed"), _attempt(2, "Completed", "on-demand")], ["ba-x-s00000-abc-a1"], True),
        ([_attempt(1, "Completed")], ["ba-x-s00000-abc-a1", "ba-x-s00000-abc-a1"], False),  # paid twice
        ([_attempt(1, "Completed")], ["ba-x-s00000-abc-a1", "ba-x-s00000-abc-a2"], False),  # a stray job
        ([_attempt(1, "Stopped")], ["ba-x-s00000-abc-a1"], False),  # never finished
    ],
)
def test_audit_shard_jobs(attempts, listed_names, ok):
    from bedrock_assets.checks import audit_shard_jobs

    summary = {"shards": [{"shard": "shard-00000.jsonl", "attempts": attempts}]}
    audit = audit_shard_jobs(summary, {"shard-00000.jsonl": [{"jobName": n} for n in listed_names]})
    assert (not audit["duplicated_or_unaccounted_jobs"] and not audit["unfinished_shards"]) == ok
