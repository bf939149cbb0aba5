"""The reach report: one self-contained HTML file of connectivity events, readable at scale.

A real quarter of Trinocular data holds millions of block events, so the page leads with an
overview per address family: block events starting per hour by kind, the duration CDF of each
kind, a per-VP island timeline, and the largest events by blocks x duration. A *large event* is
the block events of one kind and family that start in the same round (the detectors snap
boundaries to the round grid, so blocks that went down together share a start); its size is
the sum of its blocks' durations (block-seconds: blocks x duration when they end together).
Then: the VPs across families (each island stated with what the same VP was in the other
family, :mod:`liveness.reach.families`); detail for at most ``detail`` largest events (a per-VP
picture of the share of its blocks up, down and unknown over time, and its blocks); per family
the longest events of each kind and the per-VP summary; the DNSmon grouped bars; and an RIR
table when given. Figures are PNG embedded as base64, so the file stands alone; their number is
bounded (three per family and one per detailed event), so the page stays small.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from liveness.output.html import figure_png, html_table, page_start, png_img
from liveness.reach.detect import EVENT_KINDS, CodedObservations, Detection, coded_observations
from liveness.reach.dnsmon import VIEWS
from liveness.reach.families import cross_family
from liveness.reach.intervals import dictionary_codes

__all__ = [
    "DETAIL",
    "EventGroups",
    "dnsmon_figure",
    "duration_cdf_figure",
    "event_groups",
    "events_per_hour_figure",
    "group_figure",
    "island_timeline_figure",
    "render_report",
    "timeline_figure",
]

DETAIL = 10
"""Detail sections by default: the largest events."""
_STATUS_COLOURS = {0: "#d62728", 1: "#2ca02c", 2: "#bbbbbb"}  # down, up, unknown
_KIND_COLOURS = {"outage": "#d62728", "peninsula": "#ff7f0e", "island": "#1f77b4"}
_VIEW_LABELS = {
    "all": "all VPs",
    "no_islands": "without islands",
    "no_islands_peninsulas": "without islands and peninsulas",
}
_ROW_LIMIT = 50
_TOP = 25  # rows of the largest-events table per family
_MEMBERS = 20  # blocks listed per detailed event
_FIGURE_BLOCKS = 2000  # blocks of a detailed event drawn in its figure
_FIGURE_VPS = 40  # VP rows of a detail figure or an island timeline
_BINS = 240  # time bins of a detail figure
_OTHER = {
    "core": "while a member of the IPv{o} core (it reached {r} of the {m} IPv{o} targets it "
    "measured)",
    "island": "while an IPv{o} island too",
    "down": "while it reached none of the {m} IPv{o} targets it measured",
    "unmeasured": "with no IPv{o} observation by it then",
}
I64 = NDArray[np.int64]


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


def _time_unit(span: int) -> tuple[int, str]:
    """A unit fitting a span of seconds: (seconds per unit, its name)."""
    for unit, name in ((86_400, "days"), (3600, "hours"), (60, "minutes")):
        if span >= 2 * unit:
            return unit, name
    return 1, "seconds"


@dataclass(frozen=True)
class EventGroups:
    """Large events: block events of one kind, family and start, largest first.

    Group ``i`` has ``blocks[i]`` block events, the rows ``rows[head[i]:head[i] + blocks[i]]``
    of the Event table; ``block_s`` is the sum of their durations, ``end`` the latest end.
    """

    kind: list[str]
    af: NDArray[np.uint8]
    start: I64
    end: I64
    blocks: I64
    block_s: I64
    head: I64
    rows: I64

    def members(self, group: int) -> I64:
        """The Event-table rows of one group."""
        head = int(self.head[group])
        return self.rows[head : head + int(self.blocks[group])]


def event_groups(events: pa.Table) -> EventGroups:
    """Group the outages and peninsulas of ``events`` into large events (largest first)."""
    kind_codes, kind_names = dictionary_codes(events.column("kind"))
    names = [str(n) for n in kind_names.to_pylist()]
    block_kinds = [i for i, name in enumerate(names) if name != "island"]
    rows = np.flatnonzero(np.isin(kind_codes, block_kinds)).astype(np.int64)
    kind = kind_codes[rows]
    af = events.column("af").to_numpy()[rows]
    start = events.column("start").to_numpy()[rows].astype(np.int64)
    order = np.lexsort((start, af, kind))
    rows, kind, af, start = rows[order], kind[order], af[order], start[order]
    new = np.ones(len(rows), bool)
    new[1:] = (kind[1:] != kind[:-1]) | (af[1:] != af[:-1]) | (start[1:] != start[:-1])
    heads = np.flatnonzero(new)
    blocks = np.diff(np.append(heads, len(rows))).astype(np.int64)
    if len(rows):
        duration = events.column("duration").to_numpy()[rows].astype(np.int64)
        end = events.column("end").to_numpy()[rows].astype(np.int64)
        block_s = np.add.reduceat(duration, heads)
        group_end = np.maximum.reduceat(end, heads)
    else:
        block_s = group_end = np.zeros(0, np.int64)
    rank = np.lexsort((kind[heads], af[heads], start[heads], -block_s))  # largest first
    return EventGroups(
        kind=[names[int(k)] for k in kind[heads][rank]],
        af=af[heads][rank].astype(np.uint8),
        start=start[heads][rank],
        end=group_end[rank],
        blocks=blocks[rank],
        block_s=block_s[rank],
        head=heads[rank].astype(np.int64),
        rows=rows,
    )


def events_per_hour_figure(events: pa.Table, lo: int, hi: int, af: int) -> Any:
    """Events starting per hour, one step line per kind (blocks for outages and peninsulas)."""
    kinds = events.column("kind").cast(pa.string()).to_numpy(zero_copy_only=False)
    starts = events.column("start").to_numpy()
    hours = max(1, math.ceil((hi - lo) / 3600))
    unit, unit_name = _time_unit(hi - lo)
    figure, axes = plt.subplots(figsize=(10, 3))
    x = np.arange(hours + 1) * 3600 / unit
    for kind in EVENT_KINDS:
        mine = starts[kinds == kind]
        if len(mine) == 0:
            continue
        counts = np.bincount(np.clip((mine - lo) // 3600, 0, hours - 1), minlength=hours)
        axes.stairs(counts, x, label=f"{kind}s ({len(mine)})", color=_KIND_COLOURS[kind])
    axes.set_yscale("symlog", linthresh=1)
    axes.set_xlim(0, x[-1])
    axes.set_xlabel(f"{unit_name} since {_when(lo)} UTC")
    axes.set_ylabel("events starting per hour")
    axes.set_title(f"IPv{af}: events per hour by kind")
    if len(starts):
        axes.legend(loc="upper right")
    return figure


def duration_cdf_figure(events: pa.Table, af: int) -> Any:
    """The CDF of event durations, one line per kind (drawn from 500 quantiles)."""
    kinds = events.column("kind").cast(pa.string()).to_numpy(zero_copy_only=False)
    durations = events.column("duration").to_numpy()
    figure, axes = plt.subplots(figsize=(10, 3))
    q = np.linspace(0.0, 1.0, 501)
    for kind in EVENT_KINDS:
        mine = durations[kinds == kind]
        if len(mine) == 0:
            continue
        x = np.maximum(np.quantile(mine, q), 1) / 60
        axes.step(x, q, where="post", label=f"{kind}s ({len(mine)})", color=_KIND_COLOURS[kind])
    axes.set_xscale("log")
    axes.set_ylim(0, 1)
    axes.set_xlabel("duration (minutes)")
    axes.set_ylabel("share of events")
    axes.set_title(f"IPv{af}: duration CDF per kind")
    if len(durations):
        axes.legend(loc="lower right")
    return figure


def island_timeline_figure(islands: pa.Table, vps: list[str], lo: int, hi: int, af: int) -> Any:
    """One row per VP (the 40 with the most island time), its islands drawn as bars."""
    scope = islands.column("scope").cast(pa.string()).to_numpy(zero_copy_only=False)
    start = islands.column("start").to_numpy()
    end = islands.column("end").to_numpy()
    names, where = np.unique(np.asarray(vps + scope.tolist(), dtype=object), return_inverse=True)
    total = np.bincount(where[len(vps) :], weights=end - start, minlength=len(names))
    shown = np.sort(np.argsort(-total, kind="stable")[:_FIGURE_VPS])
    unit, unit_name = _time_unit(hi - lo)
    figure, axes = plt.subplots(figsize=(10, 0.3 * len(shown) + 1.3))
    row_of = np.full(len(names), -1)
    row_of[shown] = np.arange(len(shown))
    rows = row_of[where[len(vps) :]]
    for y in range(len(shown)):
        sel = rows == y
        spans = list(zip((start[sel] - lo) / unit, (end[sel] - start[sel]) / unit, strict=True))
        axes.broken_barh(spans, (y - 0.4, 0.8), facecolors=_KIND_COLOURS["island"])
    axes.set_yticks(range(len(shown)), [str(names[i]) for i in shown])
    axes.set_ylim(len(shown) - 0.5, -0.5)
    axes.set_xlim(0, max(hi - lo, 1) / unit)
    axes.set_xlabel(f"{unit_name} since {_when(lo)} UTC")
    hidden = len(names) - len(shown)
    more = f"; {hidden} VPs with less island time not shown" if hidden > 0 else ""
    axes.set_title(f"IPv{af}: islands per VP{more}")
    return figure


def group_figure(coded: CodedObservations, targets: I64, start: int, end: int, af: int) -> Any:
    """Per VP, the share of the event's blocks seen up (green), down (red), unknown (grey) over
    time around ``[start, end)``; white where the VP did not measure them."""
    margin = max(end - start, 3600)
    lo, hi = start - margin, end + margin
    if len(coded.t0):  # no wider than the data
        lo, hi = max(lo, min(start, int(coded.t0.min()))), min(hi, max(end, int(coded.t1.max())))
    wanted = np.zeros(len(coded.target_names), bool)
    targets = targets[:_FIGURE_BLOCKS]
    wanted[targets] = True
    rows = np.flatnonzero(wanted[coded.target] & (coded.af == af))
    rows = rows[(coded.t1[rows] > lo) & (coded.t0[rows] < hi)]
    centres = lo + (np.arange(_BINS) + 0.5) * (hi - lo) / _BINS
    inside = (coded.t0[rows, None] <= centres) & (centres < coded.t1[rows, None])
    row, column = np.nonzero(inside)
    vp_codes, vp_of = np.unique(coded.vp[rows], return_inverse=True)
    cell = (vp_of[row] * 3 + coded.status[rows][row]) * _BINS + column
    counts = np.bincount(cell, minlength=len(vp_codes) * 3 * _BINS).reshape(-1, 3, _BINS)
    keep = np.sort(np.argsort(-counts[:, 0].sum(axis=1), kind="stable")[:_FIGURE_VPS])
    keep = keep[np.argsort([coded.vp_names[vp_codes[k]] for k in keep], kind="stable")]
    share = counts[keep] / len(targets)
    rgb = np.ones((len(keep), _BINS, 3))
    for status, colour in _STATUS_COLOURS.items():
        value = np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
        rgb -= share[:, status, :, None] * (1 - value)
    unit, unit_name = _time_unit(hi - lo)
    figure, axes = plt.subplots(figsize=(10, 0.3 * max(len(keep), 2) + 1.3))
    extent = (0.0, (hi - lo) / unit, len(keep) - 0.5, -0.5)
    axes.imshow(np.clip(rgb, 0, 1), aspect="auto", interpolation="nearest", extent=extent)
    axes.set_yticks(range(len(keep)), [coded.vp_names[vp_codes[k]] for k in keep])
    axes.axvline((start - lo) / unit, color="#1f77b4")
    axes.axvline((end - lo) / unit, color="#1f77b4")
    axes.set_xlabel(f"{unit_name} since {_when(lo)} UTC")
    drawn = (
        f"the first {len(targets)} of its blocks"
        if len(targets) >= _FIGURE_BLOCKS
        else "its blocks"
    )
    axes.set_title(f"per-VP share of {drawn} up (green), down (red), unknown (grey)")
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


def _family_section(af: int, n_obs: int, events: pa.Table, vp_summary: pa.Table) -> list[str]:
    """One address family: its event tables per kind and its per-VP summary."""
    mine = _by_af(events, af)
    kinds = mine.column("kind").cast(pa.string())
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


def _hours(seconds: int) -> str:
    return f"{seconds / 3600:.1f}"


def _group_title(events: pa.Table, groups: EventGroups, g: int) -> str:
    first = str(events.column("scope")[int(groups.members(g)[0])])
    blocks = int(groups.blocks[g])
    what = first if blocks == 1 else f"{blocks} blocks from {first}"
    return (
        f"{groups.kind[g]} of {what} (IPv{groups.af[g]}), {_when(int(groups.start[g]))} "
        f"for {int(groups.end[g] - groups.start[g])} s"
    )


def _top_table(events: pa.Table, groups: EventGroups, chosen: I64, detailed: int) -> str:
    """The largest events of one family, with their rank among all (detail sections)."""
    rows = []
    for g in chosen[:_TOP].tolist():
        first = str(events.column("scope")[int(groups.members(g)[0])])
        rows.append(
            [
                f"#{g + 1}" + (" (detail below)" if g < detailed else ""),
                groups.kind[g],
                _when(int(groups.start[g])),
                int(groups.end[g] - groups.start[g]),
                int(groups.blocks[g]),
                _hours(int(groups.block_s[g])),
                first,
            ]
        )
    if not rows:
        return '<p class="muted">no outage or peninsula</p>'
    headers = ["rank", "kind", "start", "duration (s)", "blocks", "block-hours", "first block"]
    more = len(chosen) - len(rows)
    tail = f'<p class="muted">{more} smaller events not shown</p>' if more > 0 else ""
    return html_table(headers, rows) + tail


def _overview_section(
    af: int, events: pa.Table, groups: EventGroups, vps: list[str], span: tuple[int, int], n: int
) -> list[str]:
    """One family's overview: events per hour, duration CDFs, island timeline, largest events."""
    mine = _by_af(events, af)
    lo, hi = span
    parts = [f"<h2>Overview: IPv{af}</h2>"]
    if mine.num_rows:
        parts.append(_png(events_per_hour_figure(mine, lo, hi, af)))
        parts.append(_png(duration_cdf_figure(mine, af)))
    else:
        parts.append(f'<p class="muted">no IPv{af} event</p>')
    islands = mine.filter(pc.equal(mine.column("kind").cast(pa.string()), pa.scalar("island")))
    if islands.num_rows:
        parts.append(_png(island_timeline_figure(islands, vps, lo, hi, af)))
    else:
        parts.append(f'<p class="muted">no IPv{af} island among {len(vps)} VPs</p>')
    chosen = np.flatnonzero(groups.af == af)
    parts.append(
        f"<h3>Largest IPv{af} events by blocks x duration ({len(chosen)} events of "
        f"{int(groups.blocks[chosen].sum())} block events)</h3>"
    )
    parts.append(_top_table(events, groups, chosen, n))
    return parts


def _detail_section(
    events: pa.Table, groups: EventGroups, g: int, coded: CodedObservations | None, target: I64
) -> str:
    """One large event: a per-VP picture of its blocks and the list of its blocks."""
    members = groups.members(g)
    parts = [
        f'<section class="detail" id="event-{g + 1}">',
        f"<h3>#{g + 1}: {html.escape(_group_title(events, groups, g))}, "
        f"{_hours(int(groups.block_s[g]))} block-hours</h3>",
    ]
    if coded is not None:
        targets = target[members[:_FIGURE_BLOCKS]]
        targets = targets[targets >= 0]
        start, end = int(groups.start[g]), int(groups.end[g])
        parts.append(_png(group_figure(coded, targets, start, end, int(groups.af[g]))))
    columns = ["scope", "start", "end", "duration", "vps_up", "vps_down", "share"]
    listed = events.take(members[:_MEMBERS]).select(columns).to_pylist()
    parts.append(_table(listed, columns, limit=_MEMBERS, total=len(members)))
    parts.append("</section>")
    return "".join(parts)


def _one_dictionary(obs: pa.Table) -> pa.Table:
    """``obs`` with each dictionary column in one chunk where its chunks share one dictionary
    (a Parquet file read back: unifying 166 copies of a 1M-name dictionary takes 35 s)."""
    for i, name in enumerate(obs.column_names):
        column = obs.column(name)
        if not pa.types.is_dictionary(column.type) or column.num_chunks < 2:
            continue
        chunks: list[Any] = column.chunks
        first = chunks[0].dictionary
        if all(c.dictionary.equals(first) for c in chunks[1:]):
            indices = pa.concat_arrays([c.indices for c in chunks])
            one = pa.DictionaryArray.from_arrays(indices, first)
            obs = obs.set_column(i, obs.schema.field(i), pa.chunked_array([one]))
    return obs


def render_report(
    obs: pa.Table,
    found: Detection,
    *,
    dnsmon: pa.Table | None = None,
    rir: pa.Table | None = None,
    title: str = "liveness reach report",
    detail: int = DETAIL,
    timelines: int | None = None,
) -> str:
    """The report as one HTML string; ``detail``: detail sections for this many largest events
    (``timelines``: its former name)."""
    detail = detail if timelines is None else timelines
    events = found.events  # plain strings in one chunk: a take across chunks unifies dictionaries
    for name in ("kind", "scope"):
        events = events.set_column(
            events.schema.get_field_index(name), name, events.column(name).cast(pa.string())
        )
    events = events.combine_chunks()
    coded = coded_observations(_one_dictionary(obs)) if obs.num_rows else None
    parts = [page_start(title)]
    lo, hi = (int(coded.t0.min()), int(coded.t1.max())) if coded is not None else (0, 0)
    span_text = f"{_when(lo)} to {_when(hi)} UTC" if coded is not None else "no observations"
    if events.num_rows:  # the time axis of the overview holds every event
        first, last = (
            int(pc.min(events.column("start")).as_py()),
            int(pc.max(events.column("end")).as_py()),
        )
        lo, hi = (min(lo, first), max(hi, last)) if coded is not None else (first, last)
    kinds = events.column("kind").cast(pa.string())
    kind_codes, kind_names = dictionary_codes(events.column("kind"))
    tally = np.bincount(kind_codes, minlength=len(kind_names)).tolist()
    counts = dict.fromkeys(EVENT_KINDS, 0)
    counts.update(zip([str(n) for n in kind_names.to_pylist()], tally, strict=True))
    present = set(np.unique(events.column("af").to_numpy()).tolist())
    af_codes = coded.af if coded is not None else np.zeros(0, np.uint8)
    present |= set(np.unique(af_codes).tolist())
    families = sorted(int(af) for af in present) or [4]
    rows_of = np.bincount(af_codes, minlength=256)
    seen = np.zeros((256, len(coded.vp_names) if coded is not None else 0), bool)
    if coded is not None:
        seen[coded.af, coded.vp] = True
    per_family, vps_of, n_obs = [], {}, {}
    for af in families:
        n_obs[af] = int(rows_of[af])
        vps_of[af] = [coded.vp_names[v] for v in np.flatnonzero(seen[af])] if coded else []
        per_family.append(f"IPv{af}: {n_obs[af]} intervals from {len(vps_of[af])} VPs")
    groups = event_groups(events)
    detail = min(detail, len(groups.kind))
    parts.append(
        f"<p>{obs.num_rows} observation intervals, {span_text} ({'; '.join(per_family)}). "
        "Events: "
        + ", ".join(f"{n} {k}{'s' if n != 1 else ''}" for k, n in counts.items())
        + f"; the outages and peninsulas make {len(groups.kind)} large events (block events of "
        "one kind starting in the same round), ranked by blocks x duration.</p>"
    )
    for af in families:
        parts += _overview_section(af, events, groups, vps_of[af], (lo, hi), detail)
    if coded is not None:
        island_rows = pc.equal(kinds, pa.scalar("island"))
        islands = Detection(events.filter(island_rows), found.vp_summary, found.intervals)
        parts += _families_section(cross_family(coded, islands))
    if detail > 0:
        parts.append(f"<h2>The {detail} largest events in detail</h2>")
        target = np.full(events.num_rows, -1, np.int64)  # per event, its block's target code
        if coded is not None:
            scope, names = dictionary_codes(events.column("scope"))
            lookup = pc.index_in(names, value_set=coded.target_names).fill_null(-1)
            target = lookup.to_numpy().astype(np.int64)[scope]
        parts += [_detail_section(events, groups, g, coded, target) for g in range(detail)]
    for af in families:
        parts += _family_section(af, n_obs[af], events, found.vp_summary)
    if dnsmon is not None and dnsmon.num_rows:
        parts.append("<h2>DNSmon: root query loss</h2>")
        parts.append(_png(dnsmon_figure(dnsmon)))
        parts.append(_table(dnsmon.to_pylist(), dnsmon.column_names, limit=100))
    if rir is not None:
        parts.append("<h2>Who could secede: addresses per RIR and country</h2>")
        parts.append(_table(rir.to_pylist(), rir.column_names, limit=300))
    parts.append("</body></html>\n")
    return "".join(parts)
