"""Helpers for the analysis tests: hand-made reply tables (rows as short tuples)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa

from liveness.output.schema import REPLY_SCHEMA

#: (probe, target, responder, reply, icmp_code, attempt, app_valid)
Row = tuple[str, str, str, str, int, int, bool]
WriteReplies = Callable[[Sequence[Row], str], str]

_ICMP_TYPES = {"icmp_unreach": 3, "icmp_time_exceeded": 11, "icmp_param_problem": 12}


def reply_table(rows: Sequence[Row]) -> pa.Table:
    """A full-schema reply table from short rows (addresses as dotted quads)."""
    columns: dict[str, list[Any]] = {name: [] for name in REPLY_SCHEMA.names}
    for i, (probe, target, responder, reply, code, attempt, app_valid) in enumerate(rows):
        columns["ts"].append(1_000_000 * i)
        columns["probe"].append(probe)
        columns["target"].append(int(ipaddress.IPv4Address(target)))
        columns["responder"].append(int(ipaddress.IPv4Address(responder)))
        columns["reply"].append(reply)
        columns["icmp_type"].append(
            0 if reply == "echo_reply" else _ICMP_TYPES.get(reply, -1 if code < 0 else 3)
        )
        columns["icmp_code"].append(code)
        columns["tcp_flags"].append({"synack": 0x12, "rst": 0x14}.get(reply, 0))
        columns["ttl"].append(64)
        columns["ipid"].append(i)
        port = probe.split(":")[1] if ":" in probe else "0"
        columns["sport"].append(40000 if port == "random" else int(port))
        columns["dport"].append(50000)
        columns["attempt"].append(attempt)
        columns["repeat"].append(False)
        columns["app_valid"].append(app_valid)
        columns["vp"].append("vp0")
        columns["af"].append(4)
        columns["target6"].append(None)
        columns["responder6"].append(None)
        columns["app_active"].append(False)
        columns["app_proto"].append("")
        columns["banner"].append(None)
    return pa.Table.from_pydict(columns, schema=REPLY_SCHEMA)
