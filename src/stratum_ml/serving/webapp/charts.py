"""Vega-Lite specifications of the web app's charts (rendered in the browser as SVG).

Each function returns a plain dict (a Vega-Lite v5 spec with its data inline);
the page puts it in a ``<script type="application/json">`` element and
``static/app.js`` draws it with the vendored vega-embed. Every chart has a
table with the same figures next to it, for screen readers and keyboards.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
#: colours with at least 3:1 contrast against white (WCAG 2.1 non-text contrast)
RAISES = "#b3261e"
LOWERS = "#1d6b35"
NEUTRAL = "#3d4f7c"


def _base(description: str, width: int | str = "container") -> dict[str, Any]:
    return {
        "$schema": SCHEMA,
        "description": description,
        "width": width,
        "config": {"font": "system-ui, sans-serif", "axis": {"labelLimit": 320}},
    }


def waterfall(
    steps: Sequence[tuple[str, float]], base: float, final: float, labels: tuple[str, str, str]
) -> dict[str, Any]:
    """A waterfall of contributions in percentage points from ``base`` to ``final`` (both %).

    ``steps`` are (label, percentage points) in the order drawn; ``labels`` are the
    words for the base bar, the final bar and the x axis.
    """
    base_label, final_label, axis = labels
    rows: list[dict[str, Any]] = [
        {"label": base_label, "start": 0.0, "end": base, "kind": "total", "order": 0, "pp": base}
    ]
    level = base
    for i, (label, pp) in enumerate(steps, start=1):
        rows.append(
            {
                "label": label,
                "start": level,
                "end": level + pp,
                "kind": "raises" if pp >= 0 else "lowers",
                "order": i,
                "pp": pp,
            }
        )
        level += pp
    rows.append(
        {
            "label": final_label,
            "start": 0.0,
            "end": final,
            "kind": "total",
            "order": len(rows),
            "pp": final,
        }
    )
    spec = _base("waterfall of contributions to the chance")
    spec.update(
        {
            "height": {"step": 22},
            "data": {"values": rows},
            "mark": {"type": "bar"},
            "encoding": {
                "y": {
                    "field": "label",
                    "type": "nominal",
                    "sort": {"field": "order"},
                    "title": None,
                },
                "x": {"field": "start", "type": "quantitative", "title": axis},
                "x2": {"field": "end"},
                "color": {
                    "field": "kind",
                    "type": "nominal",
                    "scale": {
                        "domain": ["raises", "lowers", "total"],
                        "range": [RAISES, LOWERS, NEUTRAL],
                    },
                    "legend": None,
                },
                "tooltip": [
                    {"field": "label", "type": "nominal"},
                    {"field": "pp", "type": "quantitative", "format": "+.1f"},
                ],
            },
        }
    )
    return spec


def rank_history(points: Sequence[tuple[str, int]], axis: tuple[str, str]) -> dict[str, Any]:
    """The address's rank per run date (rank 1 on top)."""
    spec = _base("rank of the address per scoring run")
    spec.update(
        {
            "height": 160,
            "data": {"values": [{"as_of": d, "rank": r} for d, r in points]},
            "mark": {"type": "line", "point": True, "color": NEUTRAL},
            "encoding": {
                "x": {"field": "as_of", "type": "temporal", "title": axis[0]},
                "y": {
                    "field": "rank",
                    "type": "quantitative",
                    "scale": {"reverse": True, "zero": False},
                    "title": axis[1],
                },
            },
        }
    )
    return spec


def water(rows: Sequence[dict[str, Any]], axis: tuple[str, str]) -> dict[str, Any]:
    """Metered against expected water use per year (grouped bars); rows have year, what, m3."""
    spec = _base("water use per year against what the registered household would use")
    spec.update(
        {
            "height": 180,
            "data": {"values": list(rows)},
            "mark": {"type": "bar"},
            "encoding": {
                "x": {"field": "year", "type": "ordinal", "title": axis[0]},
                "xOffset": {"field": "what"},
                "y": {"field": "m3", "type": "quantitative", "title": axis[1]},
                "color": {
                    "field": "what",
                    "type": "nominal",
                    "scale": {"range": [NEUTRAL, "#8a5a00"]},
                    "title": None,
                },
            },
        }
    )
    return spec


def fairness(checks: Sequence[dict[str, Any]], axis: str) -> dict[str, Any]:
    """Each group's metric ratio to its reference group, with its interval (log scale)."""
    rows = []
    for c in checks:
        ratio = c.get("ratio")
        if not isinstance(ratio, int | float) or not math.isfinite(ratio) or ratio <= 0:
            continue
        low, high = c.get("ratio_ci_low"), c.get("ratio_ci_high")
        rows.append(
            {
                "group": f"{c.get('attribute')}: {c.get('group')} ({c.get('metric')})",
                "ratio": ratio,
                "low": low
                if isinstance(low, int | float) and math.isfinite(low) and low > 0
                else ratio,
                "high": high if isinstance(high, int | float) and math.isfinite(high) else ratio,
            }
        )
    spec = _base("fairness: each group's ratio to its reference group, with interval")
    spec.update(
        {
            "height": {"step": 20},
            "data": {"values": rows},
            "layer": [
                {
                    "mark": {"type": "rule", "color": NEUTRAL},
                    "encoding": {
                        "y": {"field": "group", "type": "nominal", "title": None},
                        "x": {
                            "field": "low",
                            "type": "quantitative",
                            "scale": {"type": "log"},
                            "title": axis,
                        },
                        "x2": {"field": "high"},
                    },
                },
                {
                    "mark": {"type": "point", "filled": True, "color": NEUTRAL},
                    "encoding": {
                        "y": {"field": "group", "type": "nominal"},
                        "x": {"field": "ratio", "type": "quantitative"},
                    },
                },
                {
                    "data": {"values": [{"one": 1}]},
                    "mark": {"type": "rule", "strokeDash": [4, 4], "color": "#555"},
                    "encoding": {"x": {"field": "one", "type": "quantitative"}},
                },
            ],
        }
    )
    return spec


def drift(features: Sequence[tuple[str, float]], axis: str) -> dict[str, Any]:
    """The population stability index per feature of the current run."""
    spec = _base("drift of the current run: population stability index per feature")
    spec.update(
        {
            "height": {"step": 18},
            "data": {"values": [{"feature": f, "psi": p} for f, p in features]},
            "mark": {"type": "bar", "color": NEUTRAL},
            "encoding": {
                "y": {"field": "feature", "type": "nominal", "sort": "-x", "title": None},
                "x": {"field": "psi", "type": "quantitative", "title": axis},
            },
        }
    )
    return spec


#: the map's band colours, light to dark; the suppressed band is grey (not a number)
MAP_COLOURS = ("#f2f2f2", "#bdbdbd", "#c6dbef", "#6baed6", "#2171b5", "#08306b")


def area_map(
    features: Sequence[dict[str, Any]],
    projection: dict[str, Any],
    bands: Sequence[str],
    legend: str,
) -> dict[str, Any]:
    """Neighbourhood shapes (GeoJSON Features, ``properties.band``) coloured by band.

    ``projection`` is a Vega projection: ``identity`` with ``reflectY`` draws RD New
    coordinates as they are; the shapes are fitted to the chart.
    """
    spec = _base("map of listed addresses per neighbourhood")
    spec.update(
        {
            "height": 520,
            "data": {
                "values": {"type": "FeatureCollection", "features": list(features)},
                "format": {"type": "json", "property": "features"},
            },
            "projection": projection,
            "mark": {"type": "geoshape", "stroke": "#ffffff", "strokeWidth": 0.8},
            "encoding": {
                "color": {
                    "field": "properties.band",
                    "type": "ordinal",
                    "title": legend,
                    "scale": {"domain": list(bands), "range": list(MAP_COLOURS)},
                },
            },
        }
    )
    return spec


def district_trends(points: Sequence[dict[str, Any]], axis: tuple[str, str, str]) -> dict[str, Any]:
    """Listed addresses per district (``district``) per run (``as_of``), one line each."""
    x, y, colour = axis
    spec = _base("listed addresses per district over runs")
    spec.update(
        {
            "height": 260,
            "data": {"values": list(points)},
            "mark": {"type": "line", "point": True},
            "encoding": {
                "x": {"field": "as_of", "type": "ordinal", "title": x},
                "y": {"field": "count", "type": "quantitative", "title": y},
                "color": {"field": "district", "type": "nominal", "title": colour},
            },
        }
    )
    return spec


def score_distribution(
    points: Sequence[dict[str, Any]], axis: tuple[str, str, str]
) -> dict[str, Any]:
    """Dwellings per chance band (``band``, % lower bound) per run (``as_of``)."""
    x, y, colour = axis
    spec = _base("distribution of the chance over runs")
    spec.update(
        {
            "height": 260,
            "data": {"values": list(points)},
            "mark": {"type": "line", "point": True},
            "encoding": {
                "x": {"field": "band", "type": "quantitative", "title": x},
                "y": {
                    "field": "count",
                    "type": "quantitative",
                    "title": y,
                    "scale": {"type": "symlog"},
                },
                "color": {"field": "as_of", "type": "ordinal", "title": colour},
            },
        }
    )
    return spec


#: colours of the kinds of link (>= 3:1 against white), in the order kinds are met
LINK_COLOURS = ("#0b4f9c", "#b3261e", "#1d6b35", "#6a3d9a", "#8a5a00", "#3d4f7c", "#7a2e5c")
#: dash patterns of the kinds of link, so that colour is not the only cue
LINK_DASHES = ([1, 0], [6, 3], [2, 2], [8, 2, 2, 2], [4, 4], [1, 3], [10, 4])
#: the network's drawing area: y from -1.25 to 1.25, x wider for the labels (same scale)
NETWORK_HEIGHT = 400
NETWORK_WIDTH = 640


def network_layout(n: int) -> list[tuple[float, float]]:
    """Where ``n`` linked nodes go around the centre: a circle of radius 1, from the top,
    clockwise, evenly spaced (deterministic: the same dossier draws the same picture)."""
    return [
        (
            round(math.sin(2 * math.pi * i / n), 6),
            round(math.cos(2 * math.pi * i / n), 6),
        )
        for i in range(n)
    ]


def network(
    centre: dict[str, str],
    linked: Sequence[dict[str, str]],
    legend: str,
) -> dict[str, Any]:
    """An address and its linked addresses as a small network (a radial layout).

    ``centre`` has ``label`` and ``href``; each of ``linked`` has ``label``, ``href``
    and ``kind`` (the kind of link in words, e.g. "bewoner" or "bewoner + eigenaar"),
    in the order they are drawn. The centre sits in the middle, the linked addresses
    on a circle around it; each edge is coloured and dashed by its kind (with a
    legend titled ``legend``); every node links to its address's dossier.
    """
    kinds = list(dict.fromkeys(node["kind"] for node in linked))
    places = network_layout(len(linked))
    nodes = [{**centre, "x": 0.0, "y": 0.0, "size": 420, "side": "centre", "kind": ""}]
    edges = []
    for node, (x, y) in zip(linked, places, strict=True):
        side = "right" if x > 1e-6 else "left" if x < -1e-6 else "middle"
        nodes.append({**node, "x": x, "y": y, "size": 200, "side": side})
        edges.append({"x": 0.0, "y": 0.0, "x2": x, "y2": y, "kind": node["kind"]})
    half = 1.25 * NETWORK_WIDTH / NETWORK_HEIGHT
    across: dict[str, Any] = {"type": "quantitative", "scale": {"domain": [-half, half]}}
    down: dict[str, Any] = {"type": "quantitative", "scale": {"domain": [-1.25, 1.25]}}
    across["axis"] = down["axis"] = None
    colours = list(LINK_COLOURS[: len(kinds)])
    dashes = [LINK_DASHES[i % len(LINK_DASHES)] for i in range(len(kinds))]

    def labels(side: str, align: str, dx: int, dy: int) -> dict[str, Any]:
        return {
            "data": {"values": [n for n in nodes if n["side"] == side]},
            "mark": {"type": "text", "align": align, "dx": dx, "dy": dy, "fontSize": 12},
            "encoding": {
                "x": {"field": "x", **across},
                "y": {"field": "y", **down},
                "text": {"field": "label"},
                "color": {"value": "#1a1a1a"},
            },
        }

    spec = _base("network of an address and the addresses linked to it", NETWORK_WIDTH)
    spec.update(
        {
            "height": NETWORK_HEIGHT,
            "view": {"stroke": None},
            "layer": [
                {
                    "data": {"values": edges},
                    "mark": {"type": "rule", "strokeWidth": 2},
                    "encoding": {
                        "x": {"field": "x", **across},
                        "y": {"field": "y", **down},
                        "x2": {"field": "x2"},
                        "y2": {"field": "y2"},
                        "color": {
                            "field": "kind",
                            "type": "nominal",
                            "scale": {"domain": kinds, "range": colours},
                            "legend": {"title": legend, "orient": "bottom"},
                        },
                        "strokeDash": {
                            "field": "kind",
                            "type": "nominal",
                            "scale": {"domain": kinds, "range": dashes},
                            "legend": None,
                        },
                    },
                },
                {
                    "data": {"values": nodes},
                    "mark": {
                        "type": "point",
                        "filled": True,
                        "stroke": "#ffffff",
                        "strokeWidth": 1.5,
                        "opacity": 1,
                        "cursor": "pointer",
                    },
                    "encoding": {
                        "x": {"field": "x", **across},
                        "y": {"field": "y", **down},
                        "size": {"field": "size", "type": "quantitative", "scale": None},
                        "color": {
                            "condition": {"test": "datum.side === 'centre'", "value": RAISES},
                            "value": NEUTRAL,
                        },
                        "href": {"field": "href"},
                        "tooltip": [{"field": "label"}, {"field": "kind"}],
                    },
                },
                labels("right", "left", 10, 0),
                labels("left", "right", -10, 0),
                labels("middle", "center", 0, -14),
                labels("centre", "center", 0, 24),
            ],
        }
    )
    return spec
