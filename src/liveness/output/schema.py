"""The reply record: one row per validated reply packet (the contract between layers).

Columns, in order (see DESIGN.md):

- ``ts`` int64: receive time, ns since the Unix epoch.
- ``probe`` string (dictionary): the probe that was answered, e.g. ``icmp_echo``,
  ``tcp_syn:443``, ``tcp_syn:random``, ``udp_dns``, ``udp_ntp``.
- ``target`` uint32: the probed address (from the reply's source, or from the quoted header of
  an ICMP error).
- ``responder`` uint32: the reply's IP source (differs from ``target`` for router errors).
- ``reply`` string (dictionary): one of :data:`REPLY_CATEGORIES` (``timestamp_reply`` answers
  the ``icmp_timestamp`` probe; new categories are appended, so codes stay stable).
- ``icmp_type``, ``icmp_code`` int16: the ICMP type and code, -1 when the reply is not ICMP.
- ``tcp_flags`` uint8: the reply's TCP flags, 0 when it is not TCP.
- ``ttl`` uint8, ``ipid`` uint16: from the reply's IP header.
- ``sport``, ``dport`` uint16: the ports seen from the target's side: ``sport`` is the
  target's port (the probe's destination port), ``dport`` ours. For ICMP errors they come from
  the quoted header; for ICMP echo both are 0.
- ``attempt`` uint8: 0 for the original probe, 1.. for retransmissions (recovered statelessly).
- ``repeat`` bool: an earlier reply already matched the same (target, probe).
- ``app_valid`` bool: a valid application reply (DNS response to our id, NTP server reply
  echoing our timestamp).
- ``vp`` string (dictionary): the vantage point that scanned.
- ``af`` uint8: the address family of the reply, 4 or 6.
- ``target6``, ``responder6`` fixed-size binary(16): the IPv6 addresses of an ``af = 6`` row
  (network byte order), null on IPv4 rows.
- ``app_active`` bool, ``app_proto`` string (dictionary), ``banner`` binary (nullable): the TCP
  application layer (``--app-layer``, :data:`APP_COLUMNS`). On the rows answering the scan's
  stateless follow-up to a SYN-ACK (categories ``app_data``, ``app_ack``, ``app_rst``):
  ``app_active`` the target sent payload or acknowledged ours, ``app_proto`` what its bytes look
  like (``http``, ``tls``, ``ssh``, ``telnet``, ``text`` for other printable text, ``binary``
  for other bytes, ``""`` for none), ``banner`` its first bytes (null when it sent none);
  ``app_valid`` there means the target speaks the port's profile. False, ``""`` and null on
  every other row.

IPv4 addresses are uint32 in host order (``int(ipaddress.IPv4Address(...))``) in ``target`` and
``responder``; on IPv6 rows the addresses are in ``target6`` and ``responder6``, and ``target``
and ``responder`` are 0 in record batches (the classifier's and what ``read_replies`` returns)
but *null* in the Parquet files the writers make, so a query over a file never mistakes an IPv6
row for 0.0.0.0 (docs/ARCHITECTURE.md says why the families keep separate columns). Files of
schema ``reply/1`` (before IPv6) read back with ``af = 4`` and null IPv6 columns, files without
the application columns (``reply/2``, or a scan without ``--app-layer``) with their defaults.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

__all__ = [
    "ADDR6",
    "APP_CATEGORIES",
    "APP_COLUMNS",
    "APP_DEFAULTS",
    "BASE_COLUMNS",
    "REPLY_CATEGORIES",
    "REPLY_COLUMNS",
    "REPLY_SCHEMA",
    "STRING_DICT",
    "empty_reply_table",
]

REPLY_CATEGORIES: tuple[str, ...] = (
    "echo_reply",
    "synack",
    "rst",
    "udp",
    "icmp_unreach",
    "icmp_time_exceeded",
    "icmp_redirect",
    "icmp_source_quench",
    "icmp_param_problem",
    "icmp_other",
    "timestamp_reply",
    "app_data",
    "app_ack",
    "app_rst",
)

APP_CATEGORIES: tuple[str, ...] = ("app_data", "app_ack", "app_rst")
"""The categories of the answers to ``--app-layer``'s follow-up (after the SYN-ACK)."""

STRING_DICT = pa.dictionary(pa.int32(), pa.string())
"""The Arrow type of every dictionary-encoded string column (probe, reply, vp, kind, ...)."""
_DICT = STRING_DICT
ADDR6 = pa.binary(16)
"""The Arrow type of an IPv6 address column: 16 bytes in network byte order."""

REPLY_SCHEMA = pa.schema(
    [
        pa.field("ts", pa.int64(), nullable=False),
        pa.field("probe", _DICT, nullable=False),
        pa.field("target", pa.uint32(), nullable=False),
        pa.field("responder", pa.uint32(), nullable=False),
        pa.field("reply", _DICT, nullable=False),
        pa.field("icmp_type", pa.int16(), nullable=False),
        pa.field("icmp_code", pa.int16(), nullable=False),
        pa.field("tcp_flags", pa.uint8(), nullable=False),
        pa.field("ttl", pa.uint8(), nullable=False),
        pa.field("ipid", pa.uint16(), nullable=False),
        pa.field("sport", pa.uint16(), nullable=False),
        pa.field("dport", pa.uint16(), nullable=False),
        pa.field("attempt", pa.uint8(), nullable=False),
        pa.field("repeat", pa.bool_(), nullable=False),
        pa.field("app_valid", pa.bool_(), nullable=False),
        pa.field("vp", _DICT, nullable=False),
        pa.field("af", pa.uint8(), nullable=False),
        pa.field("target6", ADDR6, nullable=True),
        pa.field("responder6", ADDR6, nullable=True),
        pa.field("app_active", pa.bool_(), nullable=False),
        pa.field("app_proto", _DICT, nullable=False),
        pa.field("banner", pa.binary(), nullable=True),
    ],
    metadata={"liveness.schema": "reply/3"},
)

REPLY_COLUMNS: tuple[str, ...] = tuple(REPLY_SCHEMA.names)
APP_COLUMNS: tuple[str, ...] = ("app_active", "app_proto", "banner")
"""The application-layer columns: written by default only by ``--app-layer`` scans."""
APP_DEFAULTS: dict[str, Any] = {
    "app_active": pa.scalar(False),
    "app_proto": pa.scalar(""),
    "banner": pa.scalar(None, pa.binary()),
}
"""Each application column's value where a file or batch has none (every row not answering
an ``--app-layer`` follow-up)."""
BASE_COLUMNS: tuple[str, ...] = tuple(n for n in REPLY_COLUMNS if n not in APP_COLUMNS)
"""The columns a writer writes by default (without ``--app-layer``)."""


def empty_reply_table() -> pa.Table:
    """A reply table with no rows and the full schema."""
    return REPLY_SCHEMA.empty_table()
