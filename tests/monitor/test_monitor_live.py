"""The live prober and ``liveness monitor --live`` / ``--testbed`` on a small testbed.

Packets go only inside the testbed's namespaces (198.18.0.0/22). The usage tests at the end
send nothing: they fail before any socket is opened.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from numpy.typing import NDArray

from liveness.errors import InputError
from liveness.monitor.live import check_monitor_targets
from liveness.testbed import Testbed, load_spec

SPEC = Path(__file__).with_name("monitor_small.toml")
CLI = [sys.executable, "-m", "liveness.cli.main"]
UNREACH_BLOCK = "198.18.2.0/24"  # a router answers host-unreachable for every address

# Runs inside a VP: probe the addresses on stdin (JSON) with a LiveProber, print the answers.
PROBE_SCRIPT = """
import json, sys, time
import numpy as np
from liveness.monitor import make_prober
request = json.load(sys.stdin)
prober = make_prober("live", interface=request["ifname"], source_ip=request["src"],
                     gateway_mac=request["gw"], timeout_s=request["timeout"])
out = {}
for name, batch in request["batches"].items():
    began = time.monotonic()
    answered = prober.probe(np.asarray(batch, dtype=np.uint32))
    out[name] = {"answered": answered.tolist(), "seconds": time.monotonic() - began}
out["probes_sent"] = prober.probes_sent
prober.close()
slow = make_prober("live", interface=request["ifname"], source_ip=request["src"],
                   gateway_mac=request["gw"], timeout_s=request["timeout"], rate_pps=1000)
began = time.monotonic()
answered = slow.probe(np.asarray(request["paced"], dtype=np.uint32))
out["paced"] = {"answered": answered.tolist(), "seconds": time.monotonic() - began}
slow.close()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def small_testbed() -> Iterator[Testbed]:
    with Testbed(load_spec(SPEC)) as tb:
        yield tb


def _echo_alive(tb: Testbed, vp: str) -> NDArray[np.uint32]:
    """Addresses that answer ICMP echo themselves, from the testbed's ground truth."""
    truth, _ = tb.truth()
    columns = {name: np.asarray(truth.column(name).to_pylist()) for name in truth.column_names}
    alive = (
        (columns["probe"] == "icmp_echo")
        & (columns["vp"] == vp)
        & (columns["reply"] == "echo_reply")
        & (columns["target"] == columns["responder"])
    )
    return np.unique(columns["target"][alive]).astype(np.uint32)


def _run_probes(
    tb: Testbed, vp: str, batches: dict[str, list[int]], timeout: float, paced: list[int]
) -> dict[str, Any]:
    point = tb.vps[vp]
    request = {
        "ifname": point.ifname,
        "src": point.src_ip,
        "gw": point.gateway_mac,
        "timeout": timeout,
        "batches": batches,
        "paced": paced,
    }
    done = tb.run(
        vp,
        [sys.executable, "-c", PROBE_SCRIPT],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.root
def test_live_prober_matches_ground_truth(small_testbed: Testbed) -> None:
    tb = small_testbed
    alive = _echo_alive(tb, "vp1")
    base = int(ipaddress.IPv4Address("198.18.0.0"))
    everything = np.arange(base, base + 1024, dtype=np.uint32)
    rng = np.random.default_rng(5)
    shuffled = rng.permutation(everything)
    twice = np.concatenate([alive[:10], alive[:10], everything[512:520]])  # 198.18.2.x: unreach
    result = _run_probes(
        tb,
        "vp1",
        {
            "all": shuffled.tolist(),
            "alive_only": alive[:50].tolist(),
            "twice": twice.tolist(),
        },
        timeout=1.0,
        paced=alive[:200].tolist(),
    )
    answered = np.asarray(result["all"]["answered"])
    expected = np.isin(shuffled, alive)
    assert expected.sum() == alive.size > 200
    np.testing.assert_array_equal(answered, expected)  # router errors and silence: negative
    assert result["all"]["seconds"] >= 1.0  # some never answer: the batch waits out the timeout
    assert result["alive_only"]["answered"] == [True] * 50
    assert result["alive_only"]["seconds"] < 0.5  # everyone answered: no waiting for the timeout
    assert result["twice"]["answered"] == [True] * 20 + [False] * 8
    assert result["probes_sent"] == 1024 + 50 + 28
    # 200 probes at 1,000/s: about 0.2 s of sending, every reply read while sending.
    assert result["paced"]["answered"] == [True] * 200
    assert 0.18 <= result["paced"]["seconds"] < 0.6


def _census_files(tmp_path: Path, alive: NDArray[np.uint32]) -> list[Path]:
    """Two snapshots: the truth's echo-alive addresses plus 20 addresses of UNREACH_BLOCK."""
    unreach = int(ipaddress.IPv4Network(UNREACH_BLOCK).network_address)
    listed = np.concatenate([alive, np.arange(unreach + 10, unreach + 30, dtype=np.uint32)])
    text = "".join(f"{ipaddress.IPv4Address(int(a))}\n" for a in listed)
    paths = [tmp_path / "census-a.txt", tmp_path / "census-b.txt"]
    for path in paths:
        path.write_text(text)
    return paths


@pytest.mark.root
@pytest.mark.slow
def test_monitor_live_from_a_vp_finds_the_dead_block(
    small_testbed: Testbed, tmp_path: Path
) -> None:
    tb = small_testbed
    census = _census_files(tmp_path, _echo_alive(tb, "vp2"))
    out = tmp_path / "out"
    argv = [*CLI, "monitor", "--live", "--vp", "vp2", "--rounds", "3", "--round-s", "1"]
    argv += ["--timeout", "0.2", "-o", str(out), "--json"]
    for path in census:
        argv += ["--census", str(path)]
    done = tb.run("vp2", argv, capture_output=True, text=True, timeout=60)  # -i/-S/-G: route
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["prober"] == "live" and summary["measurable"] == 4
    assert summary["block_rounds"] == {"down": 3, "up": 9, "unknown": 0}
    assert summary["max_probes_in_window"] <= 20
    observations = pq.read_table(out / "vp2.observations.parquet").to_pylist()
    status = {(row["target"], row["status"]) for row in observations}
    assert status == {
        ("198.18.0.0/24", "up"),
        ("198.18.1.0/24", "up"),
        ("198.18.3.0/24", "up"),
        (UNREACH_BLOCK, "down"),
    }
    assert all(row["vp"] == "vp2" for row in observations)
    fsdb = (out / "vp2.fsdb").read_text()
    assert fsdb.startswith("#fsdb")


@pytest.mark.root
@pytest.mark.slow
def test_monitor_testbed_runs_every_vp_on_one_clock(tmp_path: Path) -> None:
    out = tmp_path / "tb"
    argv = [*CLI, "monitor", "--testbed", str(SPEC), "--rounds", "2", "--round-s", "2"]
    argv += ["--timeout", "0.2", "-r", "2000", "--changes-only", "-o", str(out), "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert sorted(summary["vps"]) == ["vp1", "vp2"]
    assert summary["vp_blocks"] == {"vp1": "198.18.3.0/24"}
    for vp, one in summary["vps"].items():
        assert one["start"] == summary["start"]  # the same round clock
        assert one["late_rounds"] == 0
        assert one["measurable"] == 3  # census from the scan: 198.18.2.0/24 never echoes
        assert one["block_rounds"] == {"down": 0, "up": 6, "unknown": 0}
        assert one["probe_bound"]["window_s"] < 20  # --testbed scales the window by default
        assert one["capabilities_dropped"] is True
        assert (out / f"{vp}.observations.parquet").exists()
    assert (out / "census-1.parquet").exists() and (out / "census-2.parquet").exists()


def test_check_monitor_targets_refuses_reserved_blocks() -> None:
    ok = np.array([int(ipaddress.IPv4Address(a)) for a in ("198.18.7.0", "8.8.8.0")], np.uint32)
    check_monitor_targets(ok, "--census")
    for reserved in ("10.1.2.0", "127.0.0.0", "224.0.0.0", "192.168.1.0"):
        blocks = np.array([int(ipaddress.IPv4Address(reserved))], np.uint32)
        with pytest.raises(InputError, match=f"--census: block {reserved}/24"):
            check_monitor_targets(blocks, "--census")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no prober chosen"),
        (["--live", "--model"], "--model: not with --live"),
        (["--live", "--timeout", "0"], "--timeout"),
        (["--model", "-i", "eth0"], "-i/-S/-G: only with --live"),
        (["--live", "--census-extra"], "blocklisted"),
        (["--live", "--round-s", "0.5"], "--round-s"),
    ],
)
def test_monitor_live_usage_errors_send_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    census = tmp_path / "census.txt"
    census.write_text("".join(f"198.18.0.{h}\n" for h in range(1, 40)))
    if "--census-extra" in args:
        args = [a for a in args if a != "--census-extra"]
        reserved = tmp_path / "reserved.txt"
        reserved.write_text("".join(f"10.0.0.{h}\n" for h in range(1, 40)))
        args += ["--census", str(reserved)]
    done = subprocess.run(
        [*CLI, "monitor", "--vp", "v", "--census", str(census), "--rounds", "1",
         "-o", str(tmp_path / "o"), *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_monitor_testbed_usage_errors(tmp_path: Path) -> None:
    base = [*CLI, "monitor", "--testbed", str(SPEC), "-o", str(tmp_path / "o")]
    for extra, message in ((["--vp", "x"], "drop --vp"), (["-i", "eth0"], "-i/-S/-G")):
        done = subprocess.run([*base, *extra], capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and message in done.stderr, done.stderr


def test_waiting_for_vps_stops_when_one_fails_and_reports_progress(tmp_path: Path) -> None:
    from liveness.monitor.multi import wait_with_progress

    slow = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    failing = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(0.5); raise SystemExit(3)"]
    )
    messages: list[str] = []
    try:
        began = time.monotonic()
        wait_with_progress(
            {"slow": (slow, []), "bad": (failing, [])},
            int(time.time()),
            rounds=5,
            round_s=10.0,
            progress=messages.append,
        )
        assert time.monotonic() - began < 10  # did not wait for the slow one
        assert failing.returncode == 3 and slow.poll() is None
        assert messages and messages[0].startswith("monitor: 2 VPs, round 1/5")
    finally:
        slow.kill()
        slow.wait()


def test_waiting_for_vps_gives_up_after_the_grace_period() -> None:
    from liveness.errors import RunError
    from liveness.monitor import multi

    stuck = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(RunError, match="monitor in stuck did not finish in time"):
            multi.wait_with_progress(
                {"stuck": (stuck, [])},
                int(time.time()) - int(multi._GRACE_S) - 10,
                rounds=1,
                round_s=1.0,
                progress=lambda message: None,
            )
    finally:
        stuck.kill()
        stuck.wait()
