#!/usr/bin/env python
"""Summarize bench/run.sh: median wall time, rows/s, peak RSS per step; ours vs baseline ratios."""

from __future__ import annotations

import glob
import json
import os
import re
import statistics
import sys


def parse_time(path: str) -> dict:
    txt = open(path).read()
    parts = [float(x) for x in re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", txt).group(1).split(":")]
    wall = sum(p * 60**i for i, p in enumerate(reversed(parts)))
    return {
        "wall_s": wall,
        "user_s": float(re.search(r"User time \(seconds\): (\S+)", txt).group(1)),
        "sys_s": float(re.search(r"System time \(seconds\): (\S+)", txt).group(1)),
        "peak_rss_mib": int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", txt).group(1)) / 1024,
    }


def parse_result(path: str) -> dict:
    for line in open(path):
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {}


def main() -> None:
    d, rows = sys.argv[1], int(sys.argv[2])
    runs = sorted(glob.glob(os.path.join(d, "run*")))
    # ours_shards = jsonl_shards, the "pre-processing"; ours_raw = raw_dataset (reading the
    # input and assigning ids, which the baseline's pre also does); ours_pre = both, end to end.
    steps = ["base_pre", "ours_shards", "ours_raw", "ours_pre", "base_post", "ours_post"]
    per: dict[str, list[dict]] = {s: [] for s in steps}

    def load(r: str, s: str) -> dict | None:
        tp = os.path.join(r, s + ".time")
        if not os.path.exists(tp):
            return None
        m = parse_time(tp)
        res = parse_result(os.path.join(r, s + ".out"))
        m["phase_s"] = res.get("seconds")
        m["steps_s"] = res.get("steps_s")
        return m

    for r in runs:
        for s in steps:
            m = load(r, s)
            if m is None and s == "ours_pre":
                # raw_dataset and jsonl_shards run as two processes (two Dagster steps):
                # times add up, the phase's peak memory is the larger of the two.
                raw, shards = load(r, "ours_raw"), load(r, "ours_shards")
                if raw and shards:
                    m = {k: raw[k] + shards[k] for k in ("wall_s", "user_s", "sys_s", "phase_s")}
                    m["peak_rss_mib"] = max(raw["peak_rss_mib"], shards["peak_rss_mib"])
                    m["steps_s"] = {**raw["steps_s"], **shards["steps_s"],
                                    "raw_rss_mib": raw["peak_rss_mib"], "shards_rss_mib": shards["peak_rss_mib"]}
            if m is not None:
                per[s].append(m)
    med = {}
    for s, ms in per.items():
        if not ms:
            continue
        wall = statistics.median(m["wall_s"] for m in ms)
        med[s] = {
            "runs": len(ms),
            "wall_s": round(wall, 2),
            "wall_range": [round(min(m["wall_s"] for m in ms), 2), round(max(m["wall_s"] for m in ms), 2)],
            "rows_per_s_wall": round(rows / wall),
            "phase_s": round(statistics.median(m["phase_s"] for m in ms if m["phase_s"]), 2) if any(m["phase_s"] for m in ms) else None,
            "cpu_s": round(statistics.median(m["user_s"] + m["sys_s"] for m in ms), 2),
            "peak_rss_mib": round(statistics.median(m["peak_rss_mib"] for m in ms)),
            "steps_s": {k: round(statistics.median(m["steps_s"][k] for m in ms if m["steps_s"]), 2) for k in (ms[0]["steps_s"] or {})},
        }
    ratios = {}
    for phase, base, ours in (("pre (jsonl_shards)", "base_pre", "ours_shards"),
                              ("pre incl. raw_dataset", "base_pre", "ours_pre"),
                              ("post (joined_results)", "base_post", "ours_post")):
        b, o = med.get(base), med.get(ours)
        if b and o:
            ratios[phase] = {
                "speedup_rows_per_s": round(o["rows_per_s_wall"] / b["rows_per_s_wall"], 1),
                "rss_fraction": round(o["peak_rss_mib"] / b["peak_rss_mib"], 2),
                "cpu_fraction": round(o["cpu_s"] / b["cpu_s"], 3),
            }
    out = {"rows": rows, "runs": len(runs), "median": med, "ratios": ratios}
    json.dump(out, open(os.path.join(d, "summary.json"), "w"), indent=1)
    print(f"| step | wall s (median) [range] | rows/s | CPU s | peak RSS MiB |")
    print("|---|---|---|---|---|")
    for s, m in med.items():
        print(f"| {s} | {m['wall_s']} {m['wall_range']} | {m['rows_per_s_wall']:,} | {m['cpu_s']} | {m['peak_rss_mib']} |")
    for phase, r in ratios.items():
        print(f"{phase}: ours/baseline rows/s = {r['speedup_rows_per_s']}x, RSS = {r['rss_fraction']} of baseline, CPU = {r['cpu_fraction']} of baseline")


if __name__ == "__main__":
    main()
