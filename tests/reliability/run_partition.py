"""Run the pipeline for one partition in this process (a test starts it to kill or interrupt it).

usage: python run_partition.py PARTITION [--reexecute-from-failure RUN_ID]
Uses the instance at $DAGSTER_HOME and the multiprocess executor (as `dagster dev` does).
Prints `RUN_ID <id>` as soon as the run exists, and `STATUS <status>` at the end.
"""

import sys

import dagster as dg

from bedrock_assets.runner import bedrock_batch_job, register_partitions


def main() -> int:
    partition = sys.argv[1]
    options = None
    with dg.DagsterInstance.get() as instance:
        register_partitions(instance, [partition])
        if len(sys.argv) > 3 and sys.argv[2] == "--reexecute-from-failure":
            options = dg.ReexecutionOptions.from_failure(sys.argv[3], instance)
        with dg.execute_job(
            dg.reconstructable(bedrock_batch_job),
            instance=instance,
            tags={"dagster/partition": partition},
            reexecution_options=options,
        ) as result:
            print(f"STATUS {instance.get_run_by_id(result.run_id).status.value}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
