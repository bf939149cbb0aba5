"""Helpers for the output tests: random but valid reply batches, value comparison.

A plain module (not ``conftest``) so test files and subprocesses import it by a unique name.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from liveness.output.schema import ADDR6, REPLY_CATEGORIES, REPLY_SCHEMA

PROBES = ("icmp_echo", "tcp_syn:22", "tcp_syn:443", "udp_dns", "udp_ntp")
ICMP_TYPES = {
    "echo_reply": 0,
    "icmp_unreach": 3,
    "icmp_time_exceeded": 11,
    "icmp_redirect": 5,
    "icmp_source_quench": 4,
    "icmp_param_problem": 12,
    "icmp_other": 13,
}
ICMP6_TYPES = {
    "echo_reply": 129,
    "icmp_unreach": 1,
    "icmp_time_exceeded": 3,
    "icmp_redirect": 137,
    "icmp_source_quench": 2,  # no such thing in ICMPv6: packet too big stands in
    "icmp_param_problem": 4,
    "icmp_other": 2,
}
IPV6_SHARE = 0.4
"""The share of IPv6 rows in :func:`random_replies` by default."""


def random_ipv6(rng: np.random.Generator, rows: int) -> npt.NDArray[np.uint8]:
    """``rows`` IPv6 addresses (16 bytes each) of every textual shape: zero runs of every length
    and place (and ties), all zeros, no zeros, IPv4-mapped, and repeats."""
    groups = rng.integers(0, 1 << 16, (rows, 8), dtype=np.uint32)
    small = rng.random((rows, 8)) < 0.3
    groups[small] = rng.integers(0, 16, small.sum(), dtype=np.uint32)  # 1-digit groups
    zero = rng.random((rows, 8)) < rng.choice([0.0, 0.3, 0.6, 0.95], rows)[:, None]
    groups[zero] = 0
    mapped = rng.random(rows) < 0.05
    groups[mapped, :5] = 0
    groups[mapped, 5] = 0xFFFF
    documentation = rng.random(rows) < 0.2  # 2001:db8::n, the same few hosts again and again
    groups[documentation] = 0
    groups[documentation, 0], groups[documentation, 1] = 0x2001, 0x0DB8
    groups[documentation, 7] = rng.integers(1, 20, documentation.sum(), dtype=np.uint32)
    return groups.astype(">u2").view(np.uint8).reshape(rows, 16)


def ipv6_array(raw: npt.NDArray[np.uint8], valid: npt.NDArray[np.bool_]) -> pa.Array[Any]:
    """A ``binary(16)`` array of the rows of ``raw``, null where not ``valid``."""
    values = [bytes(row) if ok else None for row, ok in zip(raw, valid, strict=True)]
    return pa.array(values, ADDR6)


def random_replies(
    rows: int,
    seed: int = 0,
    *,
    start_ns: int = 1_700_000_000 * 10**9,
    ipv6_share: float = IPV6_SHARE,
    app: bool = False,
) -> pa.RecordBatch:
    """``rows`` reply records with plausible, seed-determined values, IPv4 and IPv6 mixed
    (``ipv6_share`` of them IPv6: ``af = 6``, ICMPv6 types, ``target``/``responder`` 0); with
    ``app``, application-layer rows with banners (else the app columns hold their defaults, as
    a scan without ``--app-layer`` writes)."""
    rng = np.random.default_rng(seed)
    reply = rng.choice(np.array(REPLY_CATEGORIES), rows)
    ipv6 = rng.random(rows) < ipv6_share
    icmp4 = np.array([ICMP_TYPES.get(r, -1) for r in reply], dtype=np.int16)
    icmp6 = np.array([ICMP6_TYPES.get(r, -1) for r in reply], dtype=np.int16)
    icmp_type = np.where(ipv6, icmp6, icmp4)
    is_error = np.isin(reply, [r for r in ICMP_TYPES if r != "echo_reply"])
    icmp_code = np.where(is_error, rng.integers(0, 16, rows), np.where(icmp_type >= 0, 0, -1))
    target = rng.integers(0, 2**32, rows, dtype=np.uint64).astype(np.uint32)
    router = rng.integers(0, 2**32, rows, dtype=np.uint64).astype(np.uint32)
    from_router = is_error & (rng.random(rows) < 0.5)
    responder = np.where(from_router, router, target)
    target6 = random_ipv6(rng, rows)
    router6 = random_ipv6(rng, rows)
    responder6 = np.where(from_router[:, None], router6, target6)
    columns = {
        "ts": start_ns + np.sort(rng.integers(0, 60 * 10**9, rows)),
        "probe": pa.array(rng.choice(np.array(PROBES), rows)).dictionary_encode(),
        "target": np.where(ipv6, 0, target).astype(np.uint32),
        "responder": np.where(ipv6, 0, responder).astype(np.uint32),
        "reply": pa.array(reply).dictionary_encode(),
        "icmp_type": icmp_type,
        "icmp_code": icmp_code.astype(np.int16),
        "tcp_flags": np.where(reply == "synack", 18, np.where(reply == "rst", 4, 0)).astype(
            np.uint8
        ),
        "ttl": rng.integers(1, 256, rows).astype(np.uint8),
        "ipid": rng.integers(0, 2**16, rows).astype(np.uint16),
        "sport": rng.integers(0, 2**16, rows).astype(np.uint16),
        "dport": rng.integers(0, 2**16, rows).astype(np.uint16),
        "attempt": rng.integers(0, 2, rows).astype(np.uint8),
        "repeat": rng.random(rows) < 0.2,
        "app_valid": rng.random(rows) < 0.1,
        "vp": pa.array(rng.choice(np.array(["vp-a", 'vp "b",x']), rows)).dictionary_encode(),
        "af": np.where(ipv6, 6, 4).astype(np.uint8),
        "target6": ipv6_array(target6, ipv6),
        "responder6": ipv6_array(responder6, ipv6),
        **random_app_columns(rng, reply if app else np.full(rows, "synack")),
    }
    arrays = [pa.array(columns[f.name]).cast(f.type) for f in REPLY_SCHEMA]
    return pa.RecordBatch.from_arrays(arrays, schema=REPLY_SCHEMA)


BANNER_SAMPLES = (
    b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n",
    b"HTTP/1.1 200 OK\r\nServer: a, b\r\n\r\n",
    b"\xff\xfd\x18\xff\xfd\x20\xff\xfb\x01login: ",
    b'\x16\x03\x03\x00\x5a\x02\x00\x00\x56\x03\x03\x00"\\\n',
)


def random_app_columns(rng: np.random.Generator, reply: np.ndarray) -> dict[str, object]:
    """``app_active``, ``app_proto``, ``banner`` consistent with ``reply``: banners (some with
    commas, quotes, newlines and every byte value) on ``app_data`` rows, null elsewhere. (A
    banner is never empty: an ``app_data`` row carries payload; CSV writes null and empty
    alike.)"""
    rows = len(reply)
    data = reply == "app_data"
    pick = rng.integers(0, len(BANNER_SAMPLES) + 1, rows)
    noise = [bytes(rng.integers(0, 256, 40, dtype=np.uint8)) for _ in range(8)]
    samples = [*BANNER_SAMPLES, *noise]
    banners = [samples[p % len(samples)] if d else None for p, d in zip(pick, data, strict=True)]
    protos = np.array(["", "http", "tls", "ssh", "telnet", "text", "binary"])
    return {
        "app_active": data | (reply == "app_ack"),
        "app_proto": pa.array(np.where(data, protos[pick % len(protos)], "")).dictionary_encode(),
        "banner": pa.array(banners, pa.binary()),
    }


def address_text(value: int | bytes | None) -> str | None:
    """The oracle for address text: Python's ``ipaddress``, with IPv4-mapped IPv6 addresses in
    RFC 5952 section 5's mixed notation (as Python 3.13 prints them; 3.11 prints hex)."""
    if value is None:
        return None
    if isinstance(value, int):
        return str(ipaddress.IPv4Address(value))
    address = ipaddress.IPv6Address(value)
    mapped = address.ipv4_mapped
    return str(address) if mapped is None else f"::ffff:{mapped}"


def row_address(row: dict[str, Any], name: str) -> str:
    """The text of a reply row's ``target`` or ``responder``, whichever its family."""
    text = address_text(row[name + "6"] if row["af"] == 6 else row[name])
    assert text is not None
    return text


def same_rows(left: pa.Table, right: pa.Table) -> bool:
    """Equal reply rows (dictionary columns compared by value, whatever their dictionaries)."""
    plain = pa.schema(
        [(f.name, pa.string() if pa.types.is_dictionary(f.type) else f.type) for f in REPLY_SCHEMA]
    )
    return bool(left.cast(plain).equals(right.cast(plain)))
