"""Helpers for errors about user-supplied files: a short excerpt of a bad value, and a check that
an input path names something a reader can read to its end.

They live at the bottom layer (targets) so every reader above, and the CLI, can use them.
"""

from __future__ import annotations

import os
import stat

from liveness.errors import InputError

__all__ = ["EXCERPT_CHARS", "check_input_file", "excerpt"]

EXCERPT_CHARS = 60


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """``repr`` of ``value`` cut to about ``limit`` characters (``'xxx…'``), for error messages.

    A 2 MB line must not come back as a 2 MB error: quote its start only.
    """
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return repr(text)
    return repr(text[:limit])[:-1] + f"…' ({len(text)} characters)"


def check_input_file(
    path: str | os.PathLike[str], where: str | None = None, what: str = ""
) -> None:
    """Raise InputError unless ``path`` is a regular file or a pipe (what a reader can finish).

    Refused: a missing path, a directory, a device (``/dev/zero`` never ends; ``/dev/null`` is
    no file of data either) and a socket. ``where`` prefixes the message (a flag), ``what``
    names the kind of file (``census``); the path is always named.
    """
    name = os.fspath(path)
    prefix = f"{where} {name}" if where else name
    reading = f"cannot read {what}" if what else "cannot read"
    try:
        mode = os.stat(name).st_mode
    except FileNotFoundError:
        raise InputError(f"{prefix}: {reading}: no such file") from None
    except OSError as exc:
        raise InputError(f"{prefix}: {reading}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{prefix}: is a directory, not a file")
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        raise InputError(f"{prefix}: is a device, not a file")
    if stat.S_ISSOCK(mode):
        raise InputError(f"{prefix}: is a socket, not a file")
