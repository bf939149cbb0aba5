"""``liveness report``: one self-contained HTML report, from reply files or a saved summary."""

from __future__ import annotations

import json
from typing import Any

import click

from liveness.analysis import ANALYSES, Summary
from liveness.analysis.report import write_report
from liveness.cli._common import emit_json, json_option, log
from liveness.cli.analyze import dask_options, fail_on_bad_inputs, summarize_scans
from liveness.errors import InputError

__all__ = ["command"]


def _load_json(path: str, flag: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise InputError(f"{flag} {path}: cannot read: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{flag} {path}: line {exc.lineno}: not JSON: {exc.msg}") from exc


def _load_summary(path: str) -> Summary:
    summary = _load_json(path, "--summary")
    missing = [
        k for k in (*ANALYSES, "inputs") if not isinstance(summary, dict) or k not in summary
    ]
    if missing:
        raise InputError(f"--summary {path}: not a liveness summary (missing {', '.join(missing)})")
    result: Summary = summary
    return result


@click.command(name="report")
@click.argument("scans", nargs=-1)
@click.option("-o", "--output", required=True, metavar="FILE", help="The HTML file to write.")
@click.option("--summary", "summary_path", metavar="FILE", help="Use a saved `analyze -o` summary.")
@click.option("-m", "--metadata", metavar="FILE", help="The scan's metadata JSON (scan -m).")
@dask_options
@json_option
def command(
    scans: tuple[str, ...],
    output: str,
    summary_path: str | None,
    metadata: str | None,
    workers: int | None,
    dask_address: str | None,
    as_json: bool,
) -> None:
    """Write a self-contained HTML report of SCANS (reply files) or of --summary."""
    if bool(scans) == bool(summary_path):
        raise InputError("give reply files (SCAN...) or --summary FILE, not both or neither")
    scan_metadata = _load_json(metadata, "--metadata") if metadata else None
    if scan_metadata is not None and not isinstance(scan_metadata, dict):
        raise InputError(f"--metadata {metadata}: not a JSON object")
    if summary_path:
        summary = _load_summary(summary_path)
    else:
        summary = summarize_scans(scans, workers, dask_address)
    write_report(summary, output, scan_metadata)
    if as_json:
        emit_json({"report": output, "inputs": summary["inputs"]})
    else:
        log(f"wrote {output}")
    fail_on_bad_inputs(summary)
