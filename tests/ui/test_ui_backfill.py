"""A backfill launched through `dagster dev`'s GraphQL API (what the UI's Materialize dialog
sends): three good partitions end materialized with passing checks, a broken fourth fails alone,
and the `bedrock_batch` pool (2 slots) caps Bedrock jobs in flight across all the runs."""

from __future__ import annotations

from ui_support import ASSETS, BROKEN, CHECK_EXECUTIONS, CHECKS, GOOD, MODEL, PARTITION_STATUSES, POOL_SLOTS, ROWS, RUN_LOGS, run_partition


def test_backfill_through_graphql_materializes_good_partitions_and_respects_the_pool(ui_stack, backfill):
    gql = ui_stack.gql
    data = backfill.data
    print(f"backfill {backfill.id}: {data['status']} after {backfill.seconds:.0f}s; emulator stats {backfill.stats['models']}")
    # One input failed, so the backfill as a whole ends failed, not "success".
    assert data["status"] in {"COMPLETED_FAILED", "FAILED"}, data["status"]

    # Backfill policy multi_run(1): one run per partition, each run covering all four assets.
    runs = {run_partition(r): r for r in data["runs"]}
    assert sorted(runs) == sorted([*GOOD, BROKEN]), data["runs"]
    assert {p: runs[p]["status"] for p in GOOD} == {p: "SUCCESS" for p in GOOD}, backfill.errors
    assert runs[BROKEN]["status"] == "FAILURE"
    # ...and it failed for the right reason: the template's column is not in the file.
    broken_errors = "\n".join(backfill.errors[runs[BROKEN]["runId"]])
    assert "jsonl_shards" in broken_errors and "topic" in broken_errors, broken_errors

    counts = {
        "/".join(s["assetKey"]["path"]): s for s in data["assetBackfillData"]["assetBackfillStatuses"]
    }
    assert counts["raw_dataset"]["numPartitionsMaterialized"] == 4  # the broken file is readable...
    assert counts["jsonl_shards"]["numPartitionsFailed"] == 1  # ...its rows do not fit the template
    for asset in ("batch_job_outputs", "joined_results"):
        assert counts[asset]["numPartitionsMaterialized"] == 3, counts[asset]
    assert all(c["numPartitionsInProgress"] == 0 for c in counts.values())

    # The UI's own partition view: every good partition materialized for every asset.
    asset_nodes = gql(PARTITION_STATUSES)["assetNodes"]
    nodes = {"/".join(n["assetKey"]["path"]): n["assetPartitionStatuses"] for n in asset_nodes}
    assert sorted(nodes) == sorted(ASSETS)
    for asset in ASSETS:
        assert set(GOOD) <= set(nodes[asset]["materializedPartitions"]), (asset, nodes[asset])
    assert BROKEN in nodes["raw_dataset"]["materializedPartitions"]
    assert BROKEN in nodes["jsonl_shards"]["failedPartitions"]
    for asset in ("batch_job_outputs", "joined_results"):
        assert BROKEN not in nodes[asset]["materializedPartitions"]

    # Every asset check ran in each good partition's own run and passed. (The checks are not
    # partitioned, so their executions carry no partition: they are matched by run.)
    run_to_partition = {r["runId"]: p for p, r in runs.items()}
    defined = {"/".join(n["assetKey"]["path"]): sorted(c["name"] for c in n["assetChecksOrError"]["checks"]) for n in asset_nodes}
    for asset, names in CHECKS.items():
        assert set(names) <= set(defined[asset]), (asset, defined[asset])
    for asset, names in defined.items():
        for name in names:
            execs = gql(CHECK_EXECUTIONS, asset={"path": [asset]}, check=name)["assetCheckExecutions"]
            by_partition = {run_to_partition[e["runId"]]: e["status"] for e in execs if e["runId"] in run_to_partition}
            assert {p: by_partition.get(p) for p in GOOD} == {p: "SUCCEEDED" for p in GOOD}, (asset, name, execs)
            assert by_partition.get(BROKEN) != "SUCCEEDED", (asset, name, execs)

    # The pool, across the three concurrent runs. Each run sends its shards one at a time, so two
    # jobs in flight means two runs overlapped; a step "blocked by limit" means a third run wanted
    # a slot then and waited. Together: the pool was contended and held at 2.
    shards = ROWS // 100
    model = backfill.stats["models"][MODEL]
    assert model["jobs_created"] == shards * len(GOOD), model  # no job for the broken input: no spend
    assert model["peak_in_flight"] == POOL_SLOTS, model
    assert model["quota_rejections"] == 0
    blocked = []
    for partition in GOOD:
        logs = gql(RUN_LOGS, runId=runs[partition]["runId"])["logsForRun"]
        assert logs["__typename"] == "EventConnection", logs
        blocked += [
            (partition, e["stepKey"]) for e in logs["events"]
            if "blocked by limit for pool bedrock_batch" in (e.get("message") or "")
        ]
    assert blocked, "no step ever waited for the pool: the runs did not contend, so the limit was not exercised"
    assert all(step.startswith("batch_job_outputs.run_shard_job") for _, step in blocked), blocked
