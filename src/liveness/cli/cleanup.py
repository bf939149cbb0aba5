"""``liveness cleanup``: undo what a killed scan left on this machine (the ``--app-layer`` RST
guard), in the network namespace it is run in.

A scan removes its guard on every way out, and its keeper process removes it when the scan dies;
this is for the rest (the keeper killed too, e.g. ``kill -9`` of the whole process group). With
``-o`` (or ``--checkpoint``) it removes the guard that scan's checkpoint records; always, every
guard of this namespace whose keeper is gone. A guard whose keeper still runs belongs to a
running scan and is left alone.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from liveness.cli._common import emit_json, json_option, log
from liveness.errors import RunError

__all__ = ["command"]


@click.command(name="cleanup")
@click.option(
    "-o", "--output-file", help="The scan's output: clean up what its checkpoint records."
)
@click.option("--checkpoint", help="The scan's checkpoint path (default: OUTPUT.checkpoint).")
@json_option
def command(output_file: str | None, checkpoint: str | None, as_json: bool) -> None:
    """Remove the RST guards that killed --app-layer scans left in this network namespace."""
    from liveness.scan.loop import default_checkpoint
    from liveness.scan.rst_guard import find_guards, remove_recorded, remove_stale_guards

    if os.geteuid() != 0:
        raise RunError("liveness cleanup needs root (CAP_NET_ADMIN) to change nftables")
    removed: list[str] = []
    if checkpoint is None and output_file is not None:
        checkpoint = default_checkpoint(output_file)
    if checkpoint is not None:
        record = Path(f"{checkpoint}.guard.json")
        before = set(find_guards())
        if record.exists() and remove_recorded(record):
            removed.extend(sorted(before - set(find_guards())))
    removed.extend(remove_stale_guards())
    running = sorted(find_guards())
    result = {"removed": removed, "left_to_running_scans": running}
    if as_json:
        emit_json(result)
        return
    log(
        f"liveness: removed {len(removed)} RST guard(s)"
        + (f": {', '.join(removed)}" if removed else "")
        + (f"; {len(running)} belong to running scans: {', '.join(running)}" if running else "")
    )
