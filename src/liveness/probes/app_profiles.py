"""Application-layer profiles for TCP (``--app-layer``): what to send after a SYN-ACK, and what
the bytes that come back look like.

A *profile* is what the scan's stateless follow-up to a SYN-ACK carries: ``http`` (a GET for
``/`` with the target as Host), ``tls`` (a ClientHello), ``banner`` (nothing: the server speaks
first, as SSH and Telnet do). A server that waits for the client (HTTP, TLS) says nothing to
``banner``; one that speaks first answers whatever it gets, so a sending profile finds both.

The payload's length must be the same for every target of a family, because the host's
acknowledgement of it (``our ISN + 1 + length``) is validated statelessly: the Host value is
padded with spaces to the longest address text (15 characters for IPv4, 41 for ``[IPv6]``),
which HTTP ignores (trailing whitespace is not part of a field value, RFC 9110 5.5).

:func:`recognise` names the protocol of each answer from its first bytes, whatever the port:
an HTTP/1.x status line, a TLS record (handshake or alert, versions SSL 3.0 to TLS 1.3), an
``SSH-`` banner, Telnet option negotiation (IAC WILL/WONT/DO/DONT), other printable text, or
other binary. :func:`speaks_profile` tells whether that is the protocol the profile asked for.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from liveness.errors import InputError
from liveness.output.addresses import format_dotted, format_ipv6
from liveness.output.banners import binary_parts

__all__ = [
    "APP_PROTOS",
    "DEFAULT_PROFILES",
    "PROFILES",
    "AppLayer",
    "http_request",
    "parse_app_profiles",
    "recognise",
    "speaks_profile",
    "tls_client_hello",
]

PROFILES = ("http", "tls", "banner")
APP_PROTOS = ("", "http", "tls", "ssh", "telnet", "text", "binary")
"""``app_proto`` values, by code: ``""`` for no payload, ``text``/``binary`` for a payload of no
known protocol (printable or not)."""
_CODE = {name: code for code, name in enumerate(APP_PROTOS)}
DEFAULT_PROFILES: Mapping[int, str] = {
    22: "banner",
    23: "banner",
    80: "http",
    443: "tls",
    7547: "http",
}
"""The profile of each of the study's ports; every other port (``tcp_syn:random`` included, so
that tarpits are asked for data too) gets ``http``."""
OTHER_PORTS_PROFILE = "http"
_HOST_WIDTH = {4: 15, 6: 41}
_SPEAKS: dict[str, tuple[str, ...]] = {
    "http": ("http",),
    "tls": ("tls",),
    "banner": ("ssh", "telnet", "text"),
}


def http_request_prefix() -> tuple[bytes, bytes]:
    """The GET's bytes before and after the Host value."""
    return b"GET / HTTP/1.1\r\nHost: ", (
        b"\r\nUser-Agent: liveness\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )


def http_request(hosts: NDArray[np.uint8], af: int) -> NDArray[np.uint8]:
    """The GET of each target: ``hosts`` is ``(n, width)`` padded host text (see
    :func:`host_texts`); returns ``(n, length)`` request bytes."""
    before, after = http_request_prefix()
    n = hosts.shape[0]
    head = np.broadcast_to(np.frombuffer(before, np.uint8), (n, len(before)))
    tail = np.broadcast_to(np.frombuffer(after, np.uint8), (n, len(after)))
    assert hosts.shape[1] == _HOST_WIDTH[af]
    return np.concatenate([head, hosts, tail], axis=1)


def host_texts(targets: NDArray[Any]) -> NDArray[np.uint8]:
    """Each target as Host text padded with spaces: IPv4 dotted (uint32 input), or ``[IPv6]``
    (``(n, 16)`` uint8 input)."""
    six = targets.ndim == 2
    if six:
        raw = np.ascontiguousarray(targets, dtype=np.uint8).tobytes()
        text = format_ipv6(
            pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(16), len(targets), [None, pa.py_buffer(raw)]
            )
        )
    else:
        text = format_dotted(np.asarray(targets, dtype=np.uint32))
    width = _HOST_WIDTH[6 if six else 4]
    n = len(text)
    offsets, data = binary_parts(text)
    lengths = np.diff(offsets)
    out = np.full((n, width), ord(" "), np.uint8)
    inner = 1 if six else 0
    if six:
        out[:, 0] = ord("[")
        out[np.arange(n), lengths + 1] = ord("]")
    columns = np.arange(width - 2 * inner)
    mask = columns < lengths[:, None]
    source = offsets[:-1, None] + columns
    rows, cols = np.nonzero(mask)
    out[rows, cols + inner] = data[source[rows, cols]]
    return out


def tls_client_hello() -> bytes:
    """A TLS 1.2 ClientHello a TLS 1.0-1.3 server answers (with a ServerHello, a
    HelloRetryRequest or an alert): common ECDHE and RSA suites, no SNI (the target is an
    address), a fixed client random (the scan keeps no state to check it against)."""
    suites = [
        0xC02B,
        0xC02F,
        0xC02C,
        0xC030,
        0xCCA9,
        0xCCA8,
        0xC013,
        0xC014,
        0x009C,
        0x009D,
        0x002F,
        0x0035,
        0x1301,
        0x1302,
        0x1303,
        0x00FF,
    ]
    groups = [0x001D, 0x0017, 0x0018]
    signatures = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601, 0x0201]

    def extension(kind: int, body: bytes) -> bytes:
        return struct.pack("!HH", kind, len(body)) + body

    def u16_list(values: list[int]) -> bytes:
        return struct.pack("!H", 2 * len(values)) + b"".join(struct.pack("!H", v) for v in values)

    extensions = b"".join(
        [
            extension(0x000A, u16_list(groups)),  # supported_groups
            extension(0x000B, b"\x01\x00"),  # ec_point_formats: uncompressed
            extension(0x000D, u16_list(signatures)),  # signature_algorithms
            extension(0x0017, b""),  # extended_master_secret
        ]
    )
    body = (
        b"\x03\x03"
        + bytes(range(32))  # client random
        + b"\x00"  # no session id
        + u16_list(suites)
        + b"\x01\x00"  # compression: null
        + struct.pack("!H", len(extensions))
        + extensions
    )
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake


def payload_length(profile: str, af: int) -> int:
    """Bytes the profile sends (the same for every target of family ``af``)."""
    if profile == "http":
        before, after = http_request_prefix()
        return len(before) + _HOST_WIDTH[af] + len(after)
    if profile == "tls":
        return len(TLS_HELLO)
    return 0


TLS_HELLO = tls_client_hello()


@dataclass(frozen=True)
class AppLayer:
    """The application-layer settings of one scan: a profile per TCP port, the wait for an
    answer, and how many bytes of it are kept."""

    profiles: Mapping[int, str] = field(default_factory=lambda: dict(DEFAULT_PROFILES))
    timeout_s: float = 4.0
    banner_bytes: int = 256

    def __post_init__(self) -> None:
        if not 0 < self.timeout_s <= 120:
            raise InputError(f"--app-timeout {self.timeout_s}: must be above 0 and at most 120 s")
        if not 1 <= self.banner_bytes <= 1024:
            raise InputError(f"--banner-bytes {self.banner_bytes}: must be 1..1024")
        for port, profile in self.profiles.items():
            if profile not in PROFILES:
                raise InputError(
                    f"--app-profile {port}:{profile}: profiles are {', '.join(PROFILES)}"
                )

    def profile(self, port: int) -> str:
        """The profile of one destination port."""
        return self.profiles.get(port, OTHER_PORTS_PROFILE)

    def profile_codes(self, ports: NDArray[np.integer[Any]]) -> NDArray[np.int64]:
        """Each port's profile as its index in :data:`PROFILES`."""
        table = np.full(65536, PROFILES.index(OTHER_PORTS_PROFILE), np.int64)
        for port, profile in self.profiles.items():
            table[port] = PROFILES.index(profile)
        codes: NDArray[np.int64] = table[np.asarray(ports, np.int64)]
        return codes

    def payload_lengths(self, ports: NDArray[np.integer[Any]], af: int) -> NDArray[np.int64]:
        """Bytes each port's profile sends to a target of family ``af``."""
        lengths = np.array([payload_length(p, af) for p in PROFILES], np.int64)
        result: NDArray[np.int64] = lengths[self.profile_codes(ports)]
        return result


def parse_app_profiles(text: str | None, flag: str = "--app-profile") -> dict[int, str]:
    """The profile table: the defaults changed by ``PORT:PROFILE,...``."""
    profiles = dict(DEFAULT_PROFILES)
    if not text:
        return profiles
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        port_text, sep, profile = item.partition(":")
        if not sep or not port_text.strip().isdigit():
            raise InputError(f"{flag}: {item!r} is not PORT:PROFILE (e.g. 8080:http)")
        port = int(port_text)
        if not 1 <= port <= 65535:
            raise InputError(f"{flag}: port {port} outside 1..65535")
        profile = profile.strip()
        if profile not in PROFILES:
            raise InputError(
                f"{flag}: unknown profile {profile!r}; profiles: {', '.join(PROFILES)}"
            )
        profiles[port] = profile
    return profiles


def _starts(
    payload: NDArray[np.uint8], lengths: NDArray[np.int64], prefix: bytes
) -> NDArray[np.bool_]:
    want = np.frombuffer(prefix, np.uint8)
    if payload.shape[1] < want.size:
        return np.zeros(payload.shape[0], bool)
    hit: NDArray[np.bool_] = (payload[:, : want.size] == want).all(axis=1) & (lengths >= want.size)
    return hit


_PRINTABLE = np.zeros(256, bool)
_PRINTABLE[0x20:0x7F] = True
_PRINTABLE[[0x09, 0x0A, 0x0D]] = True


def recognise(payload: NDArray[np.uint8], lengths: NDArray[np.int64]) -> NDArray[np.int64]:
    """The :data:`APP_PROTOS` code of each answer's first bytes (``payload`` ``(n, >= 8)``,
    ``lengths`` the bytes each row holds; 0 where a row holds none)."""
    if payload.shape[1] < 8:
        payload = np.pad(payload, ((0, 0), (0, 8 - payload.shape[1])))
    codes = np.where(lengths > 0, _CODE["binary"], _CODE[""]).astype(np.int64)
    seen = np.minimum(lengths, min(payload.shape[1], 64))
    inside = np.arange(min(payload.shape[1], 64)) < seen[:, None]
    printable = (_PRINTABLE[payload[:, : inside.shape[1]]] | ~inside).all(axis=1)
    codes[printable & (lengths > 0)] = _CODE["text"]
    b0, b1, b2 = payload[:, 0], payload[:, 1], payload[:, 2]
    tls = np.isin(b0, (0x15, 0x16)) & (b1 == 3) & (b2 <= 4) & (lengths >= 5)
    telnet = (b0 == 0xFF) & (b1 >= 251) & (b1 <= 254) & (lengths >= 3)
    for name, hit in (
        ("tls", tls),
        ("telnet", telnet),
        ("ssh", _starts(payload, lengths, b"SSH-")),
        ("http", _starts(payload, lengths, b"HTTP/1.")),
    ):
        codes[hit] = _CODE[name]
    return codes


def speaks_profile(codes: NDArray[np.int64], profiles: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Whether each answer (an :data:`APP_PROTOS` code) speaks the protocol its profile (a
    :data:`PROFILES` index) asked for."""
    table = np.zeros((len(PROFILES), len(APP_PROTOS)), bool)
    for index, profile in enumerate(PROFILES):
        for proto in _SPEAKS[profile]:
            table[index, _CODE[proto]] = True
    valid: NDArray[np.bool_] = table[profiles, codes]
    return valid
