"""Ground truth written by ``liveness testbed truth``: what the testbed is built to answer.

``TRUTH_SCHEMA``: one row per (address, probe) that gets a reply at all (silence is the absence
of a row).

- ``target`` uint32, ``probe`` string (same names as the reply record: ``icmp_echo``,
  ``tcp_syn:22`` ..., ``tcp_syn:random``, ``udp_dns``, ``udp_ntp``), ``vp`` string (the VP this
  holds for; the same answer from every VP is one row per VP).
- ``reply`` string: a reply category of the reply record (``echo_reply``, ``synack``, ``rst``,
  ``udp``, ``icmp_unreach``, ``icmp_time_exceeded``, ...).
- ``responder`` uint32: who answers (the target, or a router).
- ``icmp_code`` int16: -1 when not ICMP.
- ``app_valid`` bool: a real server answers the application probe.
- ``loss`` float64: the loss probability the spec injects on this path (0 when none).

``SCHEDULE_SCHEMA``: one row per scheduled connectivity event.

- ``kind`` string: ``outage``, ``peninsula`` or ``island``.
- ``scope`` string: the blocks or VP concerned (CIDRs joined by ``,``, or a VP name).
- ``vps_down`` string: the VPs that cannot reach the scope during the event (joined by ``,``).
- ``start``, ``end`` float64: seconds from the testbed's start.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = ["SCHEDULE_SCHEMA", "TRUTH_SCHEMA"]

_TRUTH_FIELDS: list[pa.Field[pa.DataType]] = [
    pa.field("target", pa.uint32(), nullable=False),
    pa.field("probe", pa.string(), nullable=False),
    pa.field("vp", pa.string(), nullable=False),
    pa.field("reply", pa.string(), nullable=False),
    pa.field("responder", pa.uint32(), nullable=False),
    pa.field("icmp_code", pa.int16(), nullable=False),
    pa.field("app_valid", pa.bool_(), nullable=False),
    pa.field("loss", pa.float64(), nullable=False),
]
TRUTH_SCHEMA = pa.schema(_TRUTH_FIELDS)

_SCHEDULE_FIELDS: list[pa.Field[pa.DataType]] = [
    pa.field("kind", pa.string(), nullable=False),
    pa.field("scope", pa.string(), nullable=False),
    pa.field("vps_down", pa.string(), nullable=False),
    pa.field("start", pa.float64(), nullable=False),
    pa.field("end", pa.float64(), nullable=False),
]
SCHEDULE_SCHEMA = pa.schema(_SCHEDULE_FIELDS)
