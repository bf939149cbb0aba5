"""The report's figures as files for a paper: PDF and SVG sized for one column, data as CSV.

``liveness report --figures-dir DIR`` writes, per figure, ``NAME.pdf``, ``NAME.svg`` and
``NAME.csv`` (the summary values the figure draws, one ``key,value`` row per number, keys as
dotted paths into ``summary.json``), so a figure can go into LaTeX as it is and be redrawn
from its data. Figures are drawn by the same functions as the HTML report's
(:mod:`.figures`), captured before rendering, with small fonts and resized to a two-column
paper's column (3.5 in wide). The IPv6 section's figures get the suffix ``_ipv6``. The
application-layer figure (:data:`APP_FIGURES`) is written only for a section whose input had
``--app-layer`` answers.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from liveness.analysis import figures
from liveness.errors import RunError

__all__ = ["APP_FIGURES", "COLUMN_WIDTH_IN", "FIGURES", "write_figures"]

#: The width of one column of a two-column paper (ACM and IEEE templates), in inches.
COLUMN_WIDTH_IN = 3.5
_PAD_IN = 0.1  # what ``bbox_inches="tight"`` adds around the drawing
_SLACK_IN = 0.1  # PDF and SVG text measures a little wider than the screen renderer's
_PAPER_STYLE: dict[Any, Any] = {
    "font.size": 7,
    "axes.titlesize": 7,
    "axes.labelsize": 7,
    "legend.fontsize": 6,
    "pdf.fonttype": 42,  # TrueType in the PDF: editable text, accepted by publishers
}

#: Figure name -> (drawing function, the summary keys it draws).
FIGURES: dict[str, tuple[Callable[[dict[str, Any]], bytes], tuple[str, ...]]] = {
    "coverage": (figures.coverage_figure, ("coverage",)),
    "reply_kinds": (figures.reply_kinds_figure, ("reply_kinds",)),
    "icmp_errors": (figures.icmp_errors_figure, ("icmp_errors",)),
    "ports_answered": (figures.port_count_figure, ("transport",)),
    "ports": (figures.ports_figure, ("transport", "tarpits")),
    "conditional": (figures.conditional_figure, ("conditional",)),
    "address_map": (figures.address_map_figure, ("address_map",)),
}
#: Figures of ``--app-layer`` scans, written when the section's ``app_layer`` was scanned.
APP_FIGURES: dict[str, tuple[Callable[[dict[str, Any]], bytes], tuple[str, ...]]] = {
    "app_layer": (figures.app_layer_figure, ("app_layer",)),
}
_IPV6_FIGURES: dict[str, tuple[Callable[[dict[str, Any]], bytes], tuple[str, ...]]] = {
    **{name: entry for name, entry in FIGURES.items() if name != "address_map"},
    "prefixes": (figures.prefix_figure, ("prefixes",)),
}


def _rows(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """(dotted key, number or text) for every leaf of ``value``."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _rows(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _rows(item, f"{path}.{index}")
    else:
        yield path, value


def _relegend(ax: Any, legend: Any, columns: int) -> None:
    """Draw ``ax``'s legend again with ``columns`` columns (a legend lays out once)."""
    ax.legend(
        handles=legend.legend_handles,
        labels=[text.get_text() for text in legend.get_texts()],
        loc=legend._loc,
        bbox_to_anchor=legend.get_bbox_to_anchor().transformed(ax.transAxes.inverted()),
        bbox_transform=ax.transAxes,
        ncols=columns,
        fontsize=legend.get_texts()[0].get_fontsize() if legend.get_texts() else None,
    )


def _fit_column(figure: Any) -> None:
    """Resize ``figure`` so that its saved (tight) width is one column: legends and labels
    outside the axes count, so the size is corrected from the measured extent."""
    width, height = figure.get_size_inches()
    figure.set_size_inches(COLUMN_WIDTH_IN, COLUMN_WIDTH_IN * height / width)
    for ax in figure.axes:  # a title as long as the column would fix its width
        ax.title.set_wrap(True)
    for _ in range(6):
        figure.tight_layout()
        extent = figure.get_tightbbox(figure.canvas.get_renderer()).width + 2 * _PAD_IN
        if extent <= COLUMN_WIDTH_IN - _SLACK_IN:
            return
        wide = [
            (ax, legend)
            for ax in figure.axes
            if (legend := ax.get_legend()) is not None and legend._ncols > 1
        ]
        if wide:  # a row of legend entries wider than the column: fewer per row
            for ax, legend in wide:
                _relegend(ax, legend, legend._ncols - 1)
            continue
        width, height = figure.get_size_inches()
        scale = (COLUMN_WIDTH_IN - _SLACK_IN) / extent
        figure.set_size_inches(width * scale, height * scale)


def _write(
    section: dict[str, Any], directory: Path, suffix: str, table: dict[str, Any]
) -> list[Path]:
    written: list[Path] = []
    for name, (draw, keys) in table.items():
        if any(section.get(key) is None for key in keys):
            continue
        with (
            plt.rc_context(_PAPER_STYLE),
            warnings.catch_warnings(),  # tight_layout's "not applied" as the figure shrinks
        ):
            warnings.simplefilter("ignore", UserWarning)
            with figures.capturing() as drawn:
                draw(section)
            for figure in drawn:
                _fit_column(figure)
                for extension in ("pdf", "svg"):
                    path = directory / f"{name}{suffix}.{extension}"
                    figure.savefig(path, bbox_inches="tight")
                    written.append(path)
                plt.close(figure)
        data = directory / f"{name}{suffix}.csv"
        with open(data, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(("key", "value"))
            for key in keys:
                writer.writerows(_rows(section[key], key))
        written.append(data)
    return written


def _app_figures(section: dict[str, Any]) -> dict[str, Any]:
    """:data:`APP_FIGURES` if ``section`` measured the application layer, else none."""
    measured = isinstance(section.get("app_layer"), dict) and section["app_layer"].get("scanned")
    return APP_FIGURES if measured else {}


def write_figures(summary: dict[str, Any], directory: str | Path) -> list[Path]:
    """Write every figure of ``summary`` (and of its IPv6 section) into ``directory``
    (created if needed); return the files written."""
    target = Path(directory)
    try:
        target.mkdir(parents=True, exist_ok=True)
        written = _write(summary, target, "", {**FIGURES, **_app_figures(summary)})
        if summary.get("ipv6") is not None:
            ipv6 = summary["ipv6"]
            written += _write(ipv6, target, "_ipv6", {**_IPV6_FIGURES, **_app_figures(ipv6)})
    except OSError as exc:
        raise RunError(f"--figures-dir {directory}: cannot write the figures: {exc}") from exc
    return written
