"""What every command (and the notebook API) sets up before it touches AWS or Dagster, and the
one-line messages for the usual mistakes.

A command must work on its own on a fresh clone: DAGSTER_HOME defaults to `./.dagster_home`,
`AWS_REGION` alone is enough (boto3 reads `AWS_DEFAULT_REGION`), the project bucket is created
when missing *on the emulator only* (never on AWS), and a missing credential, region, bucket,
batch, file or specs file is reported in one line, never as a traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import sys
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

from bedrock_assets import settings

# DAGSTER_HOME when it is unset: the folder `make demo` / `make dev` use, in the current directory.
DEFAULT_DAGSTER_HOME = ".dagster_home"
EMULATOR_HINT = "to try it locally without AWS, add --emulator (starts a local S3 + Bedrock emulator in this process)"


class UserError(Exception):
    """A mistake the user can fix; its message is printed as one line, without a traceback."""


def prepare_home(home: Path) -> None:
    """A DAGSTER_HOME with the repo's dagster.yaml (pools, run queue, quiet console) when there
    is one next to the package (a checkout) and the home has none yet."""
    repo_yaml = Path(__file__).resolve().parent.parent / "dagster.yaml"
    if repo_yaml.exists() and not (home / "dagster.yaml").exists():
        shutil.copy(repo_yaml, home / "dagster.yaml")


def ensure_dagster_home() -> Path:
    """$DAGSTER_HOME (created if missing), or ./.dagster_home when unset; exported for Dagster
    and the run's step processes. Checked before anything is uploaded."""
    raw = os.environ.get("DAGSTER_HOME")
    home = Path(raw or DEFAULT_DAGSTER_HOME).expanduser().resolve()  # Dagster wants an absolute path
    try:
        home.mkdir(parents=True, exist_ok=True)
        probe = home / ".write-check"
        probe.write_text("")
        probe.unlink()
        if not raw:
            prepare_home(home)  # our default home gets our settings; a home the user named is theirs
    except OSError as exc:
        raise UserError(f"DAGSTER_HOME={home} is not usable ({exc.strerror or exc}); point DAGSTER_HOME at a writable folder") from None
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def is_emulator(endpoint: str | None) -> bool:
    """True when `endpoint` answers the emulator's health check (a real AWS endpoint never does)."""
    if not endpoint:
        return False
    try:
        with urllib.request.urlopen(endpoint.rstrip("/") + "/_emulator/health", timeout=3) as resp:
            return resp.status == 200
    except Exception:  # noqa: BLE001 - unreachable, 4xx, not HTTP: not an emulator
        return False


def ensure_region(emulator: bool) -> str:
    """The region from AWS_REGION, AWS_DEFAULT_REGION or the AWS profile; both env names set to
    it, because boto3 reads AWS_DEFAULT_REGION and polars/our settings AWS_REGION."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        import boto3

        region = boto3.Session().region_name or (settings.DEFAULT_REGION if emulator else None)
    if not region:
        raise UserError("no AWS region: set AWS_REGION (e.g. export AWS_REGION=us-east-1) or a region in your AWS profile; " + EMULATOR_HINT)
    os.environ["AWS_REGION"] = region
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    return region


def ensure_credentials(emulator: bool) -> None:
    import boto3

    if boto3.Session().get_credentials() is not None:
        return
    if emulator:
        # The emulator accepts any credentials; placeholders, so no real key is ever sent to it.
        os.environ["AWS_ACCESS_KEY_ID"] = "emulator"
        os.environ["AWS_SECRET_ACCESS_KEY"] = "emulator"
        return
    raise UserError(
        "no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); " + EMULATOR_HINT
    )


def ensure_bucket(s3: Any, emulator: bool) -> str:
    """The project bucket exists: created on the emulator, an error on AWS (we never create AWS resources)."""
    import botocore.exceptions

    bucket = settings.bucket()
    try:
        s3.head_bucket(Bucket=bucket)
        return bucket
    except botocore.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("403", "AccessDenied", "Forbidden"):
            raise UserError(f"no access to bucket {bucket!r} (HTTP 403): check your credentials and BEDROCK_ASSETS_BUCKET") from None
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise
    if not emulator:
        raise UserError(
            f"bucket {bucket!r} does not exist: create it (aws s3 mb s3://{bucket}) or set BEDROCK_ASSETS_BUCKET to yours; "
            + EMULATOR_HINT
        )
    from bedrock_assets.storage import ensure_bucket as create

    create(s3, bucket, settings.region())
    return bucket


@dataclasses.dataclass
class AwsTarget:
    endpoint: str | None  # None: real AWS
    emulator: bool
    region: str
    bucket: str
    s3: Any


def prepare_aws(*, need_bucket: bool = True) -> AwsTarget:
    """Region, credentials and bucket for the current environment (emulator or AWS)."""
    endpoint = settings.endpoint_url()
    emulator = is_emulator(endpoint)
    ensure_credentials(emulator)  # first: with no AWS configuration at all, this line names --emulator
    region = ensure_region(emulator)
    import boto3

    s3 = boto3.client("s3", region_name=region)
    bucket = ensure_bucket(s3, emulator) if need_bucket else settings.bucket()
    return AwsTarget(endpoint, emulator, region, bucket, s3)


@contextlib.contextmanager
def local_emulator() -> Iterator[str]:
    """An in-process emulator on a free loopback port, with the environment pointed at it for the
    duration (placeholder credentials: real ones are never sent to it)."""
    from bedrock_assets.emulator import EmulatorConfig, run_emulator

    with run_emulator(EmulatorConfig(host="127.0.0.1", port=0)) as emu:
        os.environ.update(
            AWS_ENDPOINT_URL=emu.endpoint_url, AWS_ACCESS_KEY_ID="emulator", AWS_SECRET_ACCESS_KEY="emulator",
            AWS_REGION=os.environ.get("AWS_REGION") or settings.DEFAULT_REGION,
            # The emulator answers in seconds: poll it often rather than every 30 s.
            BEDROCK_ASSETS_POLL_SECONDS=os.environ.get("BEDROCK_ASSETS_POLL_SECONDS") or "1",
        )
        os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"]
        for key in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
            os.environ.pop(key, None)
        yield emu.endpoint_url


@contextlib.contextmanager
def restored_environ() -> Iterator[None]:
    """Undo every environment change made inside (the notebook API must not leave a notebook
    pointed at a stopped emulator)."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def one_line(exc: BaseException) -> str:
    """The user-facing line for an exception: known AWS/botocore errors get what to do."""
    import botocore.exceptions

    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return "no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); " + EMULATOR_HINT
    if isinstance(exc, botocore.exceptions.NoRegionError):
        return "no AWS region: set AWS_REGION (e.g. export AWS_REGION=us-east-1)"
    if isinstance(exc, botocore.exceptions.EndpointConnectionError):
        return f"cannot reach {exc.kwargs.get('endpoint_url', 'the AWS endpoint')} (is the emulator running? check AWS_ENDPOINT_URL)"
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        return f"AWS said {err.get('Code', '?')}: {err.get('Message', '') or exc} ({exc.operation_name})"
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"no such file: {exc.filename}"
    text = str(exc).strip() or type(exc).__name__
    return text if isinstance(exc, (ValueError, OSError)) else f"{type(exc).__name__}: {text}"


def run_main(body: Callable[[], int]) -> int:
    """Run a command's body; any error becomes `error: <one line>` on stderr and exit code 2
    (usage, configuration) or 1 (anything else). Spec errors keep their one line per problem."""
    from bedrock_assets.specs import SpecError
    from bedrock_assets.storage import PartitionKeyError

    try:
        return body()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (UserError, SpecError, PartitionKeyError, FileNotFoundError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the point: no traceback for a user's mistake
        lines = one_line(exc).splitlines() or [type(exc).__name__]
        print(f"error: {lines[0]}" + (f" (+{len(lines) - 1} more lines)" if len(lines) > 1 else ""), file=sys.stderr)
        if os.environ.get("BEDROCK_ASSETS_TRACEBACK"):
            raise
        return 1
