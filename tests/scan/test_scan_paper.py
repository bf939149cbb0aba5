"""A scan of the testbed's ``paper`` spec with the default probe set finds its ground truth."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from liveness.output import read_replies

pytestmark = [pytest.mark.root, pytest.mark.slow]


def test_paper_scan_finds_exactly_the_truth_but_for_injected_loss(
    paper_demo: dict[str, Any],
) -> None:
    out = paper_demo["dir"]
    truth = pq.read_table(out / "truth.parquet").to_pylist()
    expected = {(r["target"], r["probe"], r["reply"], r["responder"]) for r in truth}
    lossy = {r["target"] for r in truth if r["loss"] > 0}
    table = pa.Table.from_batches(list(read_replies(str(out / "replies.parquet"))))
    rows = table.select(["target", "probe", "reply", "responder"])
    found = {
        (r["target"], str(r["probe"]), str(r["reply"]), r["responder"]) for r in rows.to_pylist()
    }
    assert found - expected == set(), sorted(found - expected)[
        :10
    ]  # nothing the testbed never sent
    missing = expected - found
    assert {target for target, _, _, _ in missing} <= lossy, sorted(missing)[:10]
    assert len(missing) < 0.05 * len(expected)
    kinds = set(pc.unique(pc.cast(table["reply"], pa.string())).to_pylist())
    assert {"echo_reply", "synack", "rst", "udp", "icmp_unreach", "icmp_time_exceeded"} <= kinds
    assert any(target != responder for target, _, _, responder in found)  # router-sourced errors
    assert any(probe == "tcp_syn:random" and reply == "synack" for _, probe, reply, _ in found)
    assert paper_demo["packets_sent"] == 2 * 9 * 130816  # every target, every probe, twice
