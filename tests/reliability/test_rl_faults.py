"""Never pay twice, never lose a row: each fault injected for real, each outcome counted.

Job counts come from the emulator's own job list (ListModelInvocationJobs), i.e. what Bedrock
would bill, not from anything the pipeline says about itself.
"""

from __future__ import annotations

import json

import boto3
import dagster as dg
import polars as pl

from bedrock_assets.runner import materialize_partition

from pipeline.helpers import failed_steps, jobs_for_bucket, put_input, read_json, read_results
from .conftest import wait_until

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
SPECS = """
batches:
  jokes:
    model_id: anthropic.claude-3-haiku-20240307-v1:0
    prompt: "Tell me a joke about {topic}."
    max_records_per_job: 50000
  two-shards:
    model_id: anthropic.claude-3-haiku-20240307-v1:0
    prompt: "Tell me a joke about {topic}."
    max_records_per_job: 150
"""


def topics(n: int) -> pl.DataFrame:
    return pl.DataFrame({"topic": [f"topic {i}" for i in range(n)]})


def all_answered(env, key: str, rows: int) -> pl.DataFrame:
    results = read_results(env, key)
    assert results.height == rows and results.get_column("record_id").n_unique() == rows
    assert results.filter(pl.col("status") != "succeeded").height == 0, results.group_by("status").len()
    return results


def in_progress(env):
    return [j for j in jobs_for_bucket(env) if j["status"] == "InProgress"]


def test_sigkill_mid_wait_then_reexecute_and_rerun_creates_no_extra_jobs(aws_env, write_specs, home, instance_at_home, start_run):
    write_specs(SPECS)
    aws_env.emulator.configure(records_per_second=40)  # 300 records in 2 jobs: several seconds in flight
    key = put_input(aws_env, "two-shards", "kill.csv", topics(300))
    run = start_run(key)
    wait_until(lambda: len(in_progress(aws_env)) == 2, what="both jobs InProgress")
    run.kill_group()  # the run worker and its step processes die mid-wait
    run.wait()
    arns = sorted(j["jobArn"] for j in jobs_for_bucket(aws_env))
    assert len(arns) == 2

    crashed = instance_at_home.get_runs(limit=1)[0]
    assert crashed.status == dg.DagsterRunStatus.STARTED  # nobody told Dagster: the worker was SIGKILLed
    instance_at_home.report_run_failed(crashed)  # what run monitoring does for a dead worker
    out = start_run(key, "--reexecute-from-failure", crashed.run_id).wait()
    assert "STATUS SUCCESS" in out, out[-3000:]
    assert sorted(j["jobArn"] for j in jobs_for_bucket(aws_env)) == arns
    all_answered(aws_env, key, 300)

    fresh = materialize_partition(instance_at_home, key)  # and a brand-new run of the partition
    assert fresh.status == dg.DagsterRunStatus.SUCCESS
    assert sorted(j["jobArn"] for j in jobs_for_bucket(aws_env)) == arns
    all_answered(aws_env, key, 300)


def test_crash_right_after_create_returns_creates_no_extra_job(aws_env, write_specs, home, instance_at_home, start_run):
    write_specs(SPECS)
    key = put_input(aws_env, "jokes", "crash.csv", topics(120))
    out = start_run(key, extra_env={"BEDROCK_ASSETS_CRASH_AT": "after-create"}).wait()
    assert "STATUS FAILURE" in out, out[-3000:]
    created = jobs_for_bucket(aws_env)
    assert len(created) == 1  # Bedrock accepted it; the step died before recording anything
    rerun = materialize_partition(instance_at_home, key)
    assert rerun.status == dg.DagsterRunStatus.SUCCESS, failed_steps(instance_at_home, rerun.run_id)
    assert [j["jobArn"] for j in jobs_for_bucket(aws_env)] == [created[0]["jobArn"]]
    all_answered(aws_env, key, 120)


def test_throttling_half_of_creates_still_succeeds(aws_env, write_specs, instance, monkeypatch):
    write_specs(SPECS)
    monkeypatch.setenv("BEDROCK_ASSETS_BACKOFF_CAP_SECONDS", "0.5")
    aws_env.emulator.reset_stats()
    aws_env.emulator.configure(throttle_rate=0.5)
    key = put_input(aws_env, "two-shards", "throttled.csv", topics(300))
    run = materialize_partition(instance, key, in_process=True)
    assert run.status == dg.DagsterRunStatus.SUCCESS, failed_steps(instance, run.run_id)
    assert len(jobs_for_bucket(aws_env)) == 2
    assert aws_env.emulator.stats()["models"][MODEL]["create_throttled"] > 0
    all_answered(aws_env, key, 300)


def test_quota_held_by_another_client_makes_the_run_wait_then_succeed(aws_env, write_specs, instance, monkeypatch):
    write_specs(SPECS)
    monkeypatch.setenv("BEDROCK_ASSETS_BACKOFF_CAP_SECONDS", "1")
    aws_env.emulator.reset_stats()
    aws_env.emulator.configure(max_concurrent_jobs=2, records_per_second=25)
    # Another client's two jobs (250 records at 25/s: ~10 s each) hold both slots of the quota.
    other = put_input(aws_env, "jokes", "other.csv", topics(1))  # only to have the bucket layout
    s3 = aws_env.s3
    body = "".join(
        json.dumps({"recordId": f"X{i:010d}", "modelInput": {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10,
                                                               "messages": [{"role": "user", "content": "hi"}]}}) + "\n"
        for i in range(250)
    )
    s3.put_object(Bucket=aws_env.bucket, Key="other-client/in.jsonl", Body=body.encode())
    client = boto3.client("bedrock", region_name="us-east-1")
    for n in range(2):
        client.create_model_invocation_job(
            jobName=f"other-client-{n}", roleArn="arn:aws:iam::123456789012:role/Other", modelId=MODEL,
            inputDataConfig={"s3InputDataConfig": {"s3Uri": f"s3://{aws_env.bucket}/other-client/in.jsonl"}},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{aws_env.bucket}/other-client/out/"}},
        )
    key = put_input(aws_env, "jokes", "waits.csv", topics(120))
    run = materialize_partition(instance, key, in_process=True)
    assert run.status == dg.DagsterRunStatus.SUCCESS, failed_steps(instance, run.run_id)
    ours = [j for j in jobs_for_bucket(aws_env) if j["jobName"].startswith("ba-")]
    assert len(ours) == 1
    assert aws_env.emulator.stats()["models"][MODEL]["quota_rejections"] > 0  # it really had to wait
    all_answered(aws_env, key, 120)
    del other


def test_transient_record_errors_are_retried_until_every_row_is_answered(aws_env, write_specs, instance):
    write_specs(SPECS)
    aws_env.emulator.configure(record_error_rate=0.05, record_error_codes=[429, 500])
    rows = 2400  # ~5 % = ~120 transient failures: enough for a follow-up *job* (minimum 100)
    key = put_input(aws_env, "jokes", "flaky.csv", topics(rows))
    run = materialize_partition(instance, key, in_process=True)
    assert run.status == dg.DagsterRunStatus.SUCCESS, failed_steps(instance, run.run_id)
    record = read_json(aws_env, f"jobs/{key}/shard-00000.json")
    batch = [a for a in record["attempts"] if a["route"] == "batch"]
    assert len(jobs_for_bucket(aws_env)) == len(batch) >= 2  # the first job and a follow-up job
    assert batch[0]["error_records"] > 0 and batch[0]["outstanding_records"] == batch[0]["error_records"]
    results = all_answered(aws_env, key, rows)
    assert results.filter(pl.col("attempt") > 1).height == batch[0]["error_records"]


def test_a_stopped_job_keeps_its_output_and_the_rest_is_answered(aws_env, write_specs, instance):
    import threading

    write_specs(SPECS)
    aws_env.emulator.configure(records_per_second=100)
    key = put_input(aws_env, "jokes", "stopped.csv", topics(400))
    client = boto3.client("bedrock", region_name="us-east-1")

    def stop_when_partly_done():
        job = wait_until(
            lambda: next((j for j in in_progress(aws_env) if (j.get("processedRecordCount") or 0) >= 50), None),
            what="a job with some records processed",
        )
        client.stop_model_invocation_job(jobIdentifier=job["jobArn"])  # e.g. someone in the console

    stopper = threading.Thread(target=stop_when_partly_done)
    stopper.start()
    run = materialize_partition(instance, key, in_process=True)
    stopper.join()
    assert run.status == dg.DagsterRunStatus.SUCCESS, failed_steps(instance, run.run_id)
    record = read_json(aws_env, f"jobs/{key}/shard-00000.json")
    first = record["attempts"][0]
    assert first["status"] == "Stopped" and 0 < first["processed_records"] < 400
    results = all_answered(aws_env, key, 400)
    kept = results.filter(pl.col("attempt") == 1).height
    assert kept == first["success_records"]  # what the stopped job answered is kept, not re-asked


def test_cancelling_the_run_stops_its_jobs(aws_env, write_specs, home, instance_at_home, start_run):
    import os
    import signal

    write_specs(SPECS)
    aws_env.emulator.configure(records_per_second=20)
    key = put_input(aws_env, "two-shards", "cancel.csv", topics(300))
    run = start_run(key)
    wait_until(lambda: len(in_progress(aws_env)) == 2, what="both jobs InProgress")
    # What terminating a run does: the run worker is interrupted and forwards the termination to
    # its step processes (the multiprocess executor's own path), which must stop their jobs.
    os.kill(run.proc.pid, signal.SIGINT)
    out = run.wait()
    jobs = wait_until(
        lambda: (lambda js: js if all(j["status"] == "Stopped" for j in js) else None)(jobs_for_bucket(aws_env)),
        timeout=60,
        what="jobs Stopped",
    )
    assert len(jobs) == 2, out[-2000:]
    for shard in ("shard-00000", "shard-00001"):
        attempt = read_json(aws_env, f"jobs/{key}/{shard}.json")["attempts"][0]
        assert attempt.get("stopped_by_cancellation") and attempt["status"] == "Stopped"
        assert attempt["processed_records"] is not None


def test_a_remainder_of_30_failed_records_is_answered_on_demand(aws_env, write_specs, instance):
    write_specs(SPECS)
    failing = [f"R{i:010d}" for i in range(0, 150, 5)]  # exactly 30 records fail once (HTTP 500)
    aws_env.emulator.configure(record_error_ids=failing, record_error_codes=[500])
    aws_env.emulator.reset_stats()
    key = put_input(aws_env, "jokes", "remainder.csv", topics(150))
    run = materialize_partition(instance, key, in_process=True)
    assert run.status == dg.DagsterRunStatus.SUCCESS, failed_steps(instance, run.run_id)
    assert len(jobs_for_bucket(aws_env)) == 1  # 30 < 100 minimum records: no follow-up job
    stats = aws_env.emulator.stats()["models"][MODEL]
    assert stats["runtime_invocations"] == 30  # one InvokeModel per remaining record, no more
    results = all_answered(aws_env, key, 150)
    on_demand = results.filter(pl.col("answered_by") == "on-demand")
    assert sorted(on_demand.get_column("record_id").to_list()) == failing
    assert set(on_demand.get_column("attempt").to_list()) == {2}
    assert results.filter(pl.col("answered_by") == "batch").get_column("attempt").unique().to_list() == [1]


def test_an_expired_job_is_retried_and_a_stuck_one_reported(aws_env, write_specs, instance):
    """Scaled time: 1 emulated hour = 0.05 s, so a 24-hour timeout passes while the job queues."""
    import threading

    write_specs(SPECS.replace("    max_records_per_job: 50000\n", "    max_records_per_job: 50000\n    stuck_after_minutes: 0.01\n", 1))
    aws_env.emulator.configure(queue_seconds=5, seconds_per_hour=0.05)

    def unblock_after_first_expiry():
        wait_until(lambda: any(j["status"] == "Expired" for j in jobs_for_bucket(aws_env)), what="an Expired job")
        aws_env.emulator.configure(queue_seconds=0, seconds_per_hour=3600)

    helper = threading.Thread(target=unblock_after_first_expiry)
    helper.start()
    key = put_input(aws_env, "jokes", "expiring.csv", topics(120))
    run = materialize_partition(instance, key, in_process=True)
    helper.join()
    assert run.status == dg.DagsterRunStatus.SUCCESS, failed_steps(instance, run.run_id)
    attempts = read_json(aws_env, f"jobs/{key}/shard-00000.json")["attempts"]
    assert [a["status"] for a in attempts] == ["Expired", "Completed"]
    assert attempts[0]["stuck"] is True  # queued past stuck_after_minutes: reported
    assert len(jobs_for_bucket(aws_env)) == 2
    warnings = [r.user_message for r in instance.all_logs(run.run_id) if r.level >= 30]
    assert any("no queue-time SLA" in w for w in warnings)
    all_answered(aws_env, key, 120)
    meta = instance.get_latest_materialization_event(dg.AssetKey("batch_job_outputs")).asset_materialization.metadata
    assert meta["stuck_jobs"].value == [attempts[0]["job_name"]]


def test_a_partially_completed_job_keeps_its_answers_and_the_rest_follow_up(aws_env, write_specs, instance):
    """The job runs out of time InProgress (24 emulated hours = 2.4 s at 100 records/s)."""
    import threading

    write_specs(SPECS)
    aws_env.emulator.configure(records_per_second=100, seconds_per_hour=0.1)

    def restore_time_after_first_job():
        wait_until(lambda: any(j["status"] == "PartiallyCompleted" for j in jobs_for_bucket(aws_env)), what="PartiallyCompleted")
        aws_env.emulator.configure(records_per_second=0, seconds_per_hour=3600)

    helper = threading.Thread(target=restore_time_after_first_job)
    helper.start()
    key = put_input(aws_env, "jokes", "partial.csv", topics(600))
    run = materialize_partition(instance, key, in_process=True)
    helper.join()
    assert run.status == dg.DagsterRunStatus.SUCCESS, failed_steps(instance, run.run_id)
    attempts = read_json(aws_env, f"jobs/{key}/shard-00000.json")["attempts"]
    assert attempts[0]["status"] == "PartiallyCompleted" and 0 < attempts[0]["success_records"] < 600
    results = all_answered(aws_env, key, 600)
    assert results.filter(pl.col("attempt") == 1).height == attempts[0]["success_records"]
