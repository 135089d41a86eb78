"""`new_input_files`: new objects under s3://$BEDROCK_ASSETS_BUCKET/inputs/<batch>/ become
partitions and runs of the whole flow."""


import dataclasses
import datetime as dt
import os
import json
from typing import Iterable

import dagster as dg
from dagster_aws.s3.sensor import get_objects

from bedrock_assets.asset_jobs import bedrock_batch_job
from bedrock_assets.partitions import inputs_partitions
from bedrock_assets.resources import ProjectStorage
from bedrock_assets.specs import SpecError, load_specs
from bedrock_assets.storage import input_name_problem, unsupported_type_problem

INPUTS_PREFIX = "inputs/"


@dataclasses.dataclass(frozen=True)
class InputCursor:
    """Newest LastModified seen, and the (key, ETag)s seen at exactly that instant.

    S3 timestamps have whole-second resolution, so "newer than the cursor" alone would skip a
    file landing in the same second as the previous newest one (docs/bedrock-facts.md, local traps); keeping
    the keys seen at that second lets us list from one second earlier and drop only those.
    """

    newest: str | None = None
    seen_at_newest: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: str | None) -> "InputCursor":
        if not raw:
            return cls()
        doc = json.loads(raw)
        return cls(doc.get("newest"), tuple(doc.get("seen_at_newest", ())))

    def dump(self) -> str:
        return json.dumps({"newest": self.newest, "seen_at_newest": list(self.seen_at_newest)})

    def list_since(self) -> dt.datetime | None:
        if self.newest is None:
            return None
        return dt.datetime.fromisoformat(self.newest) - dt.timedelta(seconds=1)


def _seen_id(obj: dict) -> str:
    return f"{obj['Key']}:{obj['ETag'].strip(chr(34))}"


def select_new(objects: Iterable[dict], cursor: InputCursor) -> tuple[list[dict], InputCursor]:
    """Objects not yet seen (by LastModified + key + ETag) and the cursor after them."""
    newest = dt.datetime.fromisoformat(cursor.newest) if cursor.newest else None
    seen = set(cursor.seen_at_newest)
    fresh = []
    for obj in objects:
        modified = obj["LastModified"]
        if newest is not None and (modified < newest or (modified == newest and _seen_id(obj) in seen)):
            continue
        fresh.append(obj)
    if not fresh:
        return [], cursor
    top = max(o["LastModified"] for o in fresh)
    if newest is not None and top == newest:
        at_top = seen | {_seen_id(o) for o in fresh if o["LastModified"] == top}
    else:
        at_top = {_seen_id(o) for o in fresh if o["LastModified"] == top}
    return fresh, InputCursor(top.isoformat(), tuple(sorted(at_top)))


@dataclasses.dataclass(frozen=True)
class InputFile:
    key: str
    batch: str
    name: str
    etag: str

    @property
    def partition(self) -> str:
        return f"{self.batch}/{self.name}"

    @property
    def run_key(self) -> str:
        # ETag in the run key: a re-upload with new content runs again, identical content does not.
        return f"{self.partition}:{self.etag}"


def classify(obj: dict, batches: set[str]) -> tuple[InputFile | None, str | None]:
    """(input, None) for a usable object, (None, reason) for one to skip."""
    key = obj["Key"]
    rest = key[len(INPUTS_PREFIX):]
    batch, sep, name = rest.partition("/")
    if key.endswith("/") or not sep or not name:
        return None, f"{key}: not under inputs/<batch>/<name>"
    if batch not in batches:
        return None, f"{key}: unknown batch {batch!r} (known: {', '.join(sorted(batches))})"
    if "/" in name:
        return None, f"{key}: in a sub-folder; put inputs directly under inputs/<batch>/"
    # The same rule and words as `bedrock-assets add` and raw_dataset (storage.input_name_problem).
    problem = input_name_problem(name, batch) or unsupported_type_problem(name)
    if problem:
        return None, f"{key}: {problem}"
    return InputFile(key, batch, name, obj["ETag"].strip('"')), None


def _shown(items: list[str], limit: int = 20, sep: str = ", ") -> str:
    # Name at most 20: a bulk upload of 10,000 files would otherwise be one ~200 kB line.
    return sep.join(items[:limit]) + (f"{sep}... and {len(items) - limit} more" if len(items) > limit else "")


# The first tick (no cursor yet) normally starts a run for every file already under inputs/.
# BEDROCK_ASSETS_SENSOR_START=now makes it note them as seen instead: only files that land
# after the sensor is switched on start runs (docs/ui.md, "the first tick").
ENV_SENSOR_START = "BEDROCK_ASSETS_SENSOR_START"


def starts_from_now() -> bool:
    return (os.environ.get(ENV_SENSOR_START) or "").strip().lower() == "now"


def _first_tick_from_now(existing: list[dict], cursor: InputCursor) -> dg.SensorResult:
    return dg.SensorResult(
        cursor=cursor.dump(),
        skip_reason=f"first tick with {ENV_SENSOR_START}=now: {len(existing)} file(s) already under inputs/ left alone; "
        "new files from now on start runs",
    )


@dg.sensor(
    job=bedrock_batch_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def new_input_files(context: dg.SensorEvaluationContext, storage: ProjectStorage) -> dg.SensorResult:
    """Each new or re-uploaded file under s3://$BEDROCK_ASSETS_BUCKET/inputs/<batch>/ becomes the
    partition `<batch>/<file name>` and a run of the whole flow for it."""
    try:
        specs = load_specs()
    except SpecError as exc:
        return dg.SensorResult(skip_reason=f"batch specs unreadable: {exc}")
    hf_batches = {name for name, spec in specs.items() if spec.is_hf}
    file_batches = set(specs) - hf_batches
    cursor = InputCursor.parse(context.cursor)
    objects = get_objects(
        storage.resolved_bucket(), prefix=INPUTS_PREFIX, since_last_modified=cursor.list_since(), client=storage.client()
    )
    fresh, next_cursor = select_new(objects, cursor)
    if context.cursor is None and starts_from_now():
        return _first_tick_from_now(fresh, next_cursor)
    inputs: list[InputFile] = []
    skipped: list[str] = []
    for obj in fresh:
        found, reason = classify(obj, file_batches)
        if found is None:
            skipped.append(str(reason))
            context.log.warning(f"skipping s3://{storage.resolved_bucket()}/{reason}")
        else:
            inputs.append(found)
    if not inputs:
        # The tick's skip reason is what the UI shows: it names every skipped file and why.
        reason = "no new input files" if not fresh else f"no usable new input files; skipped {_shown(skipped, sep='; ')}"
        return dg.SensorResult(cursor=next_cursor.dump(), skip_reason=reason)
    keys = sorted({i.partition for i in inputs})
    context.log.info(f"{len(inputs)} new input file(s): {_shown(keys)}")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(run_key=i.run_key, partition_key=i.partition, tags={"bedrock-assets/etag": i.etag})
            for i in inputs
        ],
        dynamic_partitions_requests=[inputs_partitions.build_add_request(keys)],
        cursor=next_cursor.dump(),
    )
