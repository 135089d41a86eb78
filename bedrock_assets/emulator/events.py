"""EventBridge "Batch Inference Job State Change" events, put into moto's events backend in process.

Real Bedrock sends one event to the account's default event bus whenever a batch job's status
changes (https://docs.aws.amazon.com/bedrock/latest/userguide/monitoring-eventbridge-how-it-works.html,
best effort). The emulator runs moto in the same process and serves its events and SQS APIs on the
same endpoint, so an unmodified client can create a rule (`source: aws.bedrock`) with an SQS target
there and receive these events; moto's events backend matches the rule and delivers to the queue.

The detail follows the sample event on that page: `version`, `accountId`, `batchJobName`,
`batchJobArn`, `batchModelId`, `status`, `failureMessage`, `creationTime`. Public Lambda handlers
read `detail.batchJobArn` and `detail.status` (docs/emulator.md, "Assumed behaviours").
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time

from .jobs import Job

log = logging.getLogger("bedrock_assets.emulator")

SOURCE = "aws.bedrock"
DETAIL_TYPE = "Batch Inference Job State Change"


def creation_time(timestamp: float) -> str:
    """`Jul 19, 2024, 1:51:06 AM` (UTC): the form of `creationTime` in AWS's sample event."""
    moment = dt.datetime.fromtimestamp(timestamp, tz=dt.timezone.utc)
    hour = moment.hour % 12 or 12
    return f"{moment.strftime('%b')} {moment.day}, {moment.year}, {hour}:{moment.strftime('%M:%S %p')}"


def detail(job: Job, account_id: str) -> dict:
    return {
        "version": "0.0",
        "accountId": account_id,
        "batchJobName": job.name,
        "batchJobArn": job.arn,
        "batchModelId": job.model_id,  # as submitted (unconfirmed; the AWS sample shows a plain id)
        "status": job.status,
        "failureMessage": job.message or "",
        "creationTime": creation_time(job.submit_time),
    }


def publish(job: Job, account_id: str) -> None:
    """Put one state-change event on the default bus of the job's region. Never raises: like
    Bedrock's own delivery this is best effort, and a job must not fail because of it."""
    try:
        from moto.events.models import events_backends

        backend = events_backends[account_id][job.region]
        backend.put_events([{
            "Source": SOURCE,
            "DetailType": DETAIL_TYPE,
            "Detail": json.dumps(detail(job, account_id)),
            "Resources": [job.arn],
            "Time": time.time(),  # moto expects epoch seconds here
        }])
    except Exception:  # noqa: BLE001 - best effort, see docstring
        log.warning("job=%s could not put the %s event", job.job_id, job.status, exc_info=True)
