"""``liveness report``: one self-contained HTML report, from reply files or a saved summary."""

from __future__ import annotations

import json
from typing import Any

import click

from liveness.analysis import ANALYSES, Summary
from liveness.analysis.figure_files import write_figures
from liveness.analysis.report import write_report
from liveness.analysis.study import compare
from liveness.cli._common import check_output_file, emit_json, json_option, log, output_file
from liveness.cli.analyze import (
    dask_options,
    fail_on_bad_inputs,
    prefix6_option,
    summarize_scans,
)
from liveness.errors import InputError
from liveness.targets.inputs import check_input_file

__all__ = ["command"]


def _load_json(path: str, flag: str) -> Any:
    check_input_file(path, flag)
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise InputError(f"{flag} {path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise InputError(f"{flag} {path}: not a JSON file (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{flag} {path}: line {exc.lineno}: not JSON: {exc.msg}") from exc
    except RecursionError:
        raise InputError(f"{flag} {path}: JSON nested too deeply") from None


def _load_summary(path: str) -> Summary:
    """A saved ``analyze -o`` summary, its keys and their types checked (one line if wrong)."""
    summary = _load_json(path, "--summary")
    if not isinstance(summary, dict):
        raise InputError(f"--summary {path}: not a liveness summary (not a JSON object)")
    missing = [k for k in (*ANALYSES, "probes", "inputs") if k not in summary]
    if missing:
        raise InputError(f"--summary {path}: not a liveness summary (missing {', '.join(missing)})")
    wrong = [k for k in (*ANALYSES, "probes", "inputs") if not isinstance(summary[k], dict)]
    if wrong:
        raise InputError(
            f"--summary {path}: not a liveness summary ({', '.join(wrong)}: not JSON objects)"
        )
    inputs = summary["inputs"]
    files = inputs.get("files")
    if (
        not isinstance(files, list)
        or not all(isinstance(f, dict) and "error" in f for f in files)
        or not isinstance(inputs.get("errors"), int)
    ):
        raise InputError(
            f"--summary {path}: not a liveness summary (inputs needs a files list and errors)"
        )
    result: Summary = summary
    return result


def _write_from_summary(summary: Summary, path: str, out: str, metadata: Any) -> None:
    """Render a loaded summary; a value of the wrong type deep inside is the file's fault."""
    try:
        write_report(summary, out, metadata)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise InputError(
            f"--summary {path}: not a liveness summary ({type(exc).__name__}: {exc})"
        ) from exc


@click.command(name="report")
@click.argument("scans", nargs=-1)
@click.option("-o", "--output", required=True, metavar="FILE", help="The HTML file to write.")
@click.option("--summary", "summary_path", metavar="FILE", help="Use a saved `analyze -o` summary.")
@click.option("-m", "--metadata", metavar="FILE", help="The scan's metadata JSON (scan -m).")
@click.option(
    "--figures-dir",
    metavar="DIR",
    help="Also write every figure as PDF and SVG (one paper column wide) with its data as CSV.",
)
@prefix6_option
@dask_options
@json_option
def command(
    scans: tuple[str, ...],
    output: str,
    summary_path: str | None,
    metadata: str | None,
    figures_dir: str | None,
    prefix6: int,
    workers: int | None,
    dask_address: str | None,
    as_json: bool,
) -> None:
    """Write a self-contained HTML report of SCANS (reply files) or of --summary.

    A SCAN may be ZMap's CSV or JSON output, one file per probe, as FILE:PROBE.
    """
    if bool(scans) == bool(summary_path):
        raise InputError("give reply files (SCAN...) or --summary FILE, not both or neither")
    check_output_file(output, "-o")
    scan_metadata = _load_json(metadata, "--metadata") if metadata else None
    if scan_metadata is not None and not isinstance(scan_metadata, dict):
        raise InputError(f"--metadata {metadata}: not a JSON object")
    if summary_path:
        summary = _load_summary(summary_path)
        with output_file(output, "-o") as temporary:
            _write_from_summary(summary, summary_path, temporary, scan_metadata)
    else:
        summary = summarize_scans(scans, workers, dask_address, prefix6=prefix6)
        probed = (scan_metadata or {}).get("targets_total")
        summary["study_comparison"] = compare(
            summary, None, probed=probed if isinstance(probed, int) else None
        )
        with output_file(output, "-o") as temporary:
            write_report(summary, temporary, scan_metadata)
    figures: list[str] = []
    if figures_dir:
        try:
            figures = [str(path) for path in write_figures(summary, figures_dir)]
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise InputError(f"--figures-dir: the summary cannot be drawn ({exc})") from exc
    if as_json:
        emit_json({"report": output, "inputs": summary["inputs"], "figures": figures})
    else:
        log(
            f"wrote {output}"
            + (f" and {len(figures)} figure files to {figures_dir}" if figures else "")
        )
    fail_on_bad_inputs(summary)
