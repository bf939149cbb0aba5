"""Monitor from every VP of a testbed at once: one ``liveness monitor`` process per VP namespace.

Each VP runs its own ``liveness monitor --vp NAME`` inside its network namespace (live ICMP
echo through its ``eth0``), all on the same round clock: the same ``--start`` (epoch seconds)
and ``--round-s``, so round k begins at the same instant everywhere and the detectors' round
grid lines up with the testbed's schedule. On a dual-stack testbed each VP's monitor watches
both families (IPv4 /24s and IPv6 ``block6`` prefixes, ICMP and ICMPv6 echo) in the same rounds.
The census is shared: the addresses that answered ICMP echo in :func:`census_scan`, a real
``liveness scan --probes icmp_echo`` of the spec's targets of both families (IPv6: ``::1`` of
every /64 of the population) from one VP (two passes, so the census measures availability),
run while the schedule is still quiet. Outputs land in one directory: ``VP.fsdb`` (and
``VP.fsdb6``), ``VP.observations.parquet``, ``VP.unmeasurable.txt``, ``VP.summary.json`` (its
JSON summary) and ``VP.log`` (its stderr).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import math
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from liveness.errors import RunError
from liveness.safety import BENCHMARK_NET, BENCHMARK_NET6
from liveness.testbed import Testbed, VantagePoint, load_spec
from liveness.testbed.testbed import LIVENESS_CLI

__all__ = [
    "VpMonitorOptions",
    "census_scan",
    "census_scan_argv",
    "first_round_start",
    "monitor_argv",
    "monitor_testbed",
    "run_testbed_monitor",
    "vp_blocks",
    "vp_blocks6",
    "wait_with_progress",
]

_GRACE_S = 30.0

Progress = Callable[[str], None]


def _silent(message: str) -> None:
    """The default progress sink: say nothing."""


def census_scan_argv(
    vp: VantagePoint, targets: Sequence[str], allowlist: Path, output: Path, rate: str
) -> list[str]:
    """The ``liveness scan`` command line of one ICMP echo census pass from ``vp`` (IPv6
    targets, if any, from its IPv6 source)."""
    six = any(":" in target for target in targets)
    return vp.scan_argv(
        targets,
        allowlist,
        *("--probes", "icmp_echo", "-r", rate, "--retransmit-delay", "0", "--cooldown-time", "1"),
        *("-q", "-o", str(output)),
        *(vp.sender_options6() if six else ()),
    )


def census_targets(tb: Testbed) -> list[str]:
    """The census' targets: the IPv4 population, and on a dual-stack testbed ``::1`` of
    every /64 of the IPv6 population (prefix walks)."""
    return [*tb.targets, *(f"{net}-64" for net in tb.targets6)]


def census_scan(
    tb: Testbed, output_dir: Path, *, vp: str | None = None, passes: int = 2, rate: str = "100000"
) -> list[Path]:
    """Scan the testbed's targets with ICMP echo ``passes`` times from ``vp`` (default: the
    first VP); the reply parquets, one census snapshot each (:func:`load_census` reads them)."""
    name = vp or next(iter(tb.vps))
    point = tb.vps[name]
    output_dir.mkdir(parents=True, exist_ok=True)
    allowlist = output_dir / "census-allowlist.txt"
    allowlist.write_text(f"{BENCHMARK_NET}\n{BENCHMARK_NET6}\n")
    targets = census_targets(tb) if point.src_ip6 is not None else list(tb.targets)
    snapshots = []
    for number in range(1, passes + 1):
        path = output_dir / f"census-{number}.parquet"
        path.unlink(missing_ok=True)
        argv = census_scan_argv(point, targets, allowlist, path, rate)
        done = tb.run(name, argv, capture_output=True, text=True)
        if done.returncode != 0:
            tail = done.stderr.strip().splitlines()[-3:]
            raise RunError(f"census scan from {name} failed (exit {done.returncode}): {tail}")
        snapshots.append(path)
    return snapshots


@dataclass(frozen=True)
class VpMonitorOptions:
    """The ``liveness monitor`` options every VP of a testbed run gets alike."""

    timeout_s: float = 0.25
    params: Sequence[str] = ()
    scale_rate_window: bool = True
    rate_pps: float = 10_000.0
    changes_only: bool = False
    block6: int = 56
    """IPv6 block length (the testbed's twin of a /24 is a /56)."""

    def argv(self) -> list[str]:
        """These options on a command line."""
        argv = ["--timeout", repr(self.timeout_s), "-r", repr(self.rate_pps)]
        argv += ["--block6", str(self.block6)]
        for item in self.params:
            argv += ["--param", item]
        argv.append("--scale-rate-window" if self.scale_rate_window else "--no-scale-rate-window")
        if self.changes_only:
            argv.append("--changes-only")
        return argv


def monitor_argv(
    vp: VantagePoint,
    *,
    census: Sequence[Path],
    output_dir: Path,
    rounds: int,
    round_s: float,
    start: int,
    options: VpMonitorOptions,
) -> list[str]:
    """The ``liveness monitor`` command line for one VP of a testbed (live probing, JSON)."""
    argv = [*LIVENESS_CLI, "monitor", "--live", *vp.sender_options(), *vp.sender_options6()]
    for path in census:
        argv += ["--census", str(path)]
    argv += ["--rounds", str(rounds), "--round-s", repr(round_s), "--start", str(start)]
    return [*argv, "-o", str(output_dir), *options.argv(), "--json"]


def vp_blocks(tb: Testbed) -> dict[str, str]:
    """Each VP's own LAN block (``--vp-blocks`` of the detector), for VPs that have one."""
    return {vp.name: str(vp.lan) for vp in tb.spec.vps if vp.lan is not None}


def vp_blocks6(tb: Testbed, block6: int) -> dict[str, str]:
    """Each VP's own IPv6 block as the monitor names it (its IPv6 LAN widened, or cut, to
    a /block6), for VPs that have an IPv6 LAN: ``--vp-blocks`` of the IPv6 detector."""
    blocks: dict[str, str] = {}
    for vp in tb.spec.vps:
        if vp.lan6 is None:
            continue
        net = ipaddress.IPv6Network(vp.lan6)
        if net.prefixlen >= block6:
            own = net.supernet(new_prefix=block6)
        else:
            own = next(net.subnets(new_prefix=block6))
        blocks[vp.name] = str(own)
    return blocks


def run_testbed_monitor(
    tb: Testbed,
    census: Sequence[Path],
    output_dir: Path,
    *,
    rounds: int,
    round_s: float,
    start: int,
    options: VpMonitorOptions = VpMonitorOptions(),
    progress: Progress = _silent,
) -> dict[str, dict[str, Any]]:
    """Run ``liveness monitor`` in every VP of ``tb`` at once; each VP's JSON summary.

    All VPs share ``start`` (epoch seconds of round 0) and ``round_s``. Raises RunError naming
    the VP (and the end of its log) if one fails; every process started here is killed on the
    way out, whatever happens.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    running: dict[str, tuple[subprocess.Popen[bytes], list[IO[bytes]]]] = {}
    try:
        for name, vp in tb.vps.items():
            argv = monitor_argv(
                vp,
                census=census,
                output_dir=output_dir,
                rounds=rounds,
                round_s=round_s,
                start=start,
                options=options,
            )
            with contextlib.ExitStack() as opened:  # closed here unless the VP starts
                files: list[IO[bytes]] = [
                    opened.enter_context((output_dir / f"{name}.summary.json").open("wb")),
                    opened.enter_context((output_dir / f"{name}.log").open("wb")),
                ]
                proc = tb.popen(name, argv, stdout=files[0], stderr=files[1])
                opened.pop_all()
            running[name] = (proc, files)
        wait_with_progress(running, start, rounds, round_s, progress)
        summaries: dict[str, dict[str, Any]] = {}
        for name, (proc, _) in running.items():
            if proc.returncode not in (None, 0):
                tail = (output_dir / f"{name}.log").read_text(errors="replace").splitlines()[-3:]
                raise RunError(f"monitor in {name} failed (exit {proc.returncode}): {tail}")
        for name, (_, handles) in running.items():
            handles[0].close()
            text = (output_dir / f"{name}.summary.json").read_text()
            try:
                summaries[name] = json.loads(text)
            except json.JSONDecodeError:
                raise RunError(
                    f"monitor in {name} printed no JSON summary (see {output_dir / name}.log)"
                ) from None
        return summaries
    finally:
        for proc, handles in running.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for handle in handles:
                handle.close()


def wait_with_progress(
    running: dict[str, tuple[subprocess.Popen[bytes], list[IO[bytes]]]],
    start: int,
    rounds: int,
    round_s: float,
    progress: Progress,
) -> None:
    """Wait for every VP's monitor, reporting the round under way about every 10 s; RunError
    when one fails (at once) or when they are not done ``_GRACE_S`` after the last round."""
    deadline = start + rounds * round_s + _GRACE_S
    last_log = 0.0
    while True:
        codes = {name: proc.poll() for name, (proc, _) in running.items()}
        if any(code not in (None, 0) for code in codes.values()):
            return  # the caller names the failed VP
        if all(code == 0 for code in codes.values()):
            return
        now = time.time()
        if now > deadline:
            late = sorted(name for name, code in codes.items() if code is None)
            raise RunError(f"monitor in {', '.join(late)} did not finish in time")
        if now - last_log >= 10.0:
            last_log = now
            if now < start:
                progress(f"monitor: {len(running)} VPs, round 0 starts in {start - now:.0f} s")
            else:
                current = min(rounds, int((now - start) // round_s) + 1)
                progress(f"monitor: {len(running)} VPs, round {current}/{rounds}")
        time.sleep(0.2)


def first_round_start(started_at: float, round_s: float, lead_s: float = 3.0) -> int:
    """Round 0's start: the first whole second after a whole number of rounds from the
    schedule's t0 (``started_at``) that is at least ``lead_s`` away (time for every VP's
    monitor to start and open its rings), so every round starts just after a scheduled
    change and the round grid is the schedule's."""
    elapsed = time.time() + lead_s - started_at
    return math.ceil(started_at + max(0, math.ceil(elapsed / round_s)) * round_s)


def monitor_testbed(
    spec: str | Path,
    output_dir: Path,
    *,
    round_s: float,
    rounds: int | None = None,
    census: Sequence[Path] = (),
    options: VpMonitorOptions = VpMonitorOptions(),
    progress: Progress = _silent,
) -> dict[str, Any]:
    """Bring ``spec`` up, census it (:func:`census_scan`, unless ``census`` is given), monitor
    from every VP at once, take it down; a JSON-ready summary.

    ``rounds`` defaults to two rounds past the schedule's last end. The schedule
    (``schedule.parquet``) is written beside the outputs; the summary carries ``started_at``
    (the schedule's t0, epoch s) and ``vp_blocks`` / ``vp_blocks6`` (each VP's own IPv4 and
    IPv6 block, for the detector of each family).
    """
    import pyarrow.parquet as pq

    testbed_spec = load_spec(spec)
    output_dir.mkdir(parents=True, exist_ok=True)
    with Testbed(testbed_spec) as tb:
        if not census:
            progress(f"monitor: census scan of {testbed_spec.name} (two ICMP echo passes)")
        snapshots = list(census) or census_scan(tb, output_dir)
        _, schedule = tb.truth()
        pq.write_table(schedule, output_dir / "schedule.parquet")
        start = first_round_start(tb.started_at, round_s)
        starts = [float(at or 0.0) for at in schedule.column("start").to_pylist()]
        ends = [float(end or 0.0) for end in schedule.column("end").to_pylist()]
        if starts and start > tb.started_at + min(starts):
            if start >= tb.started_at + max(ends):
                raise RunError(
                    f"the schedule of {testbed_spec.name} was over (at +{max(ends):g} s) before "
                    f"round 0 could start (+{start - tb.started_at:.0f} s); the census scan took "
                    "too long for it"
                )
            progress(
                f"monitor: warning: round 0 starts at +{start - tb.started_at:.0f} s, after the "
                f"first scheduled event (+{min(starts):g} s); the census may include it"
            )
        if rounds is None:
            rounds = max(1, math.ceil((tb.started_at + max(ends, default=0.0) - start) / round_s))
            rounds += 2
        summaries = run_testbed_monitor(
            tb,
            snapshots,
            output_dir,
            rounds=rounds,
            round_s=round_s,
            start=start,
            options=options,
            progress=progress,
        )
        return {
            "spec": testbed_spec.name,
            "started_at": tb.started_at,
            "start": start,
            "rounds": rounds,
            "round_s": round_s,
            "census": [str(path) for path in snapshots],
            "schedule": str(output_dir / "schedule.parquet"),
            "vp_blocks": vp_blocks(tb),
            "vp_blocks6": vp_blocks6(tb, options.block6),
            "block6": options.block6,
            "vps": summaries,
        }
