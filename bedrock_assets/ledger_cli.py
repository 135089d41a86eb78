"""`bedrock-assets ledger {list,compact}`: look at and compact the answer ledger (docs/ledger.md)."""

from __future__ import annotations

import argparse

from bedrock_assets import ledger, settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bedrock-assets ledger", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="each model folder with its number of ledger files")
    compact = sub.add_parser("compact", help="merge a model folder's files into fewer (no answer changes)")
    compact.add_argument("model_folder", nargs="?", help="a folder under answers/ (default: every one)")
    compact.add_argument("--rows-per-file", type=int, default=1_000_000)
    args = parser.parse_args(argv)

    from bedrock_assets import cli_env  # noqa: PLC0415

    def body() -> int:
        # Region, credentials and bucket checked first: a mistake is one line, not a traceback.
        target = cli_env.prepare_aws()
        s3, bucket = target.s3, target.bucket
        folders: dict[str, int] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=ledger.ANSWERS_PREFIX):
            for obj in page.get("Contents", []):
                folder = obj["Key"][len(ledger.ANSWERS_PREFIX):].split("/", 1)[0]
                folders[folder] = folders.get(folder, 0) + 1
        if args.command == "list":
            for folder, files in sorted(folders.items()):
                print(f"{folder}\t{files} file(s)")
            return 0
        targets = [args.model_folder] if args.model_folder else sorted(folders)
        for folder in targets:
            ledger.compact(s3, bucket, folder, target_rows=args.rows_per_file, storage_options=settings.polars_storage_options())
        return 0

    return cli_env.run_main(body)
