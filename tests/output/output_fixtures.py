"""Helpers for the output tests: random but valid reply batches, value comparison.

A plain module (not ``conftest``) so test files and subprocesses import it by a unique name.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from liveness.output.schema import REPLY_CATEGORIES, REPLY_SCHEMA

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


def random_replies(
    rows: int, seed: int = 0, *, start_ns: int = 1_700_000_000 * 10**9
) -> pa.RecordBatch:
    """``rows`` reply records with plausible, seed-determined values."""
    rng = np.random.default_rng(seed)
    reply = rng.choice(np.array(REPLY_CATEGORIES), rows)
    icmp_type = np.array([ICMP_TYPES.get(r, -1) for r in reply], dtype=np.int16)
    icmp_code = np.where(icmp_type > 0, rng.integers(0, 16, rows), np.where(icmp_type == 0, 0, -1))
    target = rng.integers(0, 2**32, rows, dtype=np.uint64).astype(np.uint32)
    router = rng.integers(0, 2**32, rows, dtype=np.uint64).astype(np.uint32)
    responder = np.where((icmp_type > 0) & (rng.random(rows) < 0.5), router, target)
    columns = {
        "ts": start_ns + np.sort(rng.integers(0, 60 * 10**9, rows)),
        "probe": pa.array(rng.choice(np.array(PROBES), rows)).dictionary_encode(),
        "target": target,
        "responder": responder.astype(np.uint32),
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
    }
    arrays = [pa.array(columns[f.name]).cast(f.type) for f in REPLY_SCHEMA]
    return pa.RecordBatch.from_arrays(arrays, schema=REPLY_SCHEMA)


def same_rows(left: pa.Table, right: pa.Table) -> bool:
    """Equal reply rows (dictionary columns compared by value, whatever their dictionaries)."""
    plain = pa.schema(
        [(f.name, pa.string() if pa.types.is_dictionary(f.type) else f.type) for f in REPLY_SCHEMA]
    )
    return bool(left.cast(plain).equals(right.cast(plain)))
