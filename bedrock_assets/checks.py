"""Asset checks that ask Bedrock itself (not our own records) whether anything was paid twice."""

import collections

import dagster as dg

from bedrock_assets import jobs
from bedrock_assets.assets import batch_job_outputs
from bedrock_assets.resources import BedrockBatch, ProjectStorage
from bedrock_assets.storage import get_json


def audit_shard_jobs(summary: dict, listed: dict[str, list[dict]]) -> dict:
    """Compare a partition's job summary with Bedrock's job list.

    `listed` maps each shard to the jobs Bedrock has under that shard's name prefix. A shard
    passes when every attempt has exactly one job (no attempt was submitted twice) and its last
    attempt succeeded (a Completed job, or the on-demand remainder)."""
    duplicated, unfinished = [], []
    for shard in summary["shards"]:
        names = collections.Counter(j["jobName"] for j in listed.get(shard["shard"], []))
        duplicated += [name for name, count in names.items() if count > 1]
        batch_names = {a["job_name"] for a in shard["attempts"] if a["route"] == "batch"}
        unknown = set(names) - batch_names
        duplicated += sorted(unknown)  # a job for this shard that no attempt accounts for
        last = shard["attempts"][-1]
        if last["route"] == "batch" and last.get("status") != "Completed":
            unfinished.append(f"{shard['shard']}: {last.get('status')}")
    return {"duplicated_or_unaccounted_jobs": sorted(set(duplicated)), "unfinished_shards": unfinished}


# Unpartitioned on purpose, like the other checks (see assets._check); it runs in each partition's run.
@dg.asset_check(asset=batch_job_outputs, description="Each shard's attempts map to exactly one Bedrock job each, "
                "and each shard ended with a successful attempt (no job paid for twice).")
def one_job_per_shard_attempt(context: dg.AssetCheckExecutionContext, bedrock: BedrockBatch, storage: ProjectStorage) -> dg.AssetCheckResult:
    layout = storage.layout(context.partition_key)
    summary = get_json(storage.client(), layout.bucket, layout.jobs_summary_key) or {"shards": []}
    client = bedrock.client()
    listed = {}
    for shard in summary["shards"]:
        batch = [a for a in shard["attempts"] if a["route"] == "batch"]
        if batch:
            prefix = batch[0]["job_name"].rsplit("-a", 1)[0] + "-a"
            listed[shard["shard"]] = jobs.list_jobs_named(client, prefix)
    audit = audit_shard_jobs(summary, listed)
    return dg.AssetCheckResult(
        passed=not audit["duplicated_or_unaccounted_jobs"] and not audit["unfinished_shards"],
        metadata={**audit, "shards": len(summary["shards"]), "jobs_in_bedrock": sum(len(v) for v in listed.values())},
    )


all_checks = [one_job_per_shard_attempt]
