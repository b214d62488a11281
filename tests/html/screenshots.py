"""Render docs/screenshots/ from the seeded scenes: `python -m tests.html.screenshots [DIR]`.

A month of a busy ledger (and the month before, for the changes), and one real traced run,
each opened in headless Chromium as the tests open them. Costs use examples/pricing.toml's
illustrative rates for the `echo` model.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as home:
        os.environ.update(PFLOW_HOME=home, PFLOW_PRICING=str(ROOT / "examples" / "pricing.toml"))
        import llm

        from pflow_metrics.ledger.store import Ledger
        from tests.html.scenes import busy_month, look, traced_run

        db = str(Path(home) / "metrics.db")
        now = datetime.now(UTC)
        with Ledger.open(db) as ledger:
            ledger.finish_runs(busy_month(now))
            ledger.finish_runs(busy_month(now - timedelta(days=30), seed=16))
        llm.get_model("echo")  # load llm's plugins before the run, as a long-lived process has
        run_db = str(Path(home) / "traced.db")
        run_id = traced_run(run_db)

        def page(name: str, ledger: str, *command: str) -> Path:
            path = Path(home) / name
            subprocess.run([sys.executable, "-m", "pflow_metrics", "--db", ledger, *command, "--format", "html",
                            "-o", str(path)], check=True)
            return path

        report = page("report.html", db, "report", "--since", "30d")
        run = page("run.html", run_db, "runs", "show", run_id)
        for seen in (look(report, out / "report.png", height=1500),
                     look(report, out / "report-dark.png", dark=True, height=1500),
                     look(run, out / "run.png")):
            problems = seen.console_errors + seen.failed_requests + seen.dialogs + seen.empty_charts
            if problems:
                raise SystemExit(f"screenshots: the page showed problems: {problems}")
    print(f"screenshots written to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots")
