"""The pieces of a self-contained HTML report: one stylesheet, tables, inline PNG figures.

Both reports (``liveness report`` and ``liveness reach report``) are single files that fetch
nothing when viewed: figures are PNG in ``data:`` URIs, the style is inline. This module is the
one kit they share, so the two look alike and escape alike.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

__all__ = ["STYLE", "figure_png", "html_table", "page_start", "png_figure", "png_img"]

STYLE = """
body { font-family: sans-serif; max-width: 1200px; margin: 1em auto; padding: 0 1em;
       color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f0f4f8; } figure { margin: 0.8em 0; } img { max-width: 100%; }
figcaption { color: #555; font-size: 0.9em; } .error { color: #b00; } .muted { color: #777; }
"""


def page_start(title: str) -> str:
    """The document's head (with :data:`STYLE`) and its title heading."""
    title = html.escape(title)
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{STYLE}</style></head><body><h1>{title}</h1>"
    )


def html_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A table; every header and cell is escaped (cells are shown with ``str``)."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure_png(figure: Any, dpi: int = 100) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def png_img(png: bytes, alt: str = "figure") -> str:
    """An ``<img>`` holding ``png`` inline."""
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def png_figure(png: bytes, caption: str) -> str:
    """A ``<figure>`` with the PNG inline and its caption."""
    return (
        f"<figure>{png_img(png, caption)}<figcaption>{html.escape(caption)}</figcaption></figure>"
    )
