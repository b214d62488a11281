"""Vega-Lite specifications for the pages' charts, rendered offline to inline SVG.

Axis text and lines are drawn in `currentColor`, so one SVG follows the page's light or dark
colours (and black ink when printed). What a mark shows on hover is its row's ready-made
`hover` text (money through cli/render.money), never a number Vega formats on its own.
"""

from __future__ import annotations

import re
from typing import Any

WIDTH = 520  # a chart in one column of the report
WIDE = 880  # a chart across the page
ROW = 22  # px per bar of a horizontal chart
# Tableau 10: distinguishable on white and on near-black.
PALETTE = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2", "#ff9da6",
           "#9d755d", "#bab0ac"]
STATUS_COLOURS = {"success": "#54a24b", "failed": "#e45756", "crashed": "#b279a2", "budget_exceeded": "#f58518",
                  "running": "#4c78a8"}
MONEY_AXIS = {"format": "$,.4~g"}  # axis ticks only: $0.5, $12, $0.0003
COUNT_AXIS = {"format": ",d", "tickMinStep": 1}
MS_AXIS = {"format": ",.0f"}
TOKEN_AXIS = {"format": "~s"}

CONFIG = {
    # Arial's metrics (Helvetica and Liberation Sans share them): the text is measured when the
    # SVG is drawn and shown in whichever of them the reader has, so labels fit the space left.
    "font": "Arial, Helvetica, 'Liberation Sans', sans-serif",
    "axis": {"labelColor": "currentColor", "titleColor": "currentColor", "domainColor": "currentColor",
             "tickColor": "currentColor", "gridColor": "currentColor", "gridOpacity": 0.15,
             "titleFontWeight": "normal", "labelFontSize": 12, "titleFontSize": 12, "labelLimit": 200},
    "legend": {"labelColor": "currentColor", "titleColor": "currentColor", "orient": "bottom",
               "labelLimit": 260, "titleFontWeight": "normal", "symbolType": "square", "labelFontSize": 12,
               "columns": 3},
    "view": {"stroke": None},
    "range": {"category": PALETTE},
}


def svg(spec: dict[str, Any]) -> str:
    """The chart as an <svg> element to inline in HTML (text in it is escaped by Vega)."""
    import vl_convert

    drawn = vl_convert.vegalite_to_svg({"background": None, **spec, "config": CONFIG})
    # Inline SVG in HTML needs no namespace declarations: leave no address in the page.
    return re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", drawn, count=2)


OUTCOME_SCALE = {"domain": ["workflow", "planner", "retried", "failed"],
                 "range": [STATUS_COLOURS["success"], PALETTE[0], PALETTE[1], STATUS_COLOURS["failed"]]}
HOVER = {"description": {"field": "hover"}}  # a mark's hover text (page.SCRIPT): the row's "hover"
LABEL = {"type": "text", "align": "left", "dx": 4, "fill": "currentColor", "fontSize": 11, "aria": False}


def stacked_days(rows: list[dict[str, Any]], value: str, series: str, title: str, axis: dict[str, Any],
                 unit: str = "day", colours: dict[str, str] | None = None) -> dict:
    """Bars per UTC day (`day`: YYYY-MM-DD; the first of the month when `unit` is "month") of
    `value`, stacked by `series`."""
    colour: dict[str, Any] = {"field": series, "type": "nominal", "title": None}
    if colours:
        colour["scale"] = {"domain": list(colours), "range": list(colours.values())}
    return {
        "width": WIDTH, "height": 220,
        "data": {"values": rows},
        "mark": {"type": "bar", "width": {"band": 0.8}},
        "encoding": {
            "x": {"field": "day", "type": "temporal", "title": f"{unit} (UTC)",
                  "timeUnit": "utcyearmonthdate" if unit == "day" else "utcyearmonth",
                  "axis": {"format": "%b %d" if unit == "day" else "%b %Y", "labelAngle": -40, "labelFontSize": 11}},
            "y": {"field": value, "type": "quantitative", "title": title, "axis": axis},
            "color": colour,
            "order": {"field": series},
            **HOVER,
        },
    }


def ranked_bars(rows: list[dict[str, Any]], value: str, label: str, text: str, title: str, axis: dict[str, Any],
                colour: str = PALETTE[0]) -> dict:
    """Horizontal bars of `value` per `label`, in the rows' order (largest first), each with
    its `text` beside it."""
    return {
        "width": WIDTH - 240, "height": {"step": ROW},
        "padding": {"left": 5, "top": 5, "bottom": 5, "right": 80},  # room for the figure beside the longest bar
        "data": {"values": rows},
        "layer": [
            {"mark": {"type": "bar", "color": colour}, "encoding": HOVER},
            {"mark": LABEL, "encoding": {"text": {"field": text}}},
        ],
        "encoding": {
            "y": {"field": label, "type": "nominal", "sort": None, "title": None},
            "x": {"field": value, "type": "quantitative", "title": title, "axis": axis},
        },
    }


def waterfall(spans: list[dict[str, Any]], calls: list[dict[str, Any]], rows: list[str]) -> dict:
    """A trace view: one bar per node execution on a time axis (ms since the run started),
    coloured by its phase or how it went (`outcome`), with its retries and batch items written
    beside it (`badge`), and each LLM call as a diamond at its start (`at`) on its node's row."""
    y = {"field": "row", "type": "ordinal", "sort": rows, "title": None,
         "scale": {"domain": rows}, "axis": {"labelLimit": 260}}
    layers: list[dict[str, Any]] = [
        {"data": {"values": spans},
         "mark": {"type": "bar", "height": {"band": 0.7}, "cornerRadius": 2},
         "encoding": {
             "y": y,
             "x": {"field": "start", "type": "quantitative", "title": "ms since the run started"},
             "x2": {"field": "end"},
             "color": {"field": "outcome", "type": "nominal", "title": None, "scale": OUTCOME_SCALE},
             **HOVER,
         }},
        {"data": {"values": spans},
         "mark": LABEL,
         "encoding": {"y": y, "x": {"field": "end", "type": "quantitative"}, "text": {"field": "badge"}}},
    ]
    if calls:
        layers.append(
            {"data": {"values": calls},
             "mark": {"type": "point", "shape": "diamond", "filled": True, "size": 90,
                      "color": PALETTE[5], "stroke": "currentColor", "strokeWidth": 0.7},
             "encoding": {"y": y, "x": {"field": "at", "type": "quantitative"}, **HOVER}})
    return {"width": WIDE, "height": {"step": ROW}, "layer": layers,
            "resolve": {"scale": {"x": "shared", "y": "shared"}}}
