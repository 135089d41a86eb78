"""The Dagster UI in a real browser (Debian's headless Chromium) after the backfill: the asset
graph shows the four assets, a partition's materialization page of `joined_results` shows its
metadata, the asset's Checks tab shows each check's description (the ones defined in the code),
and that partition's run page shows its own check results (docs/ui.md sends users there).
Screenshots are kept under test-artifacts/ for a human to look at."""

from __future__ import annotations

import html
import re
import urllib.parse

from ui_support import ARTIFACTS, ASSETS, CHECKS, GOOD, ROWS, chromium, chromium_path, run_partition

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def visible_text(dom: str) -> str:
    """The rendered DOM as the text a user reads (tags, scripts and styles removed)."""
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S | re.I)
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"\s+", " ", html.unescape(text))


def page_text(binary, profile, url: str, expected: list[str], name: str, screenshot: bool = False) -> str:
    """The page's visible text once it shows everything in `expected`. The UI renders after its
    GraphQL answers arrive; on a loaded 2-core machine that can outlast one virtual-time budget,
    so retry with a longer budget before giving up. The last text (and, with `screenshot`, the
    picture taken in the same browser run) is kept in test-artifacts/ui-<name>.*."""
    png = ARTIFACTS / f"ui-{name}.png" if screenshot else None
    if png is not None:
        png.unlink(missing_ok=True)  # a picture left by an earlier session must not pass for this one
    for budget_ms in (15000, 30000, 60000):
        text = visible_text(chromium(binary, profile, url, dump_dom=True, screenshot=png, budget_ms=budget_ms))
        if all(e in text for e in expected):
            break
    (ARTIFACTS / f"ui-{name}.txt").write_text(text)
    return text


def defined_checks() -> dict[str, dict[str, str]]:
    """asset -> {check name: description}, read from the code location's definitions (what the
    webserver serves), so the test follows the code instead of repeating its strings."""
    from bedrock_assets.definitions import defs  # noqa: PLC0415 - heavy import, only this test needs it

    graph = defs.resolve_asset_graph()
    checks: dict[str, dict[str, str]] = {}
    for key in graph.asset_check_keys:
        spec = graph.get_check_spec(key)
        checks.setdefault(key.asset_key.to_user_string(), {})[key.name] = spec.description or ""
    return checks


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def assert_png(path, min_bytes: int = 20_000) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1600, 1000), (width, height)
    assert len(data) > min_bytes, f"{path} is {len(data)} bytes: a blank page?"


def test_asset_graph_and_partition_pages_in_chromium(ui_stack, backfill, tmp_path):
    binary = chromium_path()
    # What the "Skip" button of the first-visit "Join the Dagster community" dialog does; the
    # dialog would otherwise cover the graph in the screenshot.
    assert ui_stack.gql("mutation { setNuxSeen }")["setNuxSeen"] is True
    profile = tmp_path / "chromium-profile"
    base = ui_stack.base_url

    # 1. The global asset graph: all four assets, left to right.
    graph_url = f"{base}/asset-groups"
    # "4 partitions": the dynamic partitions, as the graph's asset boxes show them.
    graph = page_text(binary, profile, graph_url, ["Global asset lineage", *ASSETS, "4 partitions"], "asset-graph", screenshot=True)
    assert "Global asset lineage" in graph, graph[:2000]
    for asset in ASSETS:
        assert asset in graph, (asset, graph[:3000])
    assert "4 partitions" in graph
    assert_png(ARTIFACTS / "ui-asset-graph.png")

    # 2. One partition's materialization of joined_results, with its metadata.
    partition = GOOD[0]
    run_id = next(r["runId"] for r in backfill.data["runs"] if run_partition(r) == partition)
    page_url = f"{base}/assets/joined_results?view=events&partition={urllib.parse.quote(partition, safe='')}"
    materialized = f"Partition {partition} materialized in run {run_id[:8]}"
    metadata = [f"dagster/row_count {ROWS}", f"succeeded {ROWS}", "failed 0", "missing 0", "input_tokens", "output_tokens"]
    page = page_text(binary, profile, page_url, [materialized, *metadata], "joined-results-partition", screenshot=True)
    assert materialized in page, page[:3000]
    for expected in metadata:
        assert expected in page, (expected, page[:3000])
    assert f"s3://{ui_stack.bucket}/results/{partition}/results.parquet" in page
    assert_png(ARTIFACTS / "ui-joined-results-partition.png")

    # 3. The partition's run page ("materialized in run ..." links there): the checks passed.
    evaluations = [f"Check {c} succeeded for materialization of joined_results" for c in CHECKS["joined_results"]]
    run_page = page_text(binary, profile, f"{base}/runs/{run_id}", [run_id[:8], *evaluations], "run")
    assert f"Runs | {run_id[:8]} [SUCCESS]" in run_page, run_page[:2000]  # the page title
    for evaluation in evaluations:
        assert evaluation in run_page, (evaluation, run_page[-3000:])

    # 4. joined_results' Checks tab: every check with the description the code gives it. The tab
    # lists the checks on the left and shows one check's "About" (its description) on the right:
    # the first by name unless `checkDetail` names one (what clicking a check in the list sets).
    # Pages are dumped first and asserted after, so one failing run leaves every page's text.
    defined = defined_checks()
    checks = defined["joined_results"]
    assert set(CHECKS["joined_results"]) <= set(checks), checks
    assert all(checks.values()), f"a check of joined_results has no description: {checks}"
    tab_pages = {}
    for i, (name, description) in enumerate(sorted(checks.items())):
        url = f"{base}/assets/joined_results?view=checks&checkDetail={urllib.parse.quote(name, safe='')}"
        tab_pages[name] = page_text(
            binary, profile, url, [f"Checks ({len(checks)})", *checks, squash(description)],
            "checks" if i == 0 else f"checks-{name}", screenshot=i == 0,
        )

    # 5. The same run page filtered to check evaluations (the log filter `type:ASSET_CHECK_EVALUATION`,
    # kept in the URL): this partition's own result for every check of every asset, nothing else.
    run_evaluations = [
        f"Check {name} succeeded for materialization of {asset}" for asset, names in defined.items() for name in names
    ]
    check_metadata = [f"input_rows {ROWS}", f"result_rows {ROWS}", "missing 0", "error_rate", "threshold"]
    checks_url = f"{base}/runs/{run_id}?logs={urllib.parse.quote('type:ASSET_CHECK_EVALUATION', safe='')}"
    run_checks = page_text(binary, profile, checks_url, [run_id[:8], *run_evaluations, *check_metadata], "run-checks", screenshot=True)

    for name, description in checks.items():
        page = tab_pages[name]
        assert f"Checks ({len(checks)})" in page, page[:3000]
        for listed in checks:  # the list on the left
            assert listed in page, (listed, page[:3000])
        assert squash(description) in page, (name, description, page[:4000])
        assert "No description provided" not in page, (name, page[:4000])
    assert_png(ARTIFACTS / "ui-checks.png")

    assert f"Runs | {run_id[:8]} [SUCCESS]" in run_checks, run_checks[:2000]
    for evaluation in run_evaluations:
        assert evaluation in run_checks, (evaluation, run_checks[-4000:])
    for expected in check_metadata:
        assert expected in run_checks, (expected, run_checks[-4000:])
    # The filter took (its token sits in the filter box, not in the page's text): no other event.
    for other in ("STEP_OUTPUT", "LOADED_INPUT", "ASSET_MATERIALIZATION", "RUN_SUCCESS"):
        assert other not in run_checks, (other, run_checks[-4000:])
    assert_png(ARTIFACTS / "ui-run-checks.png")
