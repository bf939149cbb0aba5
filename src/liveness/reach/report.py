"""The reach report: one self-contained HTML file of connectivity events.

Sections: a summary; event timelines (per-VP reachability of a block over time, as in the
appendix figures of "Reasoning About Internet Connectivity": one row per VP, green up, red down,
grey unknown, the event shaded); event tables per kind; the per-VP summary; the DNSmon grouped
bars (loss per letter and af: all probes, without islands, without islands and peninsulas); and
an RIR table when given. Figures are PNG embedded as base64, so the file stands alone.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from liveness.output.html import figure_png, html_table, page_start, png_img
from liveness.reach.detect import EVENT_KINDS, CodedObservations, Detection, coded_observations
from liveness.reach.dnsmon import VIEWS

__all__ = ["dnsmon_figure", "render_report", "timeline_figure"]

_STATUS_COLOURS = {0: "#d62728", 1: "#2ca02c", 2: "#bbbbbb"}  # down, up, unknown
_VIEW_LABELS = {
    "all": "all VPs",
    "no_islands": "without islands",
    "no_islands_peninsulas": "without islands and peninsulas",
}
_ROW_LIMIT = 50


def _png(figure: Any) -> str:
    """A matplotlib figure as an <img> tag with embedded PNG."""
    return png_img(figure_png(figure, dpi=90))


def _when(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M")


def timeline_figure(
    obs: pa.Table | CodedObservations,
    target: str,
    start: int,
    end: int,
    margin: int | None = None,
) -> Any:
    """Per-VP status of ``target`` around ``[start, end)``: one bar row per VP (a figure)."""
    coded = obs if isinstance(obs, CodedObservations) else coded_observations(obs)
    code = pc.index(coded.target_names, pa.scalar(target, pa.string())).as_py()
    margin = max(end - start, 3600) if margin is None else margin
    lo, hi = start - margin, end + margin
    if len(coded.t0):  # no wider than the data: a short run is not a sliver in two hours
        lo, hi = max(lo, min(start, int(coded.t0.min()))), min(hi, max(end, int(coded.t1.max())))
    span = hi - lo
    unit, unit_name = (
        (3600, "hours") if span >= 7200 else (60, "minutes") if span >= 120 else (1, "seconds")
    )
    figure, axes = plt.subplots(figsize=(10, 0.45 * max(len(coded.vp_names), 2) + 1.2))
    if code is not None and code >= 0:
        rows = (coded.target == code) & (coded.t1 > lo) & (coded.t0 < hi)
        vps = sorted(set(coded.vp[rows].tolist()), key=lambda v: coded.vp_names[v])
        for y, vp in enumerate(vps):
            mine = rows & (coded.vp == vp)
            for status, colour in _STATUS_COLOURS.items():
                sel = mine & (coded.status == status)
                t0 = np.maximum(coded.t0[sel], lo)
                t1 = np.minimum(coded.t1[sel], hi)
                spans = [((a - lo) / unit, (b - a) / unit) for a, b in zip(t0, t1, strict=True)]
                axes.broken_barh(spans, (y - 0.4, 0.8), facecolors=colour)
        axes.set_yticks(range(len(vps)), [coded.vp_names[v] for v in vps])
    axes.axvspan((start - lo) / unit, (end - lo) / unit, color="#1f77b4", alpha=0.15)
    axes.set_xlim(0, max(hi - lo, 1) / unit)
    axes.set_xlabel(f"{unit_name} since {_when(lo)} UTC")
    axes.set_title(f"{target}: per-VP reachability (green up, red down, grey unknown)")
    return figure


def dnsmon_figure(loss: pa.Table) -> Any:
    """Grouped bars: loss per letter and af, one bar per view."""
    rows = loss.to_pylist()
    labels = [f"{r['target'].split('.')[0].upper()}{'' if r['af'] == 4 else '6'}" for r in rows]
    figure, axes = plt.subplots(figsize=(max(6, 0.6 * len(rows) + 2), 3.5))
    x = np.arange(len(rows))
    width = 0.8 / len(VIEWS)
    for i, view in enumerate(VIEWS):
        values = [100 * (r[f"loss_{view}"] or 0.0) for r in rows]
        axes.bar(x + (i - 1) * width, values, width, label=_VIEW_LABELS[view])
    axes.set_xticks(x, labels)
    axes.set_ylabel("query loss (%)")
    axes.set_title("DNS root query loss per letter (6: IPv6)")
    axes.legend()
    return figure


def _longest(events: pa.Table, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` longest events as dictionaries."""
    if events.num_rows == 0 or limit <= 0:
        return []
    order = pc.sort_indices(events.column("duration"), sort_keys=[("", "descending")])
    return events.take(order[:limit]).to_pylist()


def _table(
    rows: list[dict[str, Any]], columns: list[str], limit: int = _ROW_LIMIT, total: int = 0
) -> str:
    if not rows:
        return '<p class="muted">none</p>'

    def cell(value: Any, column: str) -> str:
        if column in ("start", "end") and isinstance(value, int):
            return _when(value)
        if isinstance(value, list):
            return ", ".join(map(str, value)) or "-"
        if isinstance(value, float):
            return "-" if math.isnan(value) else f"{value:.3f}"
        return str(value)

    table = html_table(columns, [[cell(r.get(c), c) for c in columns] for r in rows[:limit]])
    hidden = max(total, len(rows)) - min(limit, len(rows))
    more = f'<p class="muted">{hidden} more not shown</p>' if hidden > 0 else ""
    return table + more


def render_report(
    obs: pa.Table,
    found: Detection,
    *,
    dnsmon: pa.Table | None = None,
    rir: pa.Table | None = None,
    title: str = "liveness reach report",
    timelines: int = 6,
) -> str:
    """The report as one HTML string."""
    events = found.events
    parts = [
        page_start(title),
    ]
    if obs.num_rows:
        t0 = int(np.min(obs.column("t0").to_numpy()))
        t1 = int(np.max(obs.column("t1").to_numpy()))
        span = f"{_when(t0)} to {_when(t1)} UTC"
    else:
        span = "no observations"
    kinds = events.column("kind").cast(pa.string())
    by_kind = {k: events.filter(pc.equal(kinds, pa.scalar(k))) for k in EVENT_KINDS}
    counts = {k: table.num_rows for k, table in by_kind.items()}
    parts.append(
        f"<p>{obs.num_rows} observation intervals, {span}. Events: "
        + ", ".join(f"{n} {k}{'s' if n != 1 else ''}" for k, n in counts.items())
        + ".</p>"
    )
    block_events = _longest(pa.concat_tables([by_kind["outage"], by_kind["peninsula"]]), timelines)
    if block_events and timelines > 0:
        parts.append("<h2>Event timelines</h2>")
        coded = coded_observations(obs)
        for event in block_events:
            parts.append(
                f"<h3>{html.escape(event['kind'])} of {html.escape(event['scope'])}, "
                f"{_when(event['start'])} for {event['duration']} s</h3>"
            )
            parts.append(_png(timeline_figure(coded, event["scope"], event["start"], event["end"])))
    columns = ["kind", "scope", "af", "start", "end", "duration", "vps_up", "vps_down", "share"]
    for kind in ("outage", "peninsula", "island"):
        parts.append(f"<h2>{kind.capitalize()}s ({counts[kind]}), longest first</h2>")
        parts.append(_table(_longest(by_kind[kind], _ROW_LIMIT), columns, total=counts[kind]))
    parts.append("<h2>Vantage points</h2>")
    parts.append(_table(found.vp_summary.to_pylist(), found.vp_summary.column_names, limit=200))
    if dnsmon is not None and dnsmon.num_rows:
        parts.append("<h2>DNSmon: root query loss</h2>")
        parts.append(_png(dnsmon_figure(dnsmon)))
        parts.append(_table(dnsmon.to_pylist(), dnsmon.column_names, limit=100))
    if rir is not None:
        parts.append("<h2>Who could secede: addresses per RIR and country</h2>")
        parts.append(_table(rir.to_pylist(), rir.column_names, limit=300))
    parts.append("</body></html>\n")
    return "".join(parts)
