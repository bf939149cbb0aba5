"""Ground truth written by ``liveness testbed truth``: what the testbed is built to answer.

``TRUTH_SCHEMA``: one row per (address, probe) that gets a reply at all (silence is the absence
of a row). Addresses are represented as in the reply record (``liveness.output.schema``).

- ``target`` uint32, ``probe`` string (same names as the reply record, for both families:
  ``icmp_echo``, ``tcp_syn:22`` ..., ``tcp_syn:random``, ``udp_dns``, ``udp_ntp``), ``vp``
  string (the VP this holds for; the same answer from every VP is one row per VP).
- ``reply`` string: a reply category of the reply record (``echo_reply``, ``synack``, ``rst``,
  ``udp``, ``icmp_unreach``, ``icmp_time_exceeded``, ...; an ICMPv6 destination unreachable is
  ``icmp_unreach``, a hop limit exceeded ``icmp_time_exceeded``).
- ``responder`` uint32: who answers (the target, or a router).
- ``icmp_code`` int16: -1 when not ICMP; the ICMPv6 code on IPv6 rows.
- ``app_valid`` bool: a real server answers the application probe.
- ``loss`` float64: the loss probability the spec injects on this path (0 when none).
- ``af`` uint8: 4 or 6. On IPv6 rows ``target`` and ``responder`` are 0 and the addresses are
  ``target6`` and ``responder6``, fixed-size binary(16) in network byte order (null on IPv4 rows).
  IPv4-only readers keep working from the ``af = 4`` rows; :func:`upgrade_truth` gives files
  written before IPv6 (no ``af``) the new columns.
- ``app_proto`` string: on a ``tcp_syn:PORT`` row, the protocol a real server speaks on that
  port of that address once the handshake completes (``http``: answers a GET with
  ``HTTP/1.x``; ``tls``: answers a ClientHello with a handshake record; ``ssh``: greets with
  ``SSH-2.0-``; ``telnet``: sends IAC option negotiation, then a login prompt), ``""`` where
  nothing answers data: closed ports, open ports without a service (accept, then close),
  tarpits and ACKing middleboxes (``tcp_syn:random`` follows the behaviour's other ports, so
  it is always ``""``), and every non-TCP row. Files written before it read as ``""``.

``SCHEDULE_SCHEMA``: one row per scheduled connectivity event and address family.

- ``kind`` string: ``outage``, ``peninsula`` or ``island``.
- ``scope`` string: the blocks or VP concerned (CIDRs joined by ``,``, or a VP name).
- ``vps_down`` string: the VPs that cannot reach the scope during the event (joined by ``,``).
- ``start``, ``end`` float64: seconds from the testbed's start.
- ``af`` uint8: the family the row cuts (4 or 6; absent in files from before IPv6: 4).

:func:`truth_text` turns a truth table into its textual form (for CSV): addresses as text in
``target`` and ``responder`` (IPv6 compressed as RFC 5952 says), with ``af`` and ``app_proto``.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import numpy as np
import pyarrow as pa

from liveness.output.addresses import format_dotted

__all__ = [
    "ADDR6",
    "SCHEDULE_SCHEMA",
    "TRUTH_SCHEMA",
    "TRUTH_TEXT_SCHEMA",
    "truth_text",
    "upgrade_schedule",
    "upgrade_truth",
]

ADDR6 = pa.binary(16)
"""An IPv6 address column: 16 bytes in network byte order (as the reply record's)."""

_TRUTH_FIELDS: list[pa.Field[pa.DataType]] = [
    pa.field("target", pa.uint32(), nullable=False),
    pa.field("probe", pa.string(), nullable=False),
    pa.field("vp", pa.string(), nullable=False),
    pa.field("reply", pa.string(), nullable=False),
    pa.field("responder", pa.uint32(), nullable=False),
    pa.field("icmp_code", pa.int16(), nullable=False),
    pa.field("app_valid", pa.bool_(), nullable=False),
    pa.field("loss", pa.float64(), nullable=False),
    pa.field("af", pa.uint8(), nullable=False),
    pa.field("target6", ADDR6, nullable=True),
    pa.field("responder6", ADDR6, nullable=True),
    pa.field("app_proto", pa.string(), nullable=False),
]
TRUTH_SCHEMA = pa.schema(_TRUTH_FIELDS)

_TEXT_FIELDS: list[pa.Field[pa.DataType]] = [
    pa.field("target", pa.string(), nullable=False),
    *(f for f in _TRUTH_FIELDS[1:4]),
    pa.field("responder", pa.string(), nullable=False),
    *(f for f in _TRUTH_FIELDS[5:9]),
    _TRUTH_FIELDS[11],
]
TRUTH_TEXT_SCHEMA = pa.schema(_TEXT_FIELDS)

_SCHEDULE_FIELDS: list[pa.Field[pa.DataType]] = [
    pa.field("kind", pa.string(), nullable=False),
    pa.field("scope", pa.string(), nullable=False),
    pa.field("vps_down", pa.string(), nullable=False),
    pa.field("start", pa.float64(), nullable=False),
    pa.field("end", pa.float64(), nullable=False),
    pa.field("af", pa.uint8(), nullable=False),
]
SCHEDULE_SCHEMA = pa.schema(_SCHEDULE_FIELDS)


def upgrade_truth(table: pa.Table) -> pa.Table:
    """A truth table in ``TRUTH_SCHEMA``, also from a file written before IPv6 (IPv4 rows) or
    before ``app_proto`` (``""``)."""
    n = table.num_rows
    if "af" not in table.column_names:
        table = table.append_column("af", pa.array(np.full(n, 4, dtype=np.uint8), pa.uint8()))
    for name in ("target6", "responder6"):
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(n, ADDR6))
    if "app_proto" not in table.column_names:
        table = table.append_column("app_proto", pa.array([""] * n, pa.string()))
    return table.select(TRUTH_SCHEMA.names).cast(TRUTH_SCHEMA)


def upgrade_schedule(table: pa.Table) -> pa.Table:
    """A schedule in ``SCHEDULE_SCHEMA``, also from a file written before IPv6."""
    if "af" not in table.column_names:
        n = table.num_rows
        table = table.append_column("af", pa.array(np.full(n, 4, dtype=np.uint8), pa.uint8()))
    return table.select(SCHEDULE_SCHEMA.names).cast(SCHEDULE_SCHEMA)


def _text(table: pa.Table, name: str) -> pa.Array[Any]:
    """One address column as text: dotted quads on IPv4 rows, RFC 5952 on IPv6 rows (each
    distinct IPv6 address formatted once)."""
    text = format_dotted(table[name].combine_chunks()).to_numpy(zero_copy_only=False)
    rows6 = np.flatnonzero(table["af"].to_numpy() == 6)
    if len(rows6):
        cache: dict[bytes, str] = {}
        raw = [bytes(b or b"") for b in table[f"{name}6"].take(rows6).to_pylist()]
        text[rows6] = [
            cache.get(b) or cache.setdefault(b, ipaddress.IPv6Address(b).compressed) for b in raw
        ]
    return pa.array(text, pa.string())


def truth_text(table: pa.Table) -> pa.Table:
    """The truth with textual addresses (``TRUTH_TEXT_SCHEMA``), for CSV."""
    table = upgrade_truth(table)
    columns: dict[str, Any] = {name: table[name] for name in TRUTH_TEXT_SCHEMA.names}
    columns["target"] = _text(table, "target")
    columns["responder"] = _text(table, "responder")
    return pa.table(columns, schema=TRUTH_TEXT_SCHEMA)
