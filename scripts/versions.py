"""Print the installed versions of the packages that matter most, and fail if any installed
package differs from the lock (constraints.txt): `make test` then says what it tested with.

    python scripts/versions.py constraints.txt
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

SHOWN = ("dagster", "dagster-aws", "boto3", "polars", "pyarrow", "datasets", "moto", "pydantic", "xxhash")


def main(lock_path: str) -> int:
    locked: dict[str, str] = {}
    for line in Path(lock_path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            locked[canonicalize_name(req.name)] = str(req.specifier).removeprefix("==")
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    drift = [f"{name} {installed[name]} (lock: {want})" for name, want in sorted(locked.items())
             if name in installed and installed[name] != want]
    shown = ", ".join(f"{n} {installed.get(n, '-')}" for n in SHOWN)
    print(f"versions (lock {lock_path}, Python {sys.version.split()[0]}): {shown}")
    if drift:
        print("installed versions differ from the lock: " + "; ".join(drift), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "constraints.txt"))
