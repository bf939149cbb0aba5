"""Named UDP payloads for the generic ``udp:PORT`` probe, one module per protocol, found by name.

Each module defines ``PAYLOAD``, a :class:`UdpPayload`: the bytes sent (per-target fields 0),
the per-target fields filled from the validation token (:class:`Patch`, e.g. a DNS id or an
SNMP request-id) and, where the protocol has one, a vectorised reply check (``check``) that
says which answers are valid messages of the protocol answering our query. A payload given
as raw bytes (``hex:``, ``text:``, ``file:``, as ZMap's udp module takes them) has no
per-target fields and no check: any answer to it is application-active, none ``app_valid``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from liveness.errors import InputError

__all__ = [
    "MAX_PAYLOAD",
    "Patch",
    "UdpPayload",
    "be16",
    "be32",
    "default_payload",
    "parse_payload",
    "payloads",
    "starts_with",
]

MAX_PAYLOAD = 1452
"""The largest payload (a 1500-byte MTU in both families: 1500 - 40 - 8)."""

Check = Callable[[NDArray[np.uint8], NDArray[np.int64], NDArray[np.uint32]], NDArray[np.bool_]]


@dataclass(frozen=True)
class Patch:
    """A per-target field: ``width`` (2 or 4) bytes at payload ``offset``, big-endian, the
    token's word ``word`` and-ed with ``mask`` and or-ed with ``bits``."""

    offset: int
    width: int
    word: int
    mask: int = 0xFFFFFFFF
    bits: int = 0

    def values(self, tokens: NDArray[np.uint32]) -> NDArray[np.uint32]:
        """The field's value for each token."""
        mask = self.mask & (0xFFFF if self.width == 2 else 0xFFFFFFFF)
        value: NDArray[np.uint32] = (tokens[:, self.word] & np.uint32(mask)) | np.uint32(self.bits)
        return value


@dataclass(frozen=True)
class UdpPayload:
    """A UDP payload: ``name`` ("" for raw bytes), its well-known ``port``, the bytes, the
    per-target fields and the reply check (None: no parser)."""

    name: str
    data: bytes
    port: int | None = None
    description: str = ""
    patches: tuple[Patch, ...] = ()
    check: Check | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for patch in self.patches:
            if patch.width not in (2, 4) or patch.offset + patch.width > len(self.data):
                raise ValueError(f"payload {self.name}: patch {patch} outside the payload")

    def valid(
        self, payload: NDArray[np.uint8], payload_len: NDArray[np.int64], tokens: NDArray[np.uint32]
    ) -> NDArray[np.bool_]:
        """Which replies are valid answers of the payload's protocol (all False without a
        parser). ``payload``: ``(m, k)`` first bytes of each reply, zero-padded."""
        if self.check is None:
            return np.zeros(len(payload_len), dtype=bool)
        return self.check(payload, payload_len, tokens)


def payloads() -> dict[str, UdpPayload]:
    """Every named payload by name (importing this package's modules finds them)."""
    found: dict[str, UdpPayload] = {}
    for module in pkgutil.iter_modules(__path__):
        if module.name.startswith("_"):
            continue
        payload = getattr(importlib.import_module(f"{__name__}.{module.name}"), "PAYLOAD", None)
        if isinstance(payload, UdpPayload):
            found[payload.name] = payload
    return dict(sorted(found.items()))


def default_payload(port: int) -> UdpPayload | None:
    """The named payload of a well-known port (53 dns, 161 snmp, ...), if any."""
    for payload in payloads().values():
        if payload.port == port:
            return payload
    return None


def parse_payload(spec: str, where: str) -> UdpPayload:
    """A payload from ``NAME``, ``hex:HEX``, ``text:TEXT`` or ``file:PATH`` (a ZMap ``.pkt``
    file as it is); InputError (prefixed by ``where``) on anything else."""
    form, sep, rest = spec.partition(":")
    if form in ("template", "template-fields"):
        raise InputError(
            f"{where}: ZMap's template payloads (per-target fields) are not supported; "
            "use file:, hex:, text: or a named payload"
        )
    if not sep:
        known = payloads()
        if spec in known:
            return known[spec]
        names = ", ".join(known)
        raise InputError(
            f"{where}: unknown UDP payload {spec[:40]!r} (named: {names}; or hex:, text:, file:)"
        )
    if form == "hex":
        text = rest.strip()
        if text[:2].lower() == "0x":
            text = text[2:]
        try:
            data = bytes.fromhex(text)
        except ValueError:
            shown = rest if len(rest) < 40 else rest[:36] + "..."
            raise InputError(
                f"{where}: hex:{shown!r} is not an even number of hex digits"
            ) from None
    elif form == "text":
        data = rest.encode("utf-8", "surrogateescape")
    elif form == "file":
        try:
            data = Path(rest).read_bytes()
        except OSError as exc:
            raise InputError(f"{where}: cannot read {rest!r}: {exc.strerror or exc}") from None
    else:
        raise InputError(
            f"{where}: {form[:20]!r}: is not NAME, hex:HEX, text:TEXT or file:PATH (ZMap's forms)"
        )
    if len(data) > MAX_PAYLOAD:
        raise InputError(f"{where}: the payload has {len(data)} bytes; at most {MAX_PAYLOAD}")
    return UdpPayload("", data)


# -- small vectorised readers for the checks --------------------------------------------------


def be16(payload: NDArray[np.uint8], off: int) -> NDArray[np.uint32]:
    """The big-endian 16-bit value at ``off`` of each row."""
    value: NDArray[np.uint32] = (payload[:, off].astype(np.uint32) << np.uint32(8)) | payload[
        :, off + 1
    ]
    return value


def be32(payload: NDArray[np.uint8], off: int) -> NDArray[np.uint32]:
    """The big-endian 32-bit value at ``off`` of each row."""
    return (be16(payload, off) << np.uint32(16)) | be16(payload, off + 2)


def starts_with(
    payload: NDArray[np.uint8], payload_len: NDArray[np.int64], prefix: bytes, off: int = 0
) -> NDArray[np.bool_]:
    """Rows whose bytes at ``off`` are ``prefix`` (and long enough to hold it)."""
    want = np.frombuffer(prefix, dtype=np.uint8)
    end = off + len(want)
    if payload.shape[1] < end:
        return np.zeros(len(payload_len), dtype=bool)
    same: NDArray[np.bool_] = (payload[:, off:end] == want).all(axis=1) & (payload_len >= end)
    return same
