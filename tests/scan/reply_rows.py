"""Reply rows as comparable tuples with textual addresses, for checking scans against truth."""

from __future__ import annotations

import ipaddress
from typing import Any

import pyarrow as pa

ERRORS = ("icmp_unreach", "icmp_time_exceeded", "icmp_param_problem", "icmp_other")


def address(af: int, v4: int | None, v6: bytes | None) -> str:
    """The row's address of its family as text."""
    if af == 6:
        assert v6 is not None
        return str(ipaddress.IPv6Address(v6))
    assert v4 is not None
    return str(ipaddress.IPv4Address(v4))


def row_tuples(table: pa.Table, *, app_valid: bool = False) -> set[tuple[Any, ...]]:
    """(af, target, probe, reply, responder, ICMP code of errors[, app_valid]) of every row."""
    out = set()
    for r in table.to_pylist():
        code = r["icmp_code"] if str(r["reply"]) in ERRORS else -1
        target = address(r["af"], r["target"], r["target6"])
        responder = address(r["af"], r["responder"], r["responder6"])
        row = (r["af"], target, str(r["probe"]), str(r["reply"]), responder, code)
        out.add((*row, r["app_valid"]) if app_valid else row)
    return out
