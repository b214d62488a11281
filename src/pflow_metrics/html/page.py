"""The frame both pages share: one HTML document with its style, its data and its one small
script inline, and the escaping every piece of text goes through.

Text from the ledger is anyone's: a workflow named `<script>alert(1)</script>` is shown as
those characters. Every text reaches the page through `text()` (control characters shown
escaped, as in the terminal, then HTML-escaped); the embedded JSON has `<`, `>` and `&`
written as \\u escapes, so no value can close its <script> element.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from pflow_metrics.cli.render import clean

STYLE = """
:root { color-scheme: light dark; --bg: #ffffff; --fg: #1f2328; --muted: #59636e; --line: #d1d9e0;
  --card: #f6f8fa; --warn-bg: #fff8c5; --warn-fg: #4d2d00; --bad: #cf222e; --good: #1a7f37; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --line: #3d444d; --card: #151b23;
    --warn-bg: #3b2e00; --warn-fg: #f2cc60; --bad: #ff7b72; --good: #3fb950; }
}
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1180px; padding: 24px 28px 48px; background: var(--bg); color: var(--fg);
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 22px; margin: 0 0 4px; overflow-wrap: anywhere; }
h2 { font-size: 16px; margin: 28px 0 8px; }
.sub { color: var(--muted); margin: 0 0 18px; overflow-wrap: anywhere; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: 10px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 8px 10px; }
.card .label { color: var(--muted); font-size: 12px; }
.card .value { font-size: 18px; font-weight: 600; font-variant-numeric: tabular-nums; overflow-wrap: break-word; }
.card .change { font-size: 12px; color: var(--muted); }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 8px 28px; }
section { min-width: 0; }
figure.chart { margin: 0; }
figure.chart svg { display: block; height: auto; max-width: 100%; }
.warn { background: var(--warn-bg); color: var(--warn-fg); border-radius: 8px; padding: 10px 14px; margin: 16px 0;
  overflow-wrap: anywhere; }
.bad { color: var(--bad); } .good { color: var(--good); }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; margin: 6px 0 10px; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { color: var(--muted); font-weight: 500; font-size: 12px; }
td { overflow-wrap: anywhere; }
.num { text-align: right; white-space: nowrap; }
.note { color: var(--muted); font-size: 12px; }
footer { color: var(--muted); font-size: 12px; margin-top: 32px; }
@page { margin: 14mm; }
@media print {
  :root { --bg: #ffffff; --fg: #000000; --muted: #444444; --line: #bbbbbb; --card: #ffffff;
    --warn-bg: #ffffff; --warn-fg: #000000; --bad: #000000; --good: #000000; }
  body { max-width: none; padding: 0; font-size: 11px; }
  .grid { grid-template-columns: 1fr 1fr; }
  section, figure, .card, tr { break-inside: avoid; }
  .warn { border: 1px solid #000000; }
}
"""

# Hover text for every mark: Vega writes what a mark shows into its aria-label; a <title> child
# is what browsers show on hover. textContent keeps it text.
SCRIPT = """
for (const mark of document.querySelectorAll('svg [aria-label][role="graphics-symbol"]')) {
  const title = document.createElementNS(mark.namespaceURI, 'title');
  title.textContent = mark.getAttribute('aria-label');
  mark.prepend(title);
}
"""


def text(value: Any, limit: int | None = 200) -> str:
    """Any text for the page: control characters shown escaped, cut to `limit`, HTML-escaped."""
    return html.escape(clean(value, limit=limit), quote=True)


def labels(names: Iterable[str], limit: int = 60) -> list[str]:
    """Chart labels: printable, short, and still one per name (two long names that start
    alike, or a node that ran twice, would otherwise share a bar): "fetch", "fetch #2"."""
    seen: dict[str, int] = {}
    shown = []
    for name in names:
        label = clean(name, limit)
        seen[label] = seen.get(label, 0) + 1
        shown.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return shown


def script_json(data_text: str) -> str:
    """JSON text safe inside <script>: `<`, `>` and `&` only occur in its strings, where the
    \\u escape means the same character."""
    return data_text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def table(headers: Iterable[str], rows: Iterable[Iterable[Any]], numeric: Iterable[int] = ()) -> str:
    """An HTML table; cells are escaped text (numbers right-aligned by column index)."""
    numeric = set(numeric)

    def cell(tag: str, index: int, value: Any) -> str:
        attribute = ' class="num"' if index in numeric else ""
        return f"<{tag}{attribute}>{text(value)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def chart(title: str, svg: str, note: str = "") -> str:
    """A chart section: its heading, the inline SVG, an optional note below."""
    below = f'<p class="note">{text(note, None)}</p>' if note else ""
    return f'<section><h2>{text(title)}</h2><figure class="chart">{svg}</figure>{below}</section>'


def card(label: str, value: str, change: str = "") -> str:
    below = f'<div class="change">{text(change)}</div>' if change else ""
    return (f'<div class="card"><div class="label">{text(label)}</div>'
            f'<div class="value">{text(value)}</div>{below}</div>')


def document(title: str, body: str, data_json: str, data_id: str) -> str:
    """The whole page. `data_json` is the page's data (money.dumps text), embedded as
    <script type="application/json" id="`data_id`"> for scripts and tests to read back."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f"<title>{text(title)}</title><style>{STYLE}</style></head>\n"
        f"<body>{body}\n"
        f'<script type="application/json" id="{data_id}">{script_json(data_json)}</script>\n'
        f"<script>{SCRIPT}</script></body></html>\n"
    )

