"""The model invocation job record and its wire form (docs/bedrock-facts.md §1.2)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

IN_FLIGHT_STATUSES = frozenset({"Submitted", "Validating", "Scheduled", "InProgress", "Stopping"})
TERMINAL_STATUSES = frozenset({"Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"})
ALL_STATUSES = (
    "Submitted", "InProgress", "Completed", "Failed", "Stopping", "Stopped",
    "PartiallyCompleted", "Expired", "Validating", "Scheduled",
)
# The service default is unconfirmed (docs/bedrock-facts.md §1.1); the shortest allowed value is the safe choice:
# a client tested against it never relies on a longer window than it asked for.
DEFAULT_TIMEOUT_HOURS = 24


def iso(timestamp: float | None) -> str | None:
    """Epoch seconds -> `2024-11-23T10:00:00.123Z` (botocore timestampFormat iso8601)."""
    if timestamp is None:
        return None
    moment = dt.datetime.fromtimestamp(timestamp, tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class InputRecord:
    """One parsed input line: which file it came from, its recordId and modelInput."""

    file_index: int
    record_id: str
    model_input: Any
    has_model_input: bool = True


@dataclass
class Job:
    job_id: str
    arn: str
    name: str
    model_id: str
    base_model: str
    role_arn: str
    client_request_token: str | None
    invocation_type: str | None
    input_data_config: dict
    output_data_config: dict
    vpc_config: dict | None
    timeout_hours: int
    tags: list
    submit_time: float
    expiration_time: float
    status: str = "Submitted"
    message: str | None = None
    last_modified_time: float = 0.0
    end_time: float | None = None
    validating_time: float | None = None
    validated: bool = False  # the input passed validation; Scheduled once validating_seconds have passed
    scheduled_time: float | None = None
    total_records: int = 0
    processed_records: int = 0
    success_records: int = 0
    error_records: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    stop_requested: bool = False
    busy: bool = False  # a worker thread currently owns this job
    # Filled by validation; dropped once the job ends to free memory.
    input_files: list[tuple[str, str]] = field(default_factory=list)  # (uri, output name)
    records: list[InputRecord] = field(default_factory=list)

    @property
    def input_uri(self) -> str:
        return self.input_data_config["s3InputDataConfig"]["s3Uri"]

    @property
    def output_uri(self) -> str:
        return self.output_data_config["s3OutputDataConfig"]["s3Uri"]

    @property
    def region(self) -> str:
        return self.arn.split(":")[3]

    @property
    def model_arn(self) -> str:
        """modelId as Get/List report it: an ARN, whatever form was submitted.

        A cross-region profile id (`us.anthropic...`) reads back as the inference-profile ARN of
        the job's region and account; a base id as the foundation-model ARN (no account). Both
        forms are admitted by the output `modelId` pattern of botocore's bedrock model; the
        foundation-model form is unconfirmed (docs/emulator.md, "Assumed behaviours").
        """
        if self.model_id.startswith("arn:"):
            return self.model_id
        partition, account = self.arn.split(":")[1], self.arn.split(":")[4]
        if self.model_id != self.base_model:  # a cross-region prefix: an inference profile
            return f"arn:{partition}:bedrock:{self.region}:{account}:inference-profile/{self.model_id}"
        return f"arn:{partition}:bedrock:{self.region}::foundation-model/{self.model_id}"

    @property
    def in_flight(self) -> bool:
        return self.status in IN_FLIGHT_STATUSES

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def summary(self) -> dict[str, Any]:
        """GetModelInvocationJob response / ListModelInvocationJobs summary item."""
        counts_known = self.status not in ("Submitted", "Validating")
        body: dict[str, Any] = {
            "jobArn": self.arn,
            "jobName": self.name,
            "modelId": self.model_arn,
            "roleArn": self.role_arn,
            "status": self.status,
            "submitTime": iso(self.submit_time),
            "lastModifiedTime": iso(self.last_modified_time),
            "inputDataConfig": self.input_data_config,
            "outputDataConfig": self.output_data_config,
            "timeoutDurationInHours": self.timeout_hours,
            "jobExpirationTime": iso(self.expiration_time),
            # 0 while Submitted/Validating, as the real service reports (docs/bedrock-facts.md §7.5).
            "totalRecordCount": self.total_records if counts_known else 0,
            "processedRecordCount": self.processed_records,
            "successRecordCount": self.success_records,
            "errorRecordCount": self.error_records,
        }
        optional = {
            "clientRequestToken": self.client_request_token,
            "message": self.message,
            "endTime": iso(self.end_time),
            "vpcConfig": self.vpc_config,
            "modelInvocationType": self.invocation_type,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        return body
