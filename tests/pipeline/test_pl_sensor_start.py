"""BEDROCK_ASSETS_SENSOR_START=now: switching the sensor on does not start a run for every file
already under inputs/; files that land afterwards do start runs."""

from __future__ import annotations

import time

from .test_pl_sensor import SPECS, put, tick


def test_first_tick_from_now_leaves_existing_files_and_runs_new_ones(aws_env, write_specs, instance, monkeypatch):
    write_specs(SPECS)
    monkeypatch.setenv("BEDROCK_ASSETS_SENSOR_START", "now")
    put(aws_env, "inputs/jokes/old1.csv")
    put(aws_env, "inputs/jokes/old2.csv")
    first = tick(instance, None)
    assert not first.run_requests and "2 file(s) already under inputs/ left alone" in first.skip_reason.skip_message
    time.sleep(1.1)  # S3 timestamps are whole seconds; the cursor handles ties, this keeps the test plain
    put(aws_env, "inputs/jokes/new.csv")
    second = tick(instance, first.cursor)
    assert [r.partition_key for r in second.run_requests] == ["jokes/new.csv"]
