"""`bedrock-assets` console command: run | add | emulator | demo | ledger | smoke."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = (
        "usage: bedrock-assets {run,add,emulator,demo,ledger,smoke} ...  (bedrock-assets <command> --help)\n"
        "  run <batch> <file | s3 uri | hf split> [--specs FILE] [--out PATH] [--emulator]   input -> answers in one command\n"
        "  add <batch> <file | s3 uri | hf split>   stage an input and register its partition (the UI or sensor runs it)\n"
        "  emulator   local S3 + Bedrock batch emulator      demo   every sample through the emulator\n"
        "  ledger {list,compact}   the answer ledger\n"
        "  smoke [--model M] [--yes] [--report PATH]   check the emulator's assumptions with one 100-record job on your AWS account (under a cent; asks first)"
    )
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "emulator":
        from bedrock_assets.emulator.cli import main as emulator_main

        return emulator_main(rest) or 0
    if command == "run":
        from bedrock_assets.run_cli import main as run_main

        return run_main(rest) or 0
    if command == "add":
        from bedrock_assets.add import main as add_main

        return add_main(rest) or 0
    if command == "demo":
        from bedrock_assets.demo import main as demo_main

        return demo_main(rest) or 0
    if command == "ledger":
        from bedrock_assets.ledger_cli import main as ledger_main

        return ledger_main(rest) or 0
    if command == "smoke":
        from bedrock_assets.smoke import main as smoke_main

        return smoke_main(rest) or 0
    print(f"unknown command {command!r}\n{usage}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
