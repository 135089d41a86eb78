"""`make dev`: the emulator plus `dagster dev` (UI on http://127.0.0.1:3000), project-local DAGSTER_HOME.

The sample inputs are staged in the emulator's S3 and registered as partitions, so a user can
open the UI and click Materialize (or turn on the `new_input_files` sensor and drop files in).
The emulator keeps its S3 objects and Bedrock jobs in `.emulator-data/` beside DAGSTER_HOME: the
Dagster instance is persistent, so results it shows as materialized must survive a restart too.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def _wait_http(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except Exception as exc:  # noqa: BLE001 - any answer (even 4xx via HTTPError) means it is up
            if hasattr(exc, "code"):
                return
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {seconds}s")


def _default_signals() -> None:
    # A child started from a non-interactive shell can inherit SIGINT/SIGTERM as ignored
    # (docs/bedrock-facts.md, local traps); reset them so terminate() really stops `dagster dev`.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bedrock-assets dev", description=__doc__.splitlines()[0])
    parser.add_argument("--emulator-port", type=int, default=4566)
    parser.add_argument("--ui-port", type=int, default=3000)
    parser.add_argument("--no-samples", action="store_true", help="do not stage the sample inputs")
    parser.add_argument("--emulator-data-dir", default=None,
                        help="where the emulator keeps S3 objects and jobs (default: .emulator-data beside "
                             "DAGSTER_HOME); an empty value keeps them in memory only")
    args = parser.parse_args(argv)
    # `kill <pid>` (SIGTERM) must stop the children too, as Ctrl-C does: by default SIGTERM ends
    # this process at once and leaves the emulator and `dagster dev` holding their ports.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)

    root = Path(__file__).resolve().parent.parent
    home = Path(os.environ.get("DAGSTER_HOME") or root / ".dagster_home").resolve()
    from bedrock_assets.demo import DEMO_INPUTS, point_at_emulator, prepare_home

    prepare_home(home)
    data_dir = home.parent / ".emulator-data" if args.emulator_data_dir is None else args.emulator_data_dir
    data_flags = ["--data-dir", str(data_dir)] if str(data_dir) else []
    # SIGTERM (e.g. `kill`, a process manager) must run the cleanup below, not just vanish and
    # leave the emulator and `dagster dev` orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    endpoint = f"http://127.0.0.1:{args.emulator_port}"
    env = dict(os.environ, DAGSTER_HOME=str(home))
    procs: list[subprocess.Popen] = []
    try:
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "bedrock_assets.emulator", "--port", str(args.emulator_port), *data_flags],
                env=env,
                preexec_fn=_default_signals,
            )
        )
        _wait_http(endpoint + "/_emulator/health", 30)
        point_at_emulator(endpoint)
        env.update({k: os.environ[k] for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "BEDROCK_ASSETS_POLL_SECONDS")})
        if not args.no_samples:
            import boto3
            import dagster as dg

            from bedrock_assets import settings
            from bedrock_assets.add import stage_input
            from bedrock_assets.runner import register_partitions
            from bedrock_assets.storage import ensure_bucket

            os.environ["DAGSTER_HOME"] = str(home)
            s3 = boto3.client("s3", region_name=settings.region())
            ensure_bucket(s3, settings.bucket(), settings.region())
            keys = [stage_input(b, str(src), s3=s3) for b, src in DEMO_INPUTS]
            with dg.DagsterInstance.get() as instance:
                register_partitions(instance, keys)
            print(f"staged sample partitions: {', '.join(keys)}")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "dagster", "dev", "-w", str(root / "workspace.yaml"),
                 "-h", "127.0.0.1", "-p", str(args.ui_port)],
                cwd=root,
                env=env,
                preexec_fn=_default_signals,
            )
        )
        print(f"Dagster UI: http://127.0.0.1:{args.ui_port}   emulator: {endpoint}   DAGSTER_HOME={home}"
              + (f"   emulator data: {data_dir}" if data_flags else ""))
        procs[-1].wait()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
