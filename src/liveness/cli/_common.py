"""Helpers shared by the subcommands: results on stdout, progress on stderr, and outputs that are
checked before any work and replaced only once complete.

- :func:`emit_json` and :func:`echo` write results to stdout; a stdout that cannot be written
  (``> /dev/full``, a closed pipe) becomes one error naming stdout.
- :func:`check_output_file` refuses, before the work, an output path that cannot be written (a
  directory, a read-only directory, a missing one); :func:`output_file` gives a temporary path
  that replaces the output only when the block succeeds (old file intact, no temporary left).
- :func:`check_output_dir` is the same check for an output directory.

Errors whose cause is the path the user gave (read-only, missing directory) exit 2; others
(a full disk) exit 1.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from liveness.errors import InputError, LivenessError, OutputClosed, RunError

__all__ = [
    "FiniteFloat",
    "check_output_dir",
    "check_output_file",
    "echo",
    "emit_json",
    "flush_stdout",
    "json_option",
    "log",
    "output_error",
    "output_file",
]

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the result as one JSON object on stdout."
)

# errno values that mean "this path is not one you can write", not "the write failed"
_USAGE_ERRNOS = frozenset(
    {
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.ELOOP,
        errno.ENAMETOOLONG,
    }
)


class FiniteFloat(click.FloatRange):
    """A float option (optionally bounded, as ``click.FloatRange``) that refuses nan and inf."""

    name = "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        result = super().convert(value, param, ctx)
        if not math.isfinite(result):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return result


def _default(value: Any) -> Any:
    """Make numpy scalars and arrays, sets and paths JSON-serialisable."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)


def _stdout_error(exc: OSError) -> LivenessError:
    """The error for a failed write to stdout; stdout then points at /dev/null so that the
    interpreter's last flush cannot print a second error.

    A reader that closed the pipe (``| head``) has seen enough: exit quietly with 141, the
    status of a process killed by SIGPIPE.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
    if isinstance(exc, BrokenPipeError):
        raise SystemExit(OutputClosed.exit_code)
    return RunError(f"stdout: cannot write the result: {exc.strerror or exc}")


def echo(text: str = "") -> None:
    """Print a result line (``text`` and a newline) on stdout."""
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except OSError as exc:
        raise _stdout_error(exc) from None


def flush_stdout() -> None:
    """Flush stdout (results printed by other means); a failure names stdout."""
    try:
        sys.stdout.flush()
    except OSError as exc:
        raise _stdout_error(exc) from None
    except ValueError:  # stdout already closed
        pass


def emit_json(result: Any) -> None:
    """Print ``result`` as one JSON object on stdout."""
    echo(json.dumps(result, default=_default, sort_keys=False))


def log(message: str) -> None:
    """A progress or log line on stderr (stdout is kept for results)."""
    click.echo(message, err=True)


def output_error(flag: str, path: str, exc: OSError) -> LivenessError:
    """One line for an output that could not be written: exit 2 when the path is at fault."""
    kind = InputError if exc.errno in _USAGE_ERRNOS else RunError
    return kind(f"{flag} {path}: cannot write: {exc.strerror or exc}")


def _why_unwritable(path: str) -> str | None:
    """Why ``path`` (a file or directory) cannot be written, or None if it can."""
    if os.access(path, os.W_OK):
        return None
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "read-only file system"
    except OSError:
        pass
    return "permission denied"


def check_output_file(path: str, flag: str) -> tuple[str, bool]:
    """Fail now (exit 2, one line) unless an output file can be written at ``path``.

    Returns (the path to write, whether it is a stream). A symlink is followed (its target is
    written; the link stays). A character device or FIFO (``/dev/null``) is a stream, written
    in place; a directory, a block device or a socket is refused, as is a file or directory
    that cannot be written (read-only, or a missing directory).
    """
    real = os.path.realpath(path)
    try:
        mode: int | None = os.stat(real).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise InputError(f"{flag} {path}: {exc.strerror or exc}") from None
    if mode is not None:
        if stat.S_ISDIR(mode):
            raise InputError(f"{flag} {path}: is a directory; give a file name")
        stream = stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)
        if not stream and not stat.S_ISREG(mode):
            raise InputError(f"{flag} {path}: is not a regular file")
        why = _why_unwritable(real)
        if why:
            raise InputError(f"{flag} {path}: cannot write: {why}")
        if stream:
            return real, True
    parent = os.path.dirname(real)
    if not os.path.isdir(parent):
        raise InputError(f"{flag} {path}: no such directory {parent}")
    why = _why_unwritable(parent)
    if why:
        raise InputError(f"{flag} {path}: cannot write in {parent}: {why}")
    return real, False


@contextmanager
def output_file(path: str, flag: str) -> Iterator[str]:
    """A temporary path to write an output to; it becomes ``path`` when the block succeeds.

    The temporary lives in a private directory beside the target (removed in every case), so a
    failure leaves an earlier file intact and nothing behind. A stream (``/dev/null``, a FIFO)
    gets the finished bytes copied in.
    """
    real, stream = check_output_file(path, flag)
    try:
        scratch = tempfile.mkdtemp(
            prefix=".liveness-", dir=None if stream else os.path.dirname(real)
        )
    except OSError as exc:
        raise output_error(flag, path, exc) from None
    temporary = os.path.join(scratch, os.path.basename(real) or "output")
    try:
        yield temporary
        if stream:
            with open(temporary, "rb") as source, open(real, "wb") as sink:
                shutil.copyfileobj(source, sink)
        else:
            if os.path.exists(real):
                shutil.copymode(real, temporary)
            os.replace(temporary, real)
    except OSError as exc:
        raise output_error(flag, path, exc) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def check_output_dir(path: str, flag: str) -> None:
    """Fail now (exit 2, one line) unless ``path`` is, or can be made as, a writable directory."""
    real = os.path.realpath(path)
    if os.path.lexists(real) and not os.path.isdir(real):
        raise InputError(f"{flag} {path}: is not a directory")
    existing = real
    while not os.path.isdir(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        if os.path.lexists(parent) and not os.path.isdir(parent):
            raise InputError(f"{flag} {path}: {parent} is not a directory")
        existing = parent
    why = _why_unwritable(existing)
    if why:
        where = "" if existing == real else f" in {existing}"
        raise InputError(f"{flag} {path}: cannot write{where}: {why}")
