"""The receiving side of a scan, in its own process: ring -> classify -> mark repeats -> write.

It runs beside the sender so that classification and writing never slow the send loop, and
shares a few counters with it (for the status line) through shared memory.
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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray
from pyroaring import BitMap, BitMap64

__all__ = ["Counters", "ReceiverSettings", "RepeatTracker", "receiver_main"]


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
    FIXED = 9

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


class RepeatTracker:
    """Marks replies whose (probe, target) answered before, over the whole scan.

    Keys are ``probe_index << 32 | target`` in a 64-bit roaring bitmap: memory follows the number
    of distinct answers, and the whole batch is checked with set operations, not a row loop.
    """

    def __init__(self) -> None:
        self.seen = BitMap64()
        self.any_probe = BitMap()

    def mark(self, probe_index: NDArray[np.int64], target: NDArray[np.uint32]) -> NDArray[np.bool_]:
        """Repeat flags for a batch (in order), and remember the batch."""
        keys = (probe_index.astype(np.uint64) << np.uint64(32)) | target.astype(np.uint64)
        if keys.size == 0:
            return np.zeros(0, dtype=np.bool_)
        batch = BitMap64(keys)
        before = np.array(batch & self.seen, dtype=np.uint64)
        repeat = np.isin(keys, before) if before.size else np.zeros(keys.size, dtype=np.bool_)
        _, first = np.unique(keys, return_index=True)
        later_in_batch = np.ones(keys.size, dtype=np.bool_)
        later_in_batch[first] = False
        self.seen |= batch
        self.any_probe |= BitMap(target.astype(np.uint32))
        return repeat | later_in_batch

    def add(self, probe_index: NDArray[np.int64], target: NDArray[np.uint32]) -> None:
        """Remember answers from an earlier run (``--resume``)."""
        keys = (probe_index.astype(np.uint64) << np.uint64(32)) | target.astype(np.uint64)
        self.seen |= BitMap64(keys)
        self.any_probe |= BitMap(target.astype(np.uint32))

    def distinct(self, probe_index: int) -> int:
        """How many distinct targets answered probe ``probe_index``."""
        low = probe_index << 32
        return int(self.seen.range_cardinality(low, low + (1 << 32)))


@dataclass(frozen=True)
class ReceiverSettings:
    """What the receiver process needs; picklable, decided by the parent."""

    ifname: str
    src_ip: int
    output: str
    destination: Any  # liveness.output.destination.Destination
    fields: Sequence[str] | None
    output_filter: str | None
    resume: bool
    probe_names: Sequence[str]
    parent_pid: int = 0
    flush_interval_s: float = 1.0
    ring_slots: int = 1 << 18  # ~70 MB: absorbs the replies of a burst while we classify
    orphan_drain_s: float = 2.0
    """After the sender dies (SIGKILL), keep receiving this long: replies to its last probes
    are still on their way, and a resumed scan will not probe those targets again."""
    metadata_path: str | None = None
    """Where the sender writes ``-m``: if the sender dies, the receiver writes there instead
    what it knows (the replies, and that the scan was killed)."""


def _codes(column: pa.Array[Any] | pa.ChunkedArray[Any]) -> tuple[NDArray[np.int64], list[str]]:
    """A string column as (integer codes, labels), whether dictionary-encoded or not."""
    encoded = column if isinstance(column, pa.DictionaryArray) else pc.dictionary_encode(column)
    assert isinstance(encoded, pa.DictionaryArray)
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    return codes, [str(label) for label in encoded.dictionary.to_pylist()]


def _probe_indices(batch: pa.RecordBatch, names: Sequence[str]) -> NDArray[np.int64]:
    """Each row's probe as its index in ``names`` (-1 for a probe not in the scan)."""
    codes, labels = _codes(batch.column("probe"))
    lookup = np.array([names.index(n) if n in names else -1 for n in labels], np.int64)
    indices: NDArray[np.int64] = lookup[codes]
    return indices


def _with_repeat(batch: pa.RecordBatch, repeat: NDArray[np.bool_]) -> pa.RecordBatch:
    index = batch.schema.get_field_index("repeat")
    return batch.set_column(index, batch.schema.field(index), pa.array(repeat, pa.bool_()))


def receiver_main(
    settings: ReceiverSettings,
    classifier: Any,
    counters: SynchronizedArray[int],
    stop: Event,
    result: Connection,
) -> None:
    """Receive until ``stop`` is set and the ring is drained; send a summary dict on ``result``.

    ``classifier`` is a ``ReplyClassifier`` built by the parent (same key, same probes).
    """
    from liveness.errors import OutputClosed
    from liveness.net.afpacket import RingReceiver
    from liveness.output import open_writer, read_replies
    from liveness.scan.privileges import drop_capabilities

    _stop_with_parent(settings.parent_pid)
    summary: dict[str, Any] = {"error": None}
    try:
        receiver = RingReceiver(settings.ifname, settings.src_ip, slots=settings.ring_slots)
        writer = open_writer(
            settings.destination,
            fields=settings.fields,
            output_filter=settings.output_filter,
            scanner_addr=settings.src_ip,
            resume=settings.resume,
        )
    except Exception as exc:  # reported to the parent, which raises it
        summary["error"] = f"{type(exc).__name__}: {exc}"
        counters[Counters.READY] = -1
        result.send(summary)
        return
    drop_capabilities()
    tracker = RepeatTracker()
    names = list(settings.probe_names)
    if settings.resume and settings.destination.resumable:
        for old in read_replies(settings.destination.path, columns=["probe", "target"]):
            tracker.add(_probe_indices(old, names), old.column("target").to_numpy())
    categories: dict[str, dict[str, int]] = {name: {} for name in names}
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
                records = classifier.classify(batch.frames, batch.lengths, batch.ts_ns)
                counters[Counters.FRAMES] += len(batch.lengths)
                if records.num_rows:
                    probe_index = _probe_indices(records, names)
                    target = records.column("target").to_numpy()
                    repeat = tracker.mark(probe_index, target)
                    records = _with_repeat(records, repeat)
                    counters[Counters.VALID] += records.num_rows
                    _count_categories(records, probe_index, names, categories, counters)
                    writer.write(records)
                counters[Counters.INVALID] = int(
                    counters[Counters.FRAMES] - counters[Counters.VALID]
                )
            now = time.monotonic()
            if not cooldown_marked and counters[Counters.COOLDOWN_START_NS] > 0:
                writer.set_cooldown_start(int(counters[Counters.COOLDOWN_START_NS]))
                cooldown_marked = True
            if now - last_flush >= settings.flush_interval_s:
                writer.flush()
                _update_shared(receiver, tracker, names, counters, writer)
                last_flush = now
            drain_for = settings.orphan_drain_s if _parent_gone else 0.0
            quiet = not len(batch.lengths)
            if draining_since is not None and quiet and now - draining_since >= drain_for:
                break
        writer.flush()
        _update_shared(receiver, tracker, names, counters, writer)
        writer.close()
        summary.update(
            {
                "classifier": dict(classifier.counters),
                "replies_per_probe_category": categories,
                "distinct_targets_per_probe": {n: tracker.distinct(i) for i, n in enumerate(names)},
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
        receiver.close()
        if _parent_gone and settings.metadata_path:
            _write_orphan_metadata(settings, summary)
        result.send(summary)


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
    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent:  # the sender died before the request took effect
        _on_parent_death(int(signal.SIGTERM), None)


def _count_categories(
    records: pa.RecordBatch,
    probe_index: NDArray[np.int64],
    names: Sequence[str],
    categories: dict[str, dict[str, int]],
    counters: SynchronizedArray[int],
) -> None:
    codes, labels = _codes(records.column("reply"))
    valid = probe_index >= 0
    pairs = probe_index[valid] * len(labels) + codes[valid]
    counts = np.bincount(pairs, minlength=len(names) * len(labels))
    for flat in np.flatnonzero(counts).tolist():
        probe, label = divmod(flat, len(labels))
        bucket = categories[names[probe]]
        bucket[labels[label]] = bucket.get(labels[label], 0) + int(counts[flat])
    per_probe = np.bincount(probe_index[valid], minlength=len(names))
    for index in np.flatnonzero(per_probe).tolist():
        counters[Counters.replies(index)] += int(per_probe[index])


def _update_shared(
    receiver: Any,
    tracker: RepeatTracker,
    names: Sequence[str],
    counters: SynchronizedArray[int],
    writer: Any,
) -> None:
    _, drops = receiver.stats()
    counters[Counters.KERNEL_DROPS] += drops
    counters[Counters.ROWS_WRITTEN] = int(writer.rows_written)
    counters[Counters.HITS_ANY] = len(tracker.any_probe)
    for index in range(len(names)):
        counters[Counters.hits(index)] = tracker.distinct(index)


def start_receiver(
    settings: ReceiverSettings, classifier: Any
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
        args=(settings, classifier, counters, stop, child_end),
        name="liveness-receiver",
        daemon=True,
    )
    process.start()
    child_end.close()
    return process, counters, stop, parent_end
