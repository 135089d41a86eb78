"""`bedrock-assets emulator ...` / `python -m bedrock_assets.emulator ...`: run in the foreground."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from .config import EmulatorConfig, parse_error_codes


def build_parser() -> argparse.ArgumentParser:
    defaults = EmulatorConfig()
    parser = argparse.ArgumentParser(
        prog="bedrock-assets emulator",
        description="Local S3 (moto) + Amazon Bedrock batch control plane + bedrock-runtime on one endpoint.",
    )
    add = parser.add_argument
    add("--host", default=defaults.host, help="bind address (default 127.0.0.1)")
    add("--port", type=int, default=defaults.port, help="port; 0 picks a free one (default 4566)")
    add("--max-concurrent-jobs", type=int, default=defaults.max_concurrent_jobs,
        help="submitted+in-progress jobs per model before ServiceQuotaExceededException (default 20)")
    add("--min-records", type=int, default=defaults.min_records, help="minimum records per job (default 100)")
    add("--max-records", type=int, default=defaults.max_records, help="maximum records per job (default 50000)")
    add("--max-input-file-bytes", type=int, default=defaults.max_input_file_bytes,
        help="largest input file accepted by validation (default 1 GiB)")
    add("--submitted-seconds", type=float, default=defaults.submitted_seconds,
        help="real seconds a new job stays Submitted (default 0.05)")
    add("--validating-seconds", type=float, default=defaults.validating_seconds,
        help="minimum real seconds a job stays Validating (default 0.05)")
    add("--queue-seconds", type=float, default=defaults.queue_seconds, help="real seconds a job stays Scheduled (default 0)")
    add("--records-per-second", type=float, default=defaults.records_per_second,
        help="processing speed per job; 0 = as fast as possible (default 0)")
    add("--record-error-rate", type=float, default=defaults.record_error_rate,
        help="probability that a record comes back as an error line (default 0.0)")
    add("--record-error-codes", default=",".join(map(str, defaults.record_error_codes)),
        help="error codes drawn for failed records, e.g. 429,500 (transient) or 400 (permanent)")
    add("--throttle-rate", type=float, default=defaults.throttle_rate,
        help="probability of ThrottlingException on CreateModelInvocationJob and runtime calls (default 0.0)")
    add("--runtime-throttle-rate", type=float, default=None,
        help="separate throttle probability for InvokeModel/Converse (default: --throttle-rate)")
    add("--seed", type=int, default=defaults.seed, help="seed for every random decision (default 0)")
    add("--seconds-per-hour", type=float, default=defaults.seconds_per_hour,
        help="emulator-only: real seconds per emulated hour for job timeouts (default 3600)")
    add("--partial-output-seconds", type=float, default=defaults.partial_output_seconds,
        help="rewrite partial .out files at most this often while InProgress; 0 = off (default 1)")
    add("--embedding-engine", choices=("hash", "minilm"), default=defaults.embedding_engine,
        help="hash (fast, default) or minilm (needs the 'embeddings' extra)")
    add("--openai-base-url", default=None,
        help="forward text requests to an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    add("--openai-model", default=None, help="model name sent to that server (default: the Bedrock model id)")
    add("--data-dir", default=None,
        help="keep S3 objects and Bedrock jobs in this directory across restarts (default: memory only)")
    add("--log-level", default=defaults.log_level, help="INFO (default), DEBUG shows every HTTP request")
    return parser


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    return EmulatorConfig(
        host=args.host, port=args.port, max_concurrent_jobs=args.max_concurrent_jobs,
        min_records=args.min_records, max_records=args.max_records,
        max_input_file_bytes=args.max_input_file_bytes, submitted_seconds=args.submitted_seconds,
        validating_seconds=args.validating_seconds, queue_seconds=args.queue_seconds,
        records_per_second=args.records_per_second, record_error_rate=args.record_error_rate,
        record_error_codes=parse_error_codes(args.record_error_codes), throttle_rate=args.throttle_rate,
        runtime_throttle_rate=args.runtime_throttle_rate, seed=args.seed,
        seconds_per_hour=args.seconds_per_hour, partial_output_seconds=args.partial_output_seconds,
        embedding_engine=args.embedding_engine,
        openai_base_url=args.openai_base_url, openai_model=args.openai_model, log_level=args.log_level,
        data_dir=args.data_dir,
    )


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # werkzeug logs one line per request (method, path, status; never headers): too noisy for INFO.
    logging.getLogger("werkzeug").setLevel(logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"bedrock-assets emulator: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log_level)
    from .runner import Emulator  # after logging setup; moto import is slow

    try:
        emulator = Emulator(config)
    except (RuntimeError, OSError, ValueError) as exc:  # missing extra, port in use, bad value
        print(f"bedrock-assets emulator: {exc}", file=sys.stderr)
        return 2

    def stop(signum: int, _frame: object) -> None:
        logging.getLogger("bedrock_assets.emulator").info("signal %d: shutting down", signum)
        # shutdown() waits for serve_forever to return, so it must run off the serving thread.
        threading.Thread(target=emulator.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    print(f"bedrock-assets emulator ready on {emulator.endpoint_url} "
          f"(AWS_ENDPOINT_URL={emulator.endpoint_url})", flush=True)
    emulator.serve_forever()
    emulator.shutdown()  # idempotent: also stops the lifecycle worker before the process exits
    print("bedrock-assets emulator stopped", flush=True)
    return 0
