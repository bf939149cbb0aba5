"""Where a result goes, decided once before the first packet, so nothing is clobbered.

A scan's output path may name a regular file (new or old), a symlink, a device such as
``/dev/null``, a FIFO, or ``-`` (stdout). Only a regular file may be replaced by rename, and only
once the new result is complete: until then rows live in a working file beside it (a Parquet
journal, or ``PATH.partial`` for text), so an interrupted or failed scan never empties the result
of an earlier one. A symlink is followed (its target is the file written; the link stays). A
device, FIFO or socket is written as a stream, in place, and nothing is put beside it: working
files and the checkpoint go to a private scratch directory, and such a scan cannot be resumed.

:func:`check_writable` is the same check for the other outputs (``-m``, ``-u``, ``--pcap-out``):
called before the first packet, it turns "the metadata could not be written after a one-hour
scan" into a one-line error before anything was sent.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from typing import Literal

from liveness.errors import InputError

__all__ = ["Destination", "check_writable", "resolve_destination", "write_result_file"]

Kind = Literal["file", "stream", "stdout"]


@dataclass(frozen=True)
class Destination:
    """A resolved output: ``path`` to write (symlinks followed), its ``kind``, and ``scratch``,
    the directory for working files and the checkpoint (beside a file, private otherwise)."""

    given: str
    path: str
    kind: Kind
    scratch: str

    @property
    def resumable(self) -> bool:
        """Only a regular file keeps its working files and checkpoint where a resume finds them."""
        return self.kind == "file"

    def beside(self, suffix: str) -> str:
        """A working file for this output: ``PATH+suffix`` beside a file, else in scratch."""
        if self.kind == "file":
            return self.path + suffix
        return os.path.join(self.scratch, "output" + suffix)

    def remove_scratch(self) -> None:
        """Delete a private scratch directory (a file's scratch is its own directory: kept)."""
        if self.kind != "file":
            shutil.rmtree(self.scratch, ignore_errors=True)

    def release(self) -> None:
        """At the end of a run: remove the private scratch directory unless a working file
        there still holds rows (a result that could not be written; the error names it)."""
        if self.kind == "file" or not os.path.isdir(self.scratch):
            return
        kept = [
            name
            for name in os.listdir(self.scratch)
            if name.endswith((".journal", ".partial"))
            and os.path.getsize(os.path.join(self.scratch, name)) > 0
        ]
        if not kept:
            self.remove_scratch()


def _refuse(flag: str, path: str, why: str) -> InputError:
    return InputError(f"{flag}: {path}: {why}")


def check_writable(path: str, flag: str) -> os.stat_result | None:
    """Fail now, with one line, if ``path`` cannot be written; returns its stat (None if new).

    A missing parent directory, a directory at the path, a read-only file or directory, and a
    path whose parent is not a directory are refused. Devices and FIFOs must be writable.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise _refuse(flag, path, exc.strerror or str(exc)) from None
    if info is not None:
        if stat.S_ISDIR(info.st_mode):
            raise _refuse(flag, path, "is a directory")
        if not os.access(path, os.W_OK):
            raise _refuse(flag, path, "is not writable")
        if stat.S_ISREG(info.st_mode):
            parent = os.path.dirname(os.path.realpath(path)) or "."
            if not os.access(parent, os.W_OK | os.X_OK):
                raise _refuse(flag, path, f"its directory {parent} is not writable")
        return info
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise _refuse(flag, path, f"no such directory {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise _refuse(flag, path, f"its directory {parent} is not writable")
    return None


def resolve_destination(path: str, flag: str = "-o/--output-file") -> Destination:
    """Decide how ``path`` is written (see the module docstring); errors are one line."""
    if path == "-":
        return Destination(path, path, "stdout", tempfile.mkdtemp(prefix="liveness-scan-"))
    real = os.path.realpath(path)
    info = check_writable(real, flag)
    if info is not None and not stat.S_ISREG(info.st_mode):
        return Destination(path, real, "stream", tempfile.mkdtemp(prefix="liveness-scan-"))
    return Destination(path, real, "file", os.path.dirname(real) or ".")


def write_result_file(path: str, text: str, flag: str) -> None:
    """Write a small result (metadata, a summary): a regular file is replaced atomically once
    the new text is on disk, a device or FIFO is written in place; errors are one line."""
    from liveness.errors import RunError

    real = os.path.realpath(path)
    try:
        info = check_writable(real, flag)
        if info is not None and not stat.S_ISREG(info.st_mode):
            with open(real, "w") as stream:
                stream.write(text)
            return
        temporary = f"{real}.tmp{os.getpid()}"
        try:
            with open(temporary, "w") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, real)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    except OSError as exc:
        raise RunError(f"{flag}: {path}: cannot write: {exc.strerror or exc}") from None
