"""The scan loop: send every probe type to each target together, paced, with stateless delayed
retransmission, while a separate process receives, classifies and writes every reply.

Retransmission keeps no queue of addresses: the shard's targets are visited in one fixed permuted
order, so "the targets sent between offsets a and b at time t" is three numbers. The loop keeps
one such segment per ~50 ms of sending and, ``delay`` seconds later, walks the same offsets again
(masscan's offset-in-the-permutation idea) with the attempt number encoded in the source port.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from liveness.errors import OutputClosed, RunError
from liveness.output.destination import Destination, resolve_destination, write_result_file
from liveness.scan.checkpoint import Checkpoint
from liveness.scan.receiver import Counters, ReceiverSettings, start_receiver
from liveness.scan.status import HitrateGuard, StatusReporter, StatusSample, hitrate

__all__ = ["ScanSettings", "build_batch", "default_checkpoint", "run_scan"]

SEGMENT_MERGE_S = 0.05


ORPHAN_DRAIN_MAX_S = 2.0  # a killed scan's receiver waits min(cooldown, this) for replies
STOP_DRAIN_MAX_S = 2.0  # after SIGINT/SIGTERM, replies are drained for min(cooldown, this)
# 128 + the signal, as a shell reports it; an abort for --min-hitrate is a failure (1).
EXIT_STATUS = {"SIGINT": 130, "SIGTERM": 143, "min hitrate": 1}
RATE_STEP = 0.05  # SIGUSR1 raises, SIGUSR2 lowers the send rate by 5%, as ZMap's send.c
RATE_SIGNALS = {"SIGUSR1": 1.0 + RATE_STEP, "SIGUSR2": 1.0 - RATE_STEP}


class Stopped(Exception):
    """SIGTERM (or SIGINT) arrived while sending: stop sending, drain, finish the output."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass
class ScanSettings:
    """Everything a live scan needs, already validated by the CLI."""

    space: Any  # liveness.targets.TargetSpace
    probes: Sequence[Any]  # liveness.probes.Probe
    context: Any  # liveness.probes.context.ScanContext
    seed: int
    ifname: str
    output: str
    shards: int = 1
    shard: int = 0
    rate: float | None = 10_000.0
    max_targets: int | None = None
    max_runtime: float | None = None
    cooldown: float = 8.0
    retransmissions: int = 1
    retransmit_delay: float = 20.0
    fields: Sequence[str] | None = None
    output_filter: str | None = None
    resume: bool = False
    quiet: bool = False
    status_csv: str | None = None
    metadata_path: str | None = None
    checkpoint_path: str | None = None
    copies: int = 1
    max_sendto_failures: int | None = None
    destination: Destination | None = None  # resolved from ``output`` when not given
    transport: Any = None  # liveness.net.transport.Transport; default: the rings on ifname
    # Drop every capability once the sockets are open. Only an in-process caller that must keep
    # its own (a test driving the loop through the in-memory transport) turns this off.
    drop_privileges: bool = True
    describe: dict[str, Any] = field(default_factory=dict)
    output_module: str | None = None  # -O: csv, json, parquet (None: by extension)
    header: bool = True  # False: --no-header-row
    max_results: int | None = None  # -N: stop once this many rows are written
    min_hitrate: float | None = None  # --min-hitrate, percent (ZMap's monitor.c semantics)


@dataclass
class _Segment:
    start: int
    end: int
    sent_at: float


def build_batch(
    probes: Sequence[Any],
    context: Any,
    targets: Any,
    attempt: int,
    copies: int = 1,
) -> tuple[NDArray[np.uint8], NDArray[np.uint32]]:
    """Frames for every probe of every target, target-major (a target's probes leave together).

    ``targets`` is a uint32 array of IPv4 addresses or a :class:`liveness.targets.TargetBatch`
    of both families; the frames keep the targets' order whatever their family, so "the first
    k targets were sent" stays true at every flush (the checkpoint relies on it).
    ``copies`` > 1 repeats each frame in place (ZMap's ``-P``).
    """
    if isinstance(targets, np.ndarray):
        return _place(probes, copies, len(targets), [(None, context, targets, attempt)])
    rows6 = np.flatnonzero(targets.is6)
    if rows6.size == 0:
        return build_batch(probes, context, targets.v4, attempt, copies)
    rows4 = np.flatnonzero(~targets.is6)
    parts = [(rows6, context, targets.v6[rows6], attempt)]
    if rows4.size:
        parts.append((rows4, context, targets.v4[rows4], attempt))
    return _place(probes, copies, len(targets.is6), parts)


def _place(
    probes: Sequence[Any], copies: int, count: int, parts: list[tuple[Any, ...]]
) -> tuple[NDArray[np.uint8], NDArray[np.uint32]]:
    """Lay out the frames of each part (its rows, or all rows for None) target-major."""
    from liveness.probes.base import prepare6

    built = []
    for rows, context, addresses, attempt in parts:
        six = addresses.ndim == 2
        if six:  # the checksum share and token chain of each target, once for every probe
            addresses = prepare6(context, addresses)
        frames = [
            probe.build6(context, addresses, attempt)
            if six
            else probe.build(context, addresses, attempt)
            for probe in probes
        ]
        built.append((rows, frames))
    width = max(f.shape[1] for _, frames in built for f in frames)
    slots = len(probes) * copies
    out = np.zeros((count, slots, width), dtype=np.uint8)
    lengths = np.empty((count, slots), dtype=np.uint32)
    for rows, frames in built:
        at = slice(None) if rows is None else rows
        for index, probe_frames in enumerate(frames):
            for copy in range(copies):
                out[at, index * copies + copy, : probe_frames.shape[1]] = probe_frames
                lengths[at, index * copies + copy] = probe_frames.shape[1]
    return out.reshape(count * slots, width), lengths.reshape(-1)


class _Targets:
    """Offsets of the shard's permuted order -> addresses."""

    def __init__(self, space: Any, seed: int, shards: int, shard: int) -> None:
        from liveness.targets import Permutation, Shard

        self.space = space
        self.permutation = Permutation(space.size, seed)
        self.shard = Shard(space.size, shards, shard)

    def at(self, start: int, stop: int) -> Any:
        """The targets at offsets ``[start, stop)``: uint32 IPv4 addresses, or a
        :class:`~liveness.targets.TargetBatch` when the space holds IPv6."""
        positions = self.shard.positions(start, stop)
        if getattr(self.space, "has_ipv6", False):
            return self.space.lookup(self.permutation(positions))
        addresses: NDArray[np.uint32] = self.space.addresses(self.permutation(positions))
        return addresses


def run_scan(settings: ScanSettings) -> dict[str, Any]:
    """Run a live scan to completion; returns the metadata (also written to ``-m``).

    A scan to stdout or a device keeps its checkpoint and journal in a private directory: it is
    removed on every way out, unless it holds rows that could not be written (the error says
    where they are).
    """
    destination = settings.destination or resolve_destination(settings.output)
    # SIGUSR1/SIGUSR2 only queue a rate change; the loop applies it between batches. The
    # handlers stay until the end, so a late signal (in cooldown) never kills the scan.
    rate_requests: list[str] = []

    def request_rate(signum: int, frame: object) -> None:
        rate_requests.append(signal.Signals(signum).name)

    rate_signals = (signal.SIGUSR1, signal.SIGUSR2)
    previous = [signal.signal(sig, request_rate) for sig in rate_signals]
    guards: list[Any] = []  # the --app-layer RST guard, removed on every way out
    try:
        return _run_scan(settings, destination, rate_requests, guards)
    finally:
        for sig, handler in zip(rate_signals, previous, strict=True):
            signal.signal(sig, handler)
        for guard in guards:
            if not guard.release():
                import sys

                print(
                    f"liveness: the RST guard (nftables table inet {guard.table}) is still "
                    "installed in this network namespace; remove it with: liveness cleanup",
                    file=sys.stderr,
                )
        destination.release()


def _run_scan(
    settings: ScanSettings, destination: Destination, rate_requests: list[str], guards: list[Any]
) -> dict[str, Any]:
    from liveness.net.afpacket import SendPolicy
    from liveness.net.transport import PacketTransport
    from liveness.scan.privileges import drop_capabilities

    targets = _Targets(settings.space, settings.seed, settings.shards, settings.shard)
    total = targets.shard.count
    if settings.max_targets is not None:
        total = min(total, settings.max_targets)
    n_probes = len(settings.probes)
    frames_per_target = n_probes * settings.copies
    names = [probe.name for probe in settings.probes]
    if settings.resume and not destination.resumable:
        raise RunError(f"--resume needs -o to name a regular file, not {settings.output!r}")
    checkpoint_path = settings.checkpoint_path or (
        default_checkpoint(settings.output)
        if destination.resumable
        else destination.beside(".checkpoint")
    )
    checkpoint = Checkpoint(checkpoint_path, _resume_identity(settings, total), settings.resume)
    app_layer = settings.context.app_layer
    if app_layer is not None:  # before any socket opens: the keeper inherits none of them
        from pathlib import Path

        from liveness.scan.rst_guard import install_guard

        try:
            guards.append(
                install_guard(
                    settings.context.sport_base,
                    settings.context.sport_count,
                    Path(f"{checkpoint_path}.guard.json"),
                )
            )
        except BaseException:
            checkpoint.close(finished=False)
            raise

    transport = settings.transport or PacketTransport(
        settings.ifname,
        int(settings.context.src_ip),
        src_ip6=settings.context.src_ip6,
        snaplen=_snaplen(settings.context),
    )
    sender = transport.open_sender(SendPolicy(max_failures=settings.max_sendto_failures))
    from liveness.probes.pipeline import ReplyPipeline

    pipeline = ReplyPipeline(settings.context, settings.probes)
    receiver_settings = ReceiverSettings(
        transport=transport,
        src_ip=int(settings.context.src_ip),
        src_ip6=settings.context.src_ip6,
        output=settings.output,
        destination=destination,
        fields=settings.fields,
        output_filter=settings.output_filter,
        resume=settings.resume,
        probe_names=names,
        parent_pid=os.getpid(),
        orphan_drain_s=min(settings.cooldown, ORPHAN_DRAIN_MAX_S),
        metadata_path=settings.metadata_path,
        output_module=settings.output_module,
        header=settings.header,
        max_results=settings.max_results,
    )
    process, counters, stop, result = start_receiver(receiver_settings, pipeline)
    _wait_ready(counters, process, result)
    capabilities_dropped = drop_capabilities() if settings.drop_privileges else False

    from liveness.scan.pacing import Pacer

    pacer = Pacer(
        settings.rate,
        max_batch=sender.slots - sender.slots % frames_per_target,
        granule=frames_per_target,
    )
    status = StatusReporter(names, quiet=settings.quiet, csv_path=settings.status_csv)
    guard = HitrateGuard(settings.min_hitrate) if settings.min_hitrate else None
    rate_changes: list[dict[str, Any]] = []
    started_wall = time.time()
    started = time.monotonic()
    retransmissions = settings.retransmissions if settings.retransmit_delay > 0 else 0
    pending: list[deque[_Segment]] = [deque() for _ in range(retransmissions + 1)]
    done = [checkpoint.originals_done] + [
        checkpoint.retransmissions_done(a) for a in range(1, retransmissions + 1)
    ]
    for attempt in range(1, retransmissions + 1):
        # After a resume, targets sent before the crash but not yet retransmitted wait one delay.
        if done[attempt] < done[attempt - 1]:
            pending[attempt].append(_Segment(done[attempt], done[attempt - 1], started))
    sent_frames = 0
    app_charged = 0  # follow-up packets already charged to the pacer
    targets_probed = done[0]
    next_status = started + 1.0
    idle_s = 0.0  # time spent waiting for retransmissions to fall due, with nothing to send
    interrupted: str | None = None

    def sample(phase: str) -> StatusSample:
        return StatusSample(
            elapsed=time.monotonic() - started,
            targets_done=targets_probed,
            targets_total=total,
            sent=sent_frames,
            received=int(counters[Counters.FRAMES]),
            valid=int(counters[Counters.VALID]),
            drops=int(counters[Counters.KERNEL_DROPS]),
            hits_per_probe=[int(counters[Counters.hits(i)]) for i in range(n_probes)],
            hits_any=int(counters[Counters.HITS_ANY]),
            phase=phase,
            sendto_failures=sender.send_failures,
            rate=pacer.rate,
        )

    def change_rate() -> None:
        """Apply the SIGUSR1/SIGUSR2 received since the last batch, 5% each."""
        while rate_requests:
            name = rate_requests.pop(0)
            elapsed = round(time.monotonic() - started, 3)
            if pacer.rate is None:
                status.note(f"liveness: {name} ignored: the send rate is unlimited (-r 0)")
                continue
            old = pacer.rate
            pacer.set_rate(old * RATE_SIGNALS[name])
            rate_changes.append(
                {"t": elapsed, "signal": name, "from_pps": old, "to_pps": pacer.rate}
            )
            way = "increased" if pacer.rate > old else "decreased"
            status.note(f"liveness: send rate {way} from {old:.0f} to {pacer.rate:.0f} p/s")

    def watch(phase: str) -> str | None:
        """Report the status line; the reason to stop the scan, if any."""
        now_sample = sample(phase)
        status.report(now_sample)
        if guard is not None and guard.check(now_sample):
            return "min hitrate"
        return None

    # SIGINT and SIGTERM only ask the loop to stop: it does so between batches, never between
    # recording progress and the flush that makes it true, so the checkpoint stays exact.
    stop_requested: list[str] = []

    def request_stop(signum: int, frame: object) -> None:
        stop_requested.append(signal.Signals(signum).name)

    stop_signals = (signal.SIGINT, signal.SIGTERM)
    previous = [signal.signal(sig, request_stop) for sig in stop_signals]
    try:
        while True:
            now = time.monotonic()
            if stop_requested:
                interrupted = stop_requested[0]
                break
            if counters[Counters.OUTPUT_CLOSED]:
                interrupted = "output closed"
                break
            if counters[Counters.RESULTS_CAPPED]:
                interrupted = "max results reached"
                break
            if rate_requests:
                change_rate()
            if now >= next_status:
                interrupted = watch("send")
                next_status = now + 1.0
                if interrupted:
                    break
            if not process.is_alive():
                raise RunError("the receiver process stopped unexpectedly")
            if settings.max_runtime is not None and now - started >= settings.max_runtime:
                interrupted = "max runtime reached"
                break
            due = _due_attempt(pending, settings.retransmit_delay, now)
            if due is None and done[0] >= total:
                waiting = [q[0].sent_at + settings.retransmit_delay for q in pending[1:] if q]
                if not waiting:
                    break
                pause = max(0.0, min(min(waiting), next_status) - now)
                time.sleep(pause)
                idle_s += pause
                continue
            app_sent = int(counters[Counters.APP_SENT])
            if app_sent > app_charged:  # the receiver's follow-ups share the rate
                pacer.record(app_sent - app_charged)
                app_charged = app_sent
            grant = pacer.grant(deadline=next_status)
            if grant == 0:
                continue
            want = grant // frames_per_target
            if due is None:
                first, count = done[0], min(want, total - done[0])
                attempt_sent = 0
            else:
                head = pending[due][0]
                first, count = done[due], min(want, head.end - done[due])
                attempt_sent = due
            addresses = targets.at(first, first + count)
            frames, lengths = build_batch(
                settings.probes, settings.context, addresses, attempt_sent, settings.copies
            )

            # Progress is recorded just before each flush (see RingSender.send): a SIGKILL then
            # neither repeats nor loses a target on --resume.
            def record(frames_through: int, slot: int = attempt_sent, base: int = first) -> None:
                checkpoint.set(slot, base + frames_through // frames_per_target)

            sender.send(frames, lengths, group=frames_per_target, before_flush=record)
            pacer.record(frames.shape[0])
            sent_frames += frames.shape[0]
            done[attempt_sent] = first + count
            if attempt_sent == 0:
                targets_probed = done[0]
            else:
                head = pending[attempt_sent][0]
                if done[attempt_sent] >= head.end:
                    pending[attempt_sent].popleft()
            if attempt_sent < retransmissions:
                _append_segment(pending[attempt_sent + 1], first, first + count, time.monotonic())
    finally:
        # Later signals only cut the drain short: the output is finished either way.
        for sig, handler in zip(stop_signals, previous, strict=True):
            signal.signal(sig, handler)
        send_end_wall = time.time()
        counters[Counters.COOLDOWN_START_NS] = time.time_ns()
        sender.close()
    cooldown = settings.cooldown
    if interrupted in EXIT_STATUS or interrupted == "output closed":
        cooldown = min(cooldown, STOP_DRAIN_MAX_S)
    if interrupted == "max results reached":
        cooldown = 0.0  # ZMap's receiver stops at once: later replies would be dropped anyway
    try:
        with _DrainSignals():
            cooldown_end = time.monotonic() + cooldown
            while time.monotonic() < cooldown_end and process.is_alive():
                # Wake often enough to see -N reached; report about once a second.
                wake = min(next_status, cooldown_end) - time.monotonic()
                time.sleep(min(0.05, max(0.0, wake)))
                if counters[Counters.RESULTS_CAPPED]:
                    interrupted = interrupted or "max results reached"
                    break
                if time.monotonic() >= min(next_status, cooldown_end):
                    next_status = time.monotonic() + 1.0
                    reason = watch("cooldown")
                    if reason and interrupted is None:
                        interrupted = reason
                        cooldown_end = min(cooldown_end, time.monotonic() + STOP_DRAIN_MAX_S)
    except Stopped:
        pass
    stop.set()
    summary: dict[str, Any] = {}
    with _DrainSignals(ignore=True):
        if result.poll(60.0):
            summary = result.recv()
        process.join(10.0)
    status.close()
    finished = interrupted is None and done[0] >= total and all(d >= total for d in done[1:])
    checkpoint.close(finished=finished)
    if summary.get("output_closed"):
        raise OutputClosed(str(summary["error"]))
    if summary.get("error"):
        raise RunError(f"receiver failed: {summary['error']}")
    metadata = _metadata(
        settings,
        names=names,
        total=total,
        sent_frames=sent_frames,
        done=done,
        started_wall=started_wall,
        send_end_wall=send_end_wall,
        summary=summary,
        achieved_rate=pacer.achieved_rate(idle_s),
        max_1s_rate=pacer.max_1s_rate,
        sendto_failures=sender.send_failures,
        capabilities_dropped=capabilities_dropped,
        interrupted=interrupted,
    )
    if app_layer is not None:
        metadata["app_layer"] = {
            "profiles": {str(port): p for port, p in sorted(app_layer.profiles.items())},
            "other_ports_profile": "http",
            "timeout_s": app_layer.timeout_s,
            "banner_bytes": app_layer.banner_bytes,
            "rst_guard": guards[0].describe() if guards else None,
            **summary.get("app_layer", {}),
        }
    metadata.update(
        _zmap_limits(settings, guard, pacer.rate, rate_changes, sample("end"), interrupted)
    )
    if settings.metadata_path:
        text = json.dumps(metadata, indent=1, sort_keys=True, default=str)
        write_result_file(settings.metadata_path, text, "-m/--metadata-file")
    return metadata


def _snaplen(context: Any) -> int:
    """Bytes captured per reply: the headers the classifier reads, and with ``--app-layer``
    the longest TCP header (60) and ``--banner-bytes`` of payload."""
    app = getattr(context, "app_layer", None)
    if app is None:
        return 192
    return max(192, 14 + 60 + 60 + int(app.banner_bytes) + 16)


class _DrainSignals:
    """While draining: SIGINT/SIGTERM end the wait (raise :class:`Stopped`) or, with
    ``ignore``, are ignored while the receiver finishes the output."""

    def __init__(self, ignore: bool = False) -> None:
        self.ignore = ignore
        self.saved: list[Any] = []

    def __enter__(self) -> None:
        def handler(signum: int, frame: object) -> None:
            if not self.ignore:
                raise Stopped(signal.Signals(signum).name)

        self.saved = [signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)]

    def __exit__(self, *exc: object) -> None:
        for sig, saved in zip((signal.SIGINT, signal.SIGTERM), self.saved, strict=True):
            signal.signal(sig, saved)


def default_checkpoint(output: str) -> str:
    """Where a scan writing the regular file ``output`` keeps its checkpoint (beside the file a
    symlink points to). Scans to stdout or a device keep theirs in a private directory."""
    return f"{os.path.realpath(output)}.checkpoint"


def _resume_identity(settings: ScanSettings, total: int) -> dict[str, Any]:
    """What must not change between a scan and its ``--resume``."""
    identity: dict[str, Any] = {
        "seed": settings.seed,
        "shards": settings.shards,
        "shard": settings.shard,
        "probes": [probe.name for probe in settings.probes],
        "targets_total": total,
        "space_size": int(settings.space.size),
        "source_ip": int(settings.context.src_ip),
        "retransmissions": settings.retransmissions,
        "copies": settings.copies,
        "source_mac": settings.context.src_mac.hex(":"),
        "gateway_mac": settings.context.gw_mac.hex(":"),
        "vp": settings.context.vp,
        "fields": list(settings.fields) if settings.fields else None,
        "output_filter": settings.output_filter,
        "target_space_sha256": space_digest(settings.space),
        "output": settings.output,
    }
    if settings.context.src_ip6 is not None:  # absent for IPv4 scans, as before IPv6
        identity["source_ip6"] = settings.context.src_ip6_text
    app = settings.context.app_layer
    if app is not None:  # absent without --app-layer, as before it existed
        identity["app_layer"] = {
            "profiles": {str(port): p for port, p in sorted(app.profiles.items())},
            "banner_bytes": app.banner_bytes,
        }
    ports = (settings.context.sport_base, settings.context.sport_count)
    if ports != (32768, 28232):  # -s given (absent otherwise, as before -s existed)
        identity["source_ports"] = list(ports)
    if settings.output_module is not None:  # -O and --no-header-row shape the file resumed
        identity["output_module"] = settings.output_module
    if not settings.header:
        identity["header_row"] = False
    return identity


def space_digest(space: Any) -> str:
    """A digest of the target space itself (its address intervals, after allow and block lists
    and ``-I``, and its IPv6 part): two scans with the same size but different targets differ
    here. An IPv4-only space digests as it did before IPv6, so older checkpoints still match."""
    intervals = np.ascontiguousarray(space.intervals, dtype="<u8")
    digest = hashlib.sha256(intervals.tobytes())
    if getattr(space, "has_ipv6", False):
        digest.update(space.fingerprint())
    return digest.hexdigest()


def _wait_ready(counters: Any, process: Any, result: Any) -> None:
    deadline = time.monotonic() + 30.0
    while counters[Counters.READY] == 0:
        if not process.is_alive() or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    if counters[Counters.READY] != 1:
        message = "the receiver did not start"
        if result.poll(1.0):
            message = str(result.recv().get("error") or message)
        process.join(1.0)
        raise RunError(message)


def _due_attempt(pending: list[deque[_Segment]], delay: float, now: float) -> int | None:
    """The highest retransmission attempt whose oldest segment is due, if any."""
    for attempt in range(len(pending) - 1, 0, -1):
        queue = pending[attempt]
        if queue and queue[0].sent_at + delay <= now:
            return attempt
    return None


def _append_segment(queue: deque[_Segment], start: int, end: int, sent_at: float) -> None:
    """Extend the newest segment when contiguous and recent (it is then due at the later time)."""
    if queue and queue[-1].end == start and sent_at - queue[-1].sent_at < SEGMENT_MERGE_S:
        queue[-1].end = end
        queue[-1].sent_at = sent_at
    else:
        queue.append(_Segment(start, end, sent_at))


def _metadata(
    settings: ScanSettings,
    *,
    names: list[str],
    total: int,
    sent_frames: int,
    done: list[int],
    started_wall: float,
    send_end_wall: float,
    summary: dict[str, Any],
    achieved_rate: float,
    max_1s_rate: int,
    sendto_failures: int,
    capabilities_dropped: bool,
    interrupted: str | None,
) -> dict[str, Any]:
    context = settings.context
    end_wall = time.time()
    return {
        "liveness_version": __import__("liveness").__version__,
        "seed": settings.seed,
        "shards": settings.shards,
        "shard": settings.shard,
        "probes": names,
        "interface": settings.ifname,
        "source_ip": _dotted(int(context.src_ip)),
        "source_ip6": context.src_ip6_text or None,
        "gateway_mac": context.gw_mac.hex(":"),
        "source_mac": context.src_mac.hex(":"),
        "vp": context.vp,
        "key_parameters": {
            "sport_base": context.sport_base,
            "sport_count": context.sport_count,
            "max_attempts": context.max_attempts,
            "derived_from_seed": True,
        },
        "targets_total": total,
        "targets_probed": done[0],
        "retransmitted": done[1:],
        "retransmit_delay_s": settings.retransmit_delay,
        "packets_sent": sent_frames,
        "rate_requested_pps": settings.rate,
        "rate_achieved_pps": round(achieved_rate, 1),
        "rate_max_1s_pps": max_1s_rate,
        "sendto_failures": sendto_failures,
        "send_seconds": round(send_end_wall - started_wall, 3),
        "replies_per_probe_category": summary.get("replies_per_probe_category", {}),
        "distinct_targets_per_probe": summary.get("distinct_targets_per_probe", {}),
        "classifier_counters": summary.get("classifier", {}),
        "rows_written": summary.get("rows_written", 0),
        "kernel_drops": summary.get("kernel_drops", 0),
        "capabilities_dropped": capabilities_dropped,
        "interrupted": interrupted,
        "resumed": settings.resume,
        "start": _iso(started_wall),
        "end": _iso(end_wall),
        "output": settings.output,
        **settings.describe,
    }


def _zmap_limits(
    settings: ScanSettings,
    guard: HitrateGuard | None,
    rate: float | None,
    rate_changes: list[dict[str, Any]],
    last: StatusSample,
    interrupted: str | None,
) -> dict[str, Any]:
    """Metadata of -N, --min-hitrate, -O, --no-header-row and the SIGUSR1/2 rate changes."""
    out: dict[str, Any] = {
        "max_results": settings.max_results,
        "min_hitrate": settings.min_hitrate,
        "hitrate_percent": round(hitrate(last), 4),
        "rate_final_pps": rate,
        "rate_changes": rate_changes,
        "output_module": settings.output_module,
        "header_row": settings.header,
    }
    if interrupted == "min hitrate" and guard is not None:
        out["aborted"] = guard.reason()
    return out


def _dotted(address: int) -> str:
    return ".".join(str((address >> shift) & 0xFF) for shift in (24, 16, 8, 0))


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"
