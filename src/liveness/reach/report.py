"""The reach report: one self-contained HTML file of connectivity events.

Sections: a summary (with the intervals and VPs of each address family); event timelines
(per-VP reachability of a block over time, as in the appendix figures of "Reasoning About
Internet Connectivity": one row per VP, green up, red down, grey unknown, the event shaded);
the VPs across families (each island stated with what the same VP was in the other family,
e.g. an IPv6 island while a member of the IPv4 core, :mod:`liveness.reach.families`); then one
section per address family with its event tables per kind and its per-VP summary; the DNSmon
grouped bars (loss per letter and af: all probes, without islands, without islands and
peninsulas); and an RIR table when given. Figures are PNG embedded as base64, so the file
stands alone.
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
from liveness.reach.families import cross_family

__all__ = ["dnsmon_figure", "render_report", "timeline_figure"]

_STATUS_COLOURS = {0: "#d62728", 1: "#2ca02c", 2: "#bbbbbb"}  # down, up, unknown
_VIEW_LABELS = {
    "all": "all VPs",
    "no_islands": "without islands",
    "no_islands_peninsulas": "without islands and peninsulas",
}
_ROW_LIMIT = 50
_OTHER = {
    "core": "while a member of the IPv{o} core (it reached {r} of the {m} IPv{o} targets it "
    "measured)",
    "island": "while an IPv{o} island too",
    "down": "while it reached none of the {m} IPv{o} targets it measured",
    "unmeasured": "with no IPv{o} observation by it then",
}


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


def _by_af(table: pa.Table, af: int) -> pa.Table:
    return table.filter(pc.equal(table.column("af"), pa.scalar(af, pa.uint8())))


def _families_section(cross: pa.Table) -> list[str]:
    """One sentence per island: what the same VP was in the other family meanwhile."""
    parts = ["<h2>Vantage points across families</h2>"]
    if cross.num_rows == 0:
        return [*parts, '<p class="muted">no island in either family</p>']
    items = []
    for row in cross.to_pylist():
        other = _OTHER[row["other"]].format(o=row["other_af"], r=row["reached"], m=row["measured"])
        items.append(
            f"<li><b>{html.escape(row['vp'])}</b> was an IPv{row['af']} island from "
            f"{_when(row['start'])} for {row['end'] - row['start']} s {other}.</li>"
        )
    return [*parts, "<ul>", *items, "</ul>"]


def _family_section(af: int, obs: pa.Table, events: pa.Table, vp_summary: pa.Table) -> list[str]:
    """One address family: its event tables per kind and its per-VP summary."""
    mine = _by_af(events, af)
    kinds = mine.column("kind").cast(pa.string())
    n_obs = _by_af(obs, af).num_rows if obs.num_rows else 0
    parts = [f"<h2>IPv{af}</h2>", f"<p>{n_obs} IPv{af} observation intervals.</p>"]
    columns = ["kind", "scope", "af", "start", "end", "duration", "vps_up", "vps_down", "share"]
    for kind in EVENT_KINDS:
        of_kind = mine.filter(pc.equal(kinds, pa.scalar(kind)))
        parts.append(f"<h3>{kind.capitalize()}s ({of_kind.num_rows}), longest first</h3>")
        parts.append(_table(_longest(of_kind, _ROW_LIMIT), columns, total=of_kind.num_rows))
    parts.append(f"<h3>Vantage points (IPv{af})</h3>")
    summary = _by_af(vp_summary, af) if vp_summary.num_rows else vp_summary
    parts.append(_table(summary.to_pylist(), summary.column_names, limit=200))
    return parts


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
    present = set(obs.column("af").to_numpy().tolist())
    present |= set(events.column("af").to_numpy().tolist())
    families = sorted(int(af) for af in present) or [4]
    per_family = []
    for af in families:
        rows = _by_af(obs, af)
        n_vps = len(set(rows.column("vp").to_pylist())) if rows.num_rows else 0
        per_family.append(f"IPv{af}: {rows.num_rows} intervals from {n_vps} VPs")
    parts.append(
        f"<p>{obs.num_rows} observation intervals, {span} ({'; '.join(per_family)}). Events: "
        + ", ".join(f"{n} {k}{'s' if n != 1 else ''}" for k, n in counts.items())
        + ".</p>"
    )
    coded = coded_observations(obs) if obs.num_rows else None
    block_events = _longest(pa.concat_tables([by_kind["outage"], by_kind["peninsula"]]), timelines)
    if block_events and timelines > 0 and coded is not None:
        parts.append("<h2>Event timelines</h2>")
        for event in block_events:
            parts.append(
                f"<h3>{html.escape(event['kind'])} of {html.escape(event['scope'])} "
                f"(IPv{event['af']}), {_when(event['start'])} for {event['duration']} s</h3>"
            )
            parts.append(_png(timeline_figure(coded, event["scope"], event["start"], event["end"])))
    if coded is not None:
        parts += _families_section(cross_family(coded, found))
    for af in families:
        parts += _family_section(af, obs, events, found.vp_summary)
    if dnsmon is not None and dnsmon.num_rows:
        parts.append("<h2>DNSmon: root query loss</h2>")
        parts.append(_png(dnsmon_figure(dnsmon)))
        parts.append(_table(dnsmon.to_pylist(), dnsmon.column_names, limit=100))
    if rir is not None:
        parts.append("<h2>Who could secede: addresses per RIR and country</h2>")
        parts.append(_table(rir.to_pylist(), rir.column_names, limit=300))
    parts.append("</body></html>\n")
    return "".join(parts)
