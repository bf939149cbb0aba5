"""The report's figures, drawn with matplotlib (Agg) from a summary and returned as PNG bytes.

Each function takes the summary dict and returns one PNG; the report inlines them as base64,
so the HTML file stays self-contained.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from liveness.analysis.addressmap import hilbert_grid
from liveness.output.html import figure_png

__all__ = [
    "LAYER_COLOURS",
    "address_map_figure",
    "app_layer_figure",
    "capturing",
    "conditional_figure",
    "coverage_figure",
    "icmp_errors_figure",
    "port_count_figure",
    "ports_figure",
    "prefix_figure",
    "reply_kinds_figure",
]

LAYER_COLOURS = ("#eeeeee", "#9ecae1", "#4292c6", "#08519c", "#e6550d")
_DARK, _LIGHT, _MID = "#08519c", "#9ecae1", "#4292c6"


#: While set (by :func:`capturing`), figures are handed over here instead of being rendered.
_CAPTURED: ContextVar[list[Figure] | None] = ContextVar("captured_figures", default=None)


@contextmanager
def capturing() -> Iterator[list[Figure]]:
    """Within the block, the figure functions return no PNG: their figures are collected in
    the list yielded (open; the caller saves and closes them), for other file formats."""
    figures: list[Figure] = []
    token = _CAPTURED.set(figures)
    try:
        yield figures
    finally:
        _CAPTURED.reset(token)


def _png(fig: Figure) -> bytes:
    captured = _CAPTURED.get()
    if captured is not None:
        captured.append(fig)
        return b""
    return figure_png(fig, dpi=100)


def _stacked_barh(
    title: str, labels: list[str], parts: list[tuple[str, str, list[int]]], xlabel: str
) -> bytes:
    """Horizontal stacked bars: one bar per label, one segment per (name, colour, values)."""
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(labels) + 1.4))
    left = np.zeros(len(labels))
    for name, colour, values in parts:
        ax.barh(labels, values, left=left, color=colour, label=name)
        left += np.asarray(values, dtype=float)
    ax.invert_yaxis()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.legend(loc="lower right", fontsize="small")
    return _png(fig)


def coverage_figure(summary: dict[str, Any]) -> bytes:
    """Analysis 1: alive addresses per family, split into exclusive and shared parts."""
    fams = summary["coverage"]["families"]
    labels = [*(f.upper() for f in fams), "ALL"]
    only = [fams[f]["only_this_family"] for f in fams] + [0]
    shared = [fams[f]["alive"] - fams[f]["only_this_family"] for f in fams] + [0]
    every = [0] * len(fams) + [summary["coverage"]["all"]]
    return _stacked_barh(
        "Network-layer coverage per family",
        labels,
        [
            ("found by this family only", _DARK, only),
            ("also found by others", _LIGHT, shared),
            ("all alive (any probe)", "#969696", every),
        ],
        "alive addresses",
    )


def reply_kinds_figure(summary: dict[str, Any]) -> bytes:
    """Analysis 2: found by positive replies only, by both, by ICMP errors only."""
    fams = summary["reply_kinds"]["families"]
    return _stacked_barh(
        "Coverage by reply kind",
        [f.upper() for f in fams],
        [
            ("positive replies only", _DARK, [fams[f]["positive_only"] for f in fams]),
            ("both", _MID, [fams[f]["both"] for f in fams]),
            ("ICMP errors only", "#e6550d", [fams[f]["errors_only"] for f in fams]),
        ],
        "alive addresses",
    )


def icmp_errors_figure(summary: dict[str, Any]) -> bytes:
    """Analysis 3: probed addresses per ICMP error kind and family, target- vs router-sourced."""
    fams = summary["icmp_errors"]["families"]
    kinds = ["port_unreachable", "host_unreachable", "other_unreachable"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
    x = np.arange(len(fams))
    width = 0.2
    for i, kind in enumerate([*kinds, "other_errors"]):
        values = [
            sum(v["targets"] for v in fams[f][kind].values())
            if kind == "other_errors"
            else fams[f][kind]["targets"]
            for f in fams
        ]
        left.bar(x + (i - 1.5) * width, values, width, label=kind.replace("_", " "))
    left.set_xticks(x, [f.upper() for f in fams])
    left.set_ylabel("probed addresses")
    left.set_title("ICMP errors by kind")
    left.legend(fontsize="small")
    target = [fams[f]["from_target"]["targets"] for f in fams]
    other = [fams[f]["from_other_address"]["targets"] for f in fams]
    right.bar(x - 0.2, target, 0.4, label="sourced by the target", color=_DARK)
    right.bar(x + 0.2, other, 0.4, label="sourced by another address", color="#e6550d")
    right.set_xticks(x, [f.upper() for f in fams])
    right.set_title("Who sourced the error")
    right.legend(fontsize="small")
    return _png(fig)


def port_count_figure(summary: dict[str, Any]) -> bytes:
    """Analysis 4: how many of the five ports each transport-active address answered."""
    hist = summary["transport"]["ports_answered"]
    ks = list(hist)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    bottom = np.zeros(len(ks))
    for key, colour in (("synack_only", _DARK), ("both", _MID), ("rst_only", "#fd8d3c")):
        values = np.array([hist[k][key] for k in ks], dtype=float)
        ax.bar(ks, values, bottom=bottom, color=colour, label=key.replace("_", " "))
        bottom += values
    ax.set_xlabel("probed TCP ports answered (SYN-ACK or RST)")
    ax.set_ylabel("addresses")
    ax.set_title("Ports answered per transport-active address")
    ax.legend(fontsize="small")
    return _png(fig)


def ports_figure(summary: dict[str, Any]) -> bytes:
    """Analyses 4-5: per port alive (with/without tarpits), RST only, found by that port only."""
    ports = summary["transport"]["ports"]
    pits = summary["tarpits"]["ports"]
    names = list(ports)
    x = np.arange(len(names))
    series = [
        ("alive (SYN-ACK)", _DARK, [ports[p]["alive"] for p in names]),
        ("alive without tarpits", _LIGHT, [pits[p]["alive_without_tarpits"] for p in names]),
        ("RST only", "#fd8d3c", [ports[p]["rst_only"] for p in names]),
        ("found by this port only", "#31a354", [ports[p]["only_this_port"] for p in names]),
    ]
    fig, ax = plt.subplots(figsize=(8, 3.4))
    width = 0.2
    for i, (label, colour, values) in enumerate(series):
        ax.bar(x + (i - 1.5) * width, values, width, color=colour, label=label)
    ax.set_xticks(x, [f"TCP/{p}" for p in names])
    ax.set_ylabel("addresses")
    ax.set_title("Per-port transport layer")
    ax.legend(fontsize="small")
    return _png(fig)


def conditional_figure(summary: dict[str, Any]) -> bytes:
    """Analysis 6: the heatmap of P(active for B | active for A)."""
    cond = summary["conditional"]
    names = [p.replace("tcp_syn:", "tcp/") for p in cond["probes"]]
    matrix = np.array([[np.nan if v is None else v for v in row] for row in cond["matrix"]])
    fig, ax = plt.subplots(figsize=(7, 6))
    image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
    for i in range(len(names)):
        for j in range(len(names)):
            if not np.isnan(matrix[i, j]):
                colour = "black" if matrix[i, j] > 0.6 else "white"
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", color=colour)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("B")
    ax.set_ylabel("A (given)")
    ax.set_title("P(active for B | active for A)")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return _png(fig)


def address_map_figure(summary: dict[str, Any]) -> bytes:
    """The scanned range on a Hilbert curve, each cell coloured by its highest layer."""
    amap = summary["address_map"]
    grid = hilbert_grid(amap["cells"]) if amap["cells"] else np.full((1, 1), -1)
    colours = ["#ffffff", *LAYER_COLOURS]
    fig, ax = plt.subplots(figsize=(7, 7 * grid.shape[0] / grid.shape[1] + 0.8))
    ax.imshow(grid + 1, cmap=ListedColormap(colours), vmin=0, vmax=len(colours) - 1)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(
        f"{amap['prefix']}: highest layer alive per /{amap['cell_prefix_len']} (Hilbert curve)"
    )
    handles = [
        Patch(color=c, label=f"{name} ({amap.get('cells_by_layer', {}).get(name, 0)})")
        for name, c in zip(amap["layers"], LAYER_COLOURS, strict=True)
    ]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=3)
    return _png(fig)


def prefix_figure(section: dict[str, Any]) -> bytes:
    """IPv6 in place of the address map: how many prefixes of each length hold 1, 2-3, 4-7,
    ... alive addresses (one panel per length, log-scaled counts)."""
    picture = section["prefixes"]
    fig, axes = plt.subplots(1, len(picture), figsize=(7, 3.2), squeeze=False)
    for ax, (length, entry) in zip(axes[0], picture.items(), strict=True):
        bins = entry["alive_per_prefix"]
        ax.bar(list(bins), list(bins.values()), color=_MID)
        ax.set_title(f"{entry['prefixes']} {length} prefixes with an alive address")
        ax.set_xlabel("alive addresses in the prefix")
        ax.set_ylabel(f"{length} prefixes")
        if bins:
            ax.set_yscale("log")
        ax.tick_params(axis="x", labelrotation=45, labelsize="small")
    fig.tight_layout()
    return _png(fig)


def app_layer_figure(section: dict[str, Any]) -> bytes:
    """Analysis 10: per TCP port, transport-alive (SYN-ACK) beside application-active and
    application-alive; the outlined bar is transport-alive without the no-service tarpits."""
    ports = section["app_layer"]["ports"]
    names = list(ports)
    x = np.arange(len(names))
    series = [
        ("transport-alive (SYN-ACK)", _DARK, [ports[p]["transport_alive"] for p in names]),
        ("application-active", _MID, [ports[p]["app_active"] for p in names]),
        ("application-alive", "#e6550d", [ports[p]["app_alive"] for p in names]),
    ]
    fig, ax = plt.subplots(figsize=(8, 3.4))
    width = 0.26
    for i, (label, colour, values) in enumerate(series):
        ax.bar(x + (i - 1) * width, values, width, color=colour, label=label)
    kept = [ports[p]["without_no_service_tarpits"]["transport_alive"] for p in names]
    ax.bar(
        x - width,
        kept,
        width,
        fill=False,
        edgecolor="#fdae6b",
        linewidth=1.5,
        label="transport-alive without no-service tarpits",
    )
    ax.set_xticks(x, [f"TCP/{p}" for p in names])
    ax.set_ylabel("addresses")
    ax.set_title("Per-port application layer: SYN-ACK vs a service answering")
    ax.legend(fontsize="small")
    return _png(fig)
