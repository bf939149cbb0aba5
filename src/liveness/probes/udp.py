"""The generic UDP probe ``udp:PORT[:PAYLOAD]`` (ZMap's ``udp`` module): one payload to a port.

``PAYLOAD`` is a named payload (:mod:`liveness.packet.udp_payloads`: ``dns``, ``ntp``,
``snmp``, ``ssdp``, ``memcached``, ``portmapper``, ``netbios``, ``coap``), or raw bytes as
ZMap's ``--probe-args`` give them (``hex:HEX``, ``text:TEXT``, ``file:PATH``); without one,
the port's well-known payload. ``PORT`` may be a range ``LO-HI`` (one probe per port).

Token word 1 gives the source port (attempt added), as for ``udp_dns``; a named payload's
per-target fields (DNS id, SNMP request-id, ...) come from the other words, so its replies are
checked statelessly against the token. Any UDP answer from the port to our source port makes
the address application-active; ``app_valid`` is the payload's parser (False for raw bytes).
Probes are named ``udp:PORT:NAME`` (named payloads) or ``udp:PORT`` (raw bytes).
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from liveness.errors import InputError
from liveness.packet.checksum import finish
from liveness.packet.layout import L4_OFF
from liveness.packet.udp_payloads import Patch, UdpPayload, default_payload, parse_payload
from liveness.probes.base import UDP_PAYLOAD_OFF, Probe, UdpProbe, attempt_port
from liveness.probes.context import ScanContext

__all__ = ["PROBE_ID_BASE", "UdpGeneric", "patch_sum"]

PROBE_ID_BASE = 0x20000  # udp:PORT has id PROBE_ID_BASE + PORT
_FAMILIES: dict[str, type[UdpGeneric]] = {}


def patch_sum(values: NDArray[np.uint32], width: int, l4_offset: int) -> NDArray[np.uint32]:
    """The checksum share of a ``width``-byte big-endian field at ``l4_offset`` (either parity)."""
    total = np.zeros(len(values), dtype=np.uint32)
    for i in range(width):
        byte = (values >> np.uint32(8 * (width - 1 - i))) & np.uint32(0xFF)
        total += byte << np.uint32(8) if (l4_offset + i) % 2 == 0 else byte
    return total


def _ports(text: str, where: str) -> list[int]:
    lo_text, _, hi_text = text.partition("-")
    try:
        lo = int(lo_text)
        hi = int(hi_text) if hi_text else lo
    except ValueError:
        raise InputError(f"{where}: {text!r} is not a port or a LO-HI range") from None
    if not 1 <= lo <= hi <= 65535:
        raise InputError(f"{where}: {text!r} must be ports within 1..65535, LO <= HI")
    return list(range(lo, hi + 1))


class UdpGeneric(UdpProbe):
    """A UDP payload to a fixed port. Probes are validated together per payload name (one
    subclass each, made by :meth:`create`), since the payload decides the checks."""

    kind = "udp"
    payload: UdpPayload
    patches: ClassVar[tuple[Patch, ...]] = ()
    fields: ClassVar[dict[str, tuple[str, int]]] = {
        "sport": (">u2", L4_OFF),
        "udp_sum": (">u2", L4_OFF + 6),
    }

    @classmethod
    def create(cls, port: int, payload: UdpPayload) -> UdpGeneric:
        """The probe sending ``payload`` to ``port``."""
        family = _FAMILIES.get(payload.name)
        if family is None:
            fields = dict(UdpGeneric.fields)
            for i, patch in enumerate(payload.patches):
                fmt = ">u2" if patch.width == 2 else ">u4"
                fields[f"patch{i}"] = (fmt, UDP_PAYLOAD_OFF + patch.offset)
            family = type(
                f"UdpGeneric_{payload.name or 'raw'}",
                (UdpGeneric,),
                {"fields": fields, "patches": payload.patches, "__module__": __name__},
            )
            _FAMILIES[payload.name] = family
        return family(port, payload)

    def __init__(self, port: int, payload: UdpPayload) -> None:
        if payload.patches != self.patches:
            raise TypeError("make udp probes with UdpGeneric.create")
        self.target_port = port
        self.payload = payload
        self.probe_id = PROBE_ID_BASE + port
        self.name = f"udp:{port}:{payload.name}" if payload.name else f"udp:{port}"
        super().__init__()

    @classmethod
    def from_spec(cls, args: str, context: dict[str, Any]) -> list[Probe]:
        """``udp:PORT[:PAYLOAD]``, ``PORT`` one port or ``LO-HI``."""
        where = f"--probes: udp:{args if len(args) < 40 else args[:36] + '...'}"
        port_text, sep, spec = args.partition(":")
        if not port_text:
            raise InputError(f"{where}: needs a port, as udp:PORT[:PAYLOAD]")
        ports = _ports(port_text, where)
        chosen = parse_payload(spec, where) if sep else None
        probes: list[Probe] = []
        for port in ports:
            payload = chosen or default_payload(port)
            if payload is None:
                raise InputError(
                    f"{where}: port {port} has no default payload; name one "
                    "(udp:PORT:NAME) or give hex:, text: or file:"
                )
            probes.append(cls.create(port, payload))
        return probes

    @property
    def frame_len(self) -> int:
        return UDP_PAYLOAD_OFF + len(self.payload.data)

    def l4_template(self) -> bytes:
        data = bytearray(self.payload.data)
        for patch in self.patches:  # per-target fields are 0 in the template's checksum
            data[patch.offset : patch.offset + patch.width] = bytes(patch.width)
        return struct.pack("!HHHH", 0, self.target_port, 8 + len(data), 0) + bytes(data)

    def _patch(
        self,
        ctx: ScanContext,
        view: NDArray[np.void],
        tokens: NDArray[np.uint32],
        dst_sum: NDArray[np.uint32],
        l4_sum0: np.uint32,
        attempt: int,
    ) -> None:
        sport = attempt_port(ctx, tokens[:, 1], attempt)
        view["sport"] = sport
        total = l4_sum0 + dst_sum + sport
        for i, patch in enumerate(self.patches):
            values = patch.values(tokens)
            view[f"patch{i}"] = values
            total = total + patch_sum(values, patch.width, 8 + patch.offset)
        view["udp_sum"] = finish(total, udp=True)

    def app_valid(
        self,
        payload: NDArray[np.uint8],
        payload_len: NDArray[np.int64],
        tokens: NDArray[np.uint32],
    ) -> NDArray[np.bool_]:
        return self.payload.valid(payload, payload_len, tokens)
