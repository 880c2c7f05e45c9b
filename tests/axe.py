"""axe-core in the browser tests: inject the npm-installed file, run it, count violations by impact.

scripts/setup.sh installs axe-core (pinned in package.json) into node_modules/; it is never copied into the repo.
Each run's counts are written to test-artifacts/axe-<name>.json, so the figures in a report can be re-read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
AXE_JS = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = REPO_ROOT / "test-artifacts"
IMPACTS = ("minor", "moderate", "serious", "critical")


def axe_run(page: Any, name: str) -> dict[str, Any]:  # noqa: ANN401 - a Playwright Page
    """Run axe on the page as it is now; return counts by impact and the violations themselves."""
    assert AXE_JS.is_file(), f"{AXE_JS} is missing: run scripts/setup.sh (npm ci) first"
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate(
        "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
        " return r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.length,"
        " targets: v.nodes.slice(0, 3).map(n => n.target.join(' ')), help: v.help})); }"
    )
    counts = {impact: sum(1 for v in result if v["impact"] == impact) for impact in IMPACTS}
    report = {"page": name, "url": page.url, "counts": counts, "violations": result}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"axe-{name}.json").write_text(json.dumps(report, indent=2))
    return report


def assert_no_serious_violations(page: Any, name: str) -> dict[str, int]:  # noqa: ANN401
    report = axe_run(page, name)
    serious = [v for v in report["violations"] if v["impact"] in ("serious", "critical")]
    assert not serious, f"axe on {name}: {json.dumps(serious, indent=1)}"
    return report["counts"]


def assert_no_horizontal_overflow(page: Any) -> None:  # noqa: ANN401
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.evaluate("window.innerWidth")
    assert width <= viewport, f"page is {width}px wide in a {viewport}px viewport"
