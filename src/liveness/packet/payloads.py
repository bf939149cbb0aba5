"""Application payloads of the UDP probes: a DNS query and an NTPv4 client request.

Both are built once per scan as templates; the per-target parts (DNS id, NTP transmit
timestamp) are patched into the batch by the probes.
"""

from __future__ import annotations

import struct

from liveness.errors import InputError

__all__ = [
    "DNS_HEADER_LEN",
    "DNS_QTYPES",
    "NTP_LEN",
    "NTP_TRANSMIT_OFF",
    "dns_query",
    "encode_qname",
    "ntp_request",
]

DNS_HEADER_LEN = 12
NTP_LEN = 48
NTP_ORIGIN_OFF = 24
NTP_TRANSMIT_OFF = 40

DNS_QTYPES: dict[str, int] = {
    "A": 1,
    "NS": 2,
    "CNAME": 5,
    "SOA": 6,
    "PTR": 12,
    "MX": 15,
    "TXT": 16,
    "AAAA": 28,
    "SRV": 33,
    "ANY": 255,
}


def encode_qname(name: str) -> bytes:
    """A domain name in DNS wire format; InputError if a label is empty or too long."""
    labels = name.strip(".").split(".") if name.strip(".") else []
    out = bytearray()
    for label in labels:
        try:
            raw = label.encode("ascii") if label.isascii() else label.encode("idna")
        except UnicodeError:
            raise InputError(f"DNS name {name!r}: label {label!r} is not a valid name") from None
        if not 1 <= len(raw) <= 63:
            raise InputError(f"DNS name {name!r}: label {label!r} must have 1 to 63 bytes")
        out += bytes([len(raw)]) + raw
    out += b"\x00"
    if len(out) > 255:
        raise InputError(f"DNS name {name!r} is longer than 255 bytes")
    return bytes(out)


def dns_query(qtype: str, name: str) -> bytes:
    """A recursive (RD) query for ``name``/``qtype`` class IN with id 0 (patched per target)."""
    code = DNS_QTYPES.get(qtype.upper())
    if code is None:
        if qtype.isdigit() and 0 < int(qtype) < 65536:
            code = int(qtype)
        else:
            known = ", ".join(DNS_QTYPES)
            raise InputError(f"DNS query type {qtype!r} unknown (use one of {known} or a number)")
    header = struct.pack("!HHHHHH", 0, 0x0100, 1, 0, 0, 0)
    return header + encode_qname(name) + struct.pack("!HH", code, 1)


def ntp_request() -> bytes:
    """An NTPv4 client-mode request (LI 0, VN 4, mode 3); transmit timestamp patched per target."""
    return bytes([0x23]) + bytes(NTP_LEN - 1)
