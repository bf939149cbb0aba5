"""IPv6 blocks without root: E(b) per /48 and /64 worked out by hand, the three census formats,
the monitor's rounds over IPv6 blocks against the model, the safety check, and hostile input
(one line, exit 2)."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from monitor_helpers import run
from numpy.typing import NDArray

from liveness.errors import InputError
from liveness.monitor import ModelProber, Monitor, ObservationStream
from liveness.monitor.census import (
    census6_from_snapshots,
    load_census_families,
    read_alive_families,
)
from liveness.monitor.live import check_monitor_targets
from liveness.monitor.rounds import DOWN, UP


def v6(*texts: str) -> NDArray[np.uint8]:
    """``(n, 16)`` network-order bytes of IPv6 addresses."""
    raw = b"".join(ipaddress.IPv6Address(t).packed for t in texts)
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, 16)


def high(text: str) -> int:
    """The upper 64 bits of an address (how Census6 keys a block)."""
    return int(ipaddress.IPv6Address(text)) >> 64


def text6(rows: NDArray[np.uint8]) -> list[str]:
    return [str(ipaddress.IPv6Address(bytes(row))) for row in rows]


HITS = (
    "2001:2:0:1::5",  # /48 2001:2::, /64 2001:2:0:1::
    "2001:2:0:1::1",  # same /64
    "2001:2:0:2::1",  # same /48, another /64
    "2001:2:1::9",  # /48 2001:2:1::
    "2001:2:0:1::1",  # a repeat
)


def test_e_b_per_48_by_hand() -> None:
    census = census6_from_snapshots([v6(*HITS)], 48)
    # Two /48s: 2001:2:: holds three distinct addresses, 2001:2:1:: one.
    assert census.blocks.tolist() == [high("2001:2::"), high("2001:2:1::")]
    assert census.indptr.tolist() == [0, 3, 4]
    assert text6(census.addresses) == ["2001:2:0:1::1", "2001:2:0:1::5", "2001:2:0:2::1",
                                       "2001:2:1::9"]  # fmt: skip
    assert census.availability is None and census.snapshots == 1


def test_e_b_per_64_by_hand() -> None:
    census = census6_from_snapshots([v6(*HITS)], 64)
    assert census.blocks.tolist() == [high("2001:2:0:1::"), high("2001:2:0:2::"),
                                      high("2001:2:1::")]  # fmt: skip
    assert census.sizes.tolist() == [2, 1, 1]


def test_two_snapshots_measure_availability_per_block() -> None:
    first = v6("2001:2:0:1::1", "2001:2:0:1::2", "2001:2:0:1::3", "2001:2:1::1")
    second = v6("2001:2:0:1::1", "2001:2:1::1")
    census = census6_from_snapshots([first, second], 48)
    # 2001:2::/48: E(b) = 3 addresses, 3 then 1 answered -> 4/6; 2001:2:1::/48: 1 of 1 twice.
    assert census.sizes.tolist() == [3, 1]
    assert census.availability is not None
    assert census.availability.tolist() == pytest.approx([4 / 6, 1.0])


def test_mixed_hitlist_and_reply_parquet_give_both_families(tmp_path: Path) -> None:
    hitlist = tmp_path / "hits.txt"
    hitlist.write_text("# a hitlist\n198.18.0.1\n2001:2:0:1::1  # trailing comment\n\n"
                       "2001:2::9\n198.18.0.2\n")  # fmt: skip
    v4, six = read_alive_families(hitlist)
    assert [str(ipaddress.IPv4Address(int(a))) for a in v4] == ["198.18.0.1", "198.18.0.2"]
    assert text6(six) == ["2001:2:0:1::1", "2001:2::9"]

    replies = tmp_path / "replies.parquet"
    target6 = [None, ipaddress.IPv6Address("2001:2::1").packed,
               ipaddress.IPv6Address("2001:2::2").packed]  # fmt: skip
    responder6 = [None, target6[1], ipaddress.IPv6Address("2001:2::fe").packed]  # router error
    table = pa.table(
        {
            "target": pa.array([int(ipaddress.IPv4Address("198.18.0.7")), None, None], pa.uint32()),
            "responder": pa.array(
                [int(ipaddress.IPv4Address("198.18.0.7")), None, None], pa.uint32()
            ),
            "af": pa.array([4, 6, 6], pa.uint8()),
            "target6": pa.array(target6, pa.binary(16)),
            "responder6": pa.array(responder6, pa.binary(16)),
        }
    )
    pq.write_table(table, replies)
    v4, six = read_alive_families(replies)
    assert v4.tolist() == [int(ipaddress.IPv4Address("198.18.0.7"))]
    assert text6(six) == ["2001:2::1"]  # ::2 answered from a router: not alive
    census4, census6 = load_census_families([hitlist, replies], 64)
    assert census4 is not None and census4.snapshots == 2
    assert census6 is not None and census6.prefix_len == 64
    assert census6.blocks.tolist() == [high("2001:2::"), high("2001:2:0:1::")]


def test_bad_ipv6_hitlist_line_is_one_line(tmp_path: Path) -> None:
    hitlist = tmp_path / "hits.txt"
    hitlist.write_text("2001:2::1\n198.18.0.1\n2001:2::zz\n")
    with pytest.raises(InputError, match=r"hits.txt:3: '?2001:2::zz'? is not an IPv6 address"):
        load_census_families(hitlist)
    done = run("monitor", "--model", "--vp", "v", "--census", str(hitlist), "--rounds", "2",
               "-o", str(tmp_path / "out"))  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "hits.txt:3" in lines[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
    bad_v4 = tmp_path / "mixed.txt"
    bad_v4.write_text("2001:2::1\n\n198.18.0.300\n")
    with pytest.raises(InputError, match=r"mixed.txt:3: '?198.18.0.300'? is not an IPv4"):
        load_census_families(bad_v4)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--block6", "65"], ["--block6"]),
        (["--block6", "0"], ["--block6"]),
        (["--model-outage", "2001:2::/56@1-2"], ["--model-outage", "/48"]),
        (["--source-ip6", "2001:2::1"], ["--source-ip6", "only with --live"]),
    ],
)
def test_ipv6_flags_refused_with_one_line(
    tmp_path: Path, args: list[str], words: list[str]
) -> None:
    hitlist = tmp_path / "hits.txt"
    hitlist.write_text("2001:2::1\n")
    done = run("monitor", "--model", "--vp", "v", "--census", str(hitlist), "--rounds", "2",
               "-o", str(tmp_path / "out"), *args)  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_ipv6_targets_outside_the_benchmark_prefix_are_refused() -> None:
    inside = np.array([high("2001:2::"), high("2001:2:0:ff00::")], dtype=np.uint64)
    check_monitor_targets(inside, "--census", prefix6=56)
    for block, length in (("2001:db8::", 48), ("2001:3::", 48), ("2001::", 32), ("::", 48)):
        with pytest.raises(InputError, match="not inside 2001:2::/48"):
            check_monitor_targets(np.array([high(block)], np.uint64), "--census", prefix6=length)
    with pytest.raises(InputError, match="2001:2::/47"):  # wider than the prefix itself
        check_monitor_targets(np.array([high("2001:2::")], np.uint64), "--census", prefix6=47)


def _monitor6(block_len: int = 48) -> tuple[Monitor, ModelProber]:
    rng = np.random.default_rng(1)
    rows = []
    for third in range(4):  # four /48s of 40 addresses each, scattered in the /48
        for low in rng.choice(1 << 20, 40, replace=False):
            rows.append(f"2001:2:{third}:{low >> 16:x}::{low & 0xFFFF:x}")
    census = census6_from_snapshots([v6(*rows)], block_len)
    monitor = Monitor.from_census6(census, vp="v6")
    prober = ModelProber(census.blocks, 0.9, seed=3, prefix6=block_len)
    return monitor, prober


def test_ipv6_rounds_find_an_outage_within_one_round() -> None:
    monitor, prober = _monitor6()
    assert monitor.af == 6 and monitor.blocks.size == 4
    statuses = []
    for round_no in range(6):
        if round_no == 2:
            prober.set_up(np.array([high("2001:2:1::")], np.uint64), False)
        if round_no == 4:
            prober.set_up(np.array([high("2001:2:1::")], np.uint64), True)
        statuses.append(monitor.run_round(prober, round_no, round_no * 660).status.tolist())
    assert statuses == [[UP] * 4, [UP] * 4, [UP, DOWN, UP, UP], [UP, DOWN, UP, UP],
                        [UP] * 4, [UP] * 4]  # fmt: skip
    assert monitor.max_probes_in_window <= 20


def test_observation_rows_of_both_families(tmp_path: Path) -> None:
    monitor, prober = _monitor6()
    path = tmp_path / "v.observations.parquet"
    with ObservationStream(path, vp="v", round_s=660) as stream:
        for round_no in range(2):
            stream.write(monitor.run_round(prober, round_no, 1000 + 660 * round_no))
    rows = pq.read_table(path).to_pylist()
    assert [r["target"] for r in rows] == ["2001:2::/48", "2001:2:1::/48", "2001:2:2::/48",
                                           "2001:2:3::/48"]  # fmt: skip
    assert {(r["af"], r["t0"], r["t1"], r["status"]) for r in rows} == {(6, 1000, 2320, "up")}


def test_model_cli_monitors_both_families(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    lines = [f"198.18.{b}.{h}" for b in range(3) for h in rng.choice(254, 30, replace=False) + 1]
    lines += [f"2001:2:0:{b}00::{h:x}" for b in range(3) for h in range(1, 31)]
    census = tmp_path / "hits.txt"
    census.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    done = run("monitor", "--model", "--vp", "m", "--census", str(census), "--rounds", "5",
               "--block6", "56", "--model-outage", "2001:2:0:100::/56@2-4",
               "--model-availability", "1", "-o", str(out), "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["families"]["4"]["measurable"] == 3
    assert summary["families"]["6"]["measurable"] == 3
    assert summary["measurable"] == 3  # the IPv4 keys where they always were
    obs = pq.read_table(out / "m.observations.parquet").to_pylist()
    down = [(r["af"], r["target"], r["t0"] - summary["start"], r["t1"] - summary["start"])
            for r in obs if r["status"] == "down"]  # fmt: skip
    round_s = int(summary["round_s"])
    assert down == [(6, "2001:2:0:100::/56", 2 * round_s, 4 * round_s)]
    assert (out / "m.fsdb").exists() and (out / "m.fsdb6").exists()


def test_mixed_family_ip_set_file_is_a_census(tmp_path: Path) -> None:
    from liveness.analysis import ipset

    if not hasattr(ipset, "MAGIC"):
        pytest.skip("liveness ipset has no mixed-family format here")
    hits = tmp_path / "hits.txt"
    hits.write_text("198.18.0.1\n2001:2::1\n2001:2:0:1::5\n")
    path = tmp_path / "hits.ipset"
    ipset.save_set(ipset.from_text(str(hits)), str(path))
    v4, six = read_alive_families(path)
    assert v4.tolist() == [int(ipaddress.IPv4Address("198.18.0.1"))]
    assert text6(six) == ["2001:2::1", "2001:2:0:1::5"]
