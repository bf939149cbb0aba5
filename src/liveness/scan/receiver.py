"""The receiving side of a scan, in its own process: transport -> reply pipeline -> writer.

It runs beside the sender so that classification and writing never slow the send loop, and
shares a few counters with it (for the status line) through shared memory. The frames come from
the scan's transport (the receive ring on the wire; an in-memory stand-in in tests), and go
through the same :class:`~liveness.probes.pipeline.ReplyPipeline` as ``liveness decode``.

With ``--app-layer`` the receiver also answers SYN-ACKs (:mod:`liveness.scan.followups`) through
a sender of its own, opened before privileges are dropped; the packets it sends are counted in
the shared ``APP_SENT`` slot, which the sender's pacer charges against ``-r``.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import SynchronizedArray
from multiprocessing.synchronize import Event
from typing import Any

from liveness.probes.pipeline import ReplyPipeline

__all__ = ["Counters", "ReceiverSettings", "receiver_main"]


class Counters:
    """Indices into the shared int64 array the receiver fills and the status line reads."""

    FRAMES = 0
    VALID = 1
    INVALID = 2
    KERNEL_DROPS = 3
    ROWS_WRITTEN = 4
    COOLDOWN_START_NS = 5
    READY = 6
    HITS_ANY = 7
    OUTPUT_CLOSED = 8  # the output's reader went away (a closed pipe): the sender stops
    RESULTS_CAPPED = 9  # -N results were written: the sender stops, later replies are dropped
    APP_SENT = 10  # packets the --app-layer follow-ups sent (charged to the sender's rate)
    FIXED = 11

    @staticmethod
    def size(n_probes: int) -> int:
        """Slots needed: the fixed ones, then hits (distinct targets) and replies per probe."""
        return Counters.FIXED + 2 * n_probes

    @staticmethod
    def hits(probe: int) -> int:
        """Slot of the number of distinct targets that answered probe ``probe``."""
        return Counters.FIXED + 2 * probe

    @staticmethod
    def replies(probe: int) -> int:
        """Slot of the number of valid replies to probe ``probe``."""
        return Counters.FIXED + 2 * probe + 1


@dataclass(frozen=True)
class ReceiverSettings:
    """What the receiver process needs; picklable, decided by the parent."""

    transport: Any  # liveness.net.transport.Transport
    src_ip: int
    output: str
    destination: Any  # liveness.output.destination.Destination
    fields: Sequence[str] | None
    output_filter: str | None
    resume: bool
    probe_names: Sequence[str]
    parent_pid: int = 0
    flush_interval_s: float = 1.0
    orphan_drain_s: float = 2.0
    """After the sender dies (SIGKILL), keep receiving this long: replies to its last probes
    are still on their way, and a resumed scan will not probe those targets again."""
    src_ip6: bytes | None = None
    metadata_path: str | None = None
    """Where the sender writes ``-m``: if the sender dies, the receiver writes there instead
    what it knows (the replies, and that the scan was killed)."""
    output_module: str | None = None
    """``-O``: csv, json or parquet (None: by the output's extension)."""
    header: bool = True
    """False: CSV without its header line (``--no-header-row``)."""
    max_results: int | None = None
    """``-N``: write at most this many rows, then tell the sender to stop."""


def receiver_main(
    settings: ReceiverSettings,
    pipeline: ReplyPipeline,
    counters: SynchronizedArray[int],
    stop: Event,
    result: Connection,
) -> None:
    """Receive until ``stop`` is set and the ring is drained; send a summary dict on ``result``.

    ``pipeline`` is built by the parent (same key, same probes).
    """
    from liveness.errors import OutputClosed
    from liveness.output import open_writer, read_replies
    from liveness.scan.privileges import drop_capabilities

    _stop_with_parent(settings.parent_pid)
    summary: dict[str, Any] = {"error": None}
    followups = None
    try:
        receiver = settings.transport.open_receiver()
        if pipeline.classifier.ctx.app_layer is not None:
            followups = _open_followups(settings, pipeline)
        writer = open_writer(
            settings.destination,
            fields=settings.fields,
            output_filter=settings.output_filter,
            scanner_addr=settings.src_ip,
            scanner_addr6=settings.src_ip6,
            resume=settings.resume,
            module=settings.output_module,
            header=settings.header,
            max_rows=settings.max_results,
        )
    except Exception as exc:  # reported to the parent, which raises it
        summary["error"] = f"{type(exc).__name__}: {exc}"
        counters[Counters.READY] = -1
        result.send(summary)
        return
    drop_capabilities()
    names = pipeline.names
    if settings.resume and settings.destination.resumable:
        for old in read_replies(
            settings.destination.path, columns=["probe", "target", "af", "target6", "reply"]
        ):
            pipeline.remember(old)
    counters[Counters.READY] = 1
    last_flush = time.monotonic()
    cooldown_marked = False
    draining_since: float | None = None
    try:
        while True:
            if (stop.is_set() or _parent_gone) and draining_since is None:
                draining_since = time.monotonic()
            batch = receiver.poll(timeout_ms=50)
            if len(batch.lengths):
                records = pipeline.run(batch.frames, batch.lengths, batch.ts_ns)
                if followups is not None:
                    followups.handle(pipeline.last)
                counters[Counters.FRAMES] += len(batch.lengths)
                counters[Counters.VALID] += records.num_rows
                counters[Counters.INVALID] = int(
                    counters[Counters.FRAMES] - counters[Counters.VALID]
                )
                if records.num_rows:
                    writer.write(records)
                    if writer.full and not counters[Counters.RESULTS_CAPPED]:
                        counters[Counters.RESULTS_CAPPED] = 1
            if followups is not None:
                followups.expire()
                counters[Counters.APP_SENT] = followups.sent
            now = time.monotonic()
            if not cooldown_marked and counters[Counters.COOLDOWN_START_NS] > 0:
                writer.set_cooldown_start(int(counters[Counters.COOLDOWN_START_NS]))
                cooldown_marked = True
            if now - last_flush >= settings.flush_interval_s:
                writer.flush()
                _update_shared(receiver, pipeline, counters, writer)
                last_flush = now
            drain_for = settings.orphan_drain_s if _parent_gone else 0.0
            quiet = not len(batch.lengths)
            if draining_since is not None and quiet and now - draining_since >= drain_for:
                break
        if followups is not None:
            followups.close_all()
            counters[Counters.APP_SENT] = followups.sent
            summary["app_layer"] = followups.summary()
        writer.flush()
        _update_shared(receiver, pipeline, counters, writer)
        writer.close()
        summary.update(
            {
                "classifier": dict(pipeline.counters),
                "replies_per_probe_category": pipeline.categories(),
                "distinct_targets_per_probe": {
                    n: pipeline.repeats.distinct(i) for i, n in enumerate(names)
                },
                "rows_written": int(writer.rows_written),
                "kernel_drops": int(counters[Counters.KERNEL_DROPS]),
            }
        )
    except OutputClosed as exc:  # the reader has seen enough: not a failure of the scan
        counters[Counters.OUTPUT_CLOSED] = 1
        summary.update(error=str(exc), output_closed=True)
        with contextlib.suppress(Exception):
            writer.close()
    except Exception as exc:
        summary["error"] = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):
            writer.close()
    finally:
        if followups is not None:
            with contextlib.suppress(Exception):  # every connection is closed on every way out
                followups.close_all()
            with contextlib.suppress(Exception):
                followups.sender.close()
        receiver.close()
        if _parent_gone and settings.metadata_path:
            _write_orphan_metadata(settings, summary)
        result.send(summary)


def _open_followups(settings: ReceiverSettings, pipeline: ReplyPipeline) -> Any:
    """The follow-up engine of an ``--app-layer`` scan, with a sender of its own."""
    from liveness.net.afpacket import SendPolicy
    from liveness.scan.followups import FollowUps

    sender = settings.transport.open_sender(SendPolicy(max_failures=None))
    followups = FollowUps(
        pipeline.classifier.ctx, lambda frames, lengths: sender.send(frames, lengths)
    )
    followups.sender = sender
    return followups


def _write_orphan_metadata(settings: ReceiverSettings, summary: dict[str, Any]) -> None:
    """The sender died without a word (SIGKILL, a crash): say so in ``-m``, with the replies
    that were written, so the files left behind tell how the scan ended."""
    import json

    from liveness.output.destination import write_result_file

    record = {
        "interrupted": "killed (the sender died; run again with --resume to finish)",
        "output": settings.output,
        "probes": list(settings.probe_names),
        "receiver_error": summary.get("error"),
        **{key: value for key, value in summary.items() if key != "error"},
        "end": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with contextlib.suppress(Exception):  # best effort: the replies themselves are safe
        write_result_file(
            settings.metadata_path or "",
            json.dumps(record, indent=1, sort_keys=True, default=str),
            "-m/--metadata-file",
        )


_parent_gone = False


def _on_parent_death(signum: int, frame: object) -> None:
    global _parent_gone
    _parent_gone = True


def _stop_with_parent(parent: int) -> None:
    """Get SIGTERM when the sender dies (even by SIGKILL), and treat it as the end of the scan:
    replies already on their way are drained and the output is closed properly, so a killed scan
    loses nothing it had received. Until this process exits it holds the checkpoint's lock, so a
    ``--resume`` waits for it."""
    import ctypes
    import ctypes.util
    import os
    import signal

    signal.signal(signal.SIGTERM, _on_parent_death)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the sender, which stops us
    for rate_signal in (signal.SIGUSR1, signal.SIGUSR2):  # the sender's rate, not ours
        signal.signal(rate_signal, signal.SIG_IGN)
    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent:  # the sender died before the request took effect
        _on_parent_death(int(signal.SIGTERM), None)


def _update_shared(
    receiver: Any,
    pipeline: ReplyPipeline,
    counters: SynchronizedArray[int],
    writer: Any,
) -> None:
    _, drops = receiver.stats()
    counters[Counters.KERNEL_DROPS] += drops
    counters[Counters.ROWS_WRITTEN] = int(writer.rows_written)
    counters[Counters.HITS_ANY] = pipeline.repeats.answered()
    replies = pipeline.replies_per_probe()
    for index in range(len(pipeline.names)):
        counters[Counters.hits(index)] = pipeline.repeats.distinct(index)
        counters[Counters.replies(index)] = int(replies[index])


def start_receiver(
    settings: ReceiverSettings, pipeline: ReplyPipeline
) -> tuple[mp.process.BaseProcess, SynchronizedArray[int], Event, Connection]:
    """Fork the receiver; returns (process, shared counters, stop event, result pipe)."""
    context = mp.get_context("fork")
    counters: SynchronizedArray[int] = context.Array(
        "q", Counters.size(len(settings.probe_names)), lock=False
    )
    stop = context.Event()
    parent_end, child_end = context.Pipe(duplex=False)
    process = context.Process(
        target=receiver_main,
        args=(settings, pipeline, counters, stop, child_end),
        name="liveness-receiver",
        daemon=True,
    )
    process.start()
    child_end.close()
    return process, counters, stop, parent_end
