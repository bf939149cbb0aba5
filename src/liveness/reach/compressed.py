"""Read an input file, gzip, bzip2 or xz compressed or not (told by its first bytes)."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
from pathlib import Path

from liveness.errors import InputError
from liveness.targets.inputs import check_input_file

__all__ = ["read_bytes", "read_head"]

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
)


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The decompressed content of ``path``; InputError naming the file if unreadable."""
    check_input_file(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        if raw.startswith(b"\x1f\x8b"):
            return gzip.decompress(raw)
        if raw.startswith(b"BZh"):
            return bz2.decompress(raw)
        if raw.startswith(b"\xfd7zXZ\x00"):
            return lzma.decompress(raw)
    except (OSError, EOFError, ValueError, lzma.LZMAError) as exc:
        kind = next(name for magic, name in _MAGIC if raw.startswith(magic))
        raise InputError(f"{path}: corrupt {kind} data: {exc}") from exc
    return raw


def read_head(path: str | os.PathLike[str], size: int = 4096) -> bytes:
    """The first ``size`` decompressed bytes of ``path`` (without reading the whole file)."""
    check_input_file(path)
    try:
        with open(path, "rb") as raw:
            magic = raw.read(6)
        if magic.startswith(b"\x1f\x8b"):
            with gzip.open(path, "rb") as stream:
                return stream.read(size)
        if magic.startswith(b"BZh"):
            with bz2.open(path, "rb") as stream:
                return stream.read(size)
        if magic.startswith(b"\xfd7zXZ\x00"):
            with lzma.open(path, "rb") as stream:
                return stream.read(size)
        with open(path, "rb") as stream:
            return stream.read(size)
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from exc
