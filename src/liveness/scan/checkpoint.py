"""A scan's checkpoint: the scan's settings once, and its progress counters updated in place.

Progress is a small memory-mapped array of int64, stored just before each flush of the send
ring. A flush, once started, completes even if the process is killed (the kernel acts on the
signal when the system call returns), so ``--resume`` continues from the first target whose
probes had not been sent, and probes nothing twice. The only window left is the few instructions
between the store and the system call.

The progress file is locked (``flock``) for as long as the scan or its receiver runs; the lock is
inherited by the receiver process, so a ``--resume`` after a SIGKILL waits until the killed scan's
receiver has drained its last replies and closed the output.
"""

from __future__ import annotations

import fcntl
import json
import mmap
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from liveness.errors import InputError

__all__ = ["Checkpoint", "wait_for_unlock"]

MAGIC = b"LVCKPT01"
SLOTS = 8  # [originals_done, rtx_done(attempt 1), rtx_done(attempt 2), ..., unused]
LOCK_WAIT_S = 30.0


def wait_for_unlock(progress_path: str | os.PathLike[str], limit_s: float) -> bool:
    """Wait until no process holds the scan's lock on ``progress_path`` (a killed scan's
    receiver drains, then lets go); False if it is still held after ``limit_s`` seconds."""
    deadline = time.monotonic() + limit_s
    with open(progress_path, "rb") as handle:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
                return True
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.05)


class Checkpoint:
    """``PATH.json`` holds the settings; ``PATH.progress`` the counters (mmap, int64)."""

    def __init__(
        self, path: str | os.PathLike[str], settings: dict[str, Any], resume: bool
    ) -> None:
        self.settings_path = Path(f"{path}.json")
        self.progress_path = Path(f"{path}.progress")
        if resume:
            self._check_resumable(settings)
            self._wait_for_previous_run()
        size = len(MAGIC) + 8 * SLOTS
        self._file = open(self.progress_path, "a+b")  # noqa: SIM115 (kept open for the mmap)
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise InputError(
                f"{self.progress_path} is in use by another running scan with the same output"
            ) from None
        if not resume:  # only once the lock is ours: a running scan's progress is never reset
            tmp = self.settings_path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(settings, indent=1, sort_keys=True))
            os.replace(tmp, self.settings_path)
            self._file.truncate(0)
            self._file.write(MAGIC + bytes(8 * SLOTS))
            self._file.flush()
        if os.fstat(self._file.fileno()).st_size != size:
            self._file.close()
            raise InputError(f"{self.progress_path} is not a liveness checkpoint")
        self._map = mmap.mmap(self._file.fileno(), size)
        self.counters: NDArray[np.int64] = np.frombuffer(
            self._map, dtype=np.int64, offset=len(MAGIC)
        )

    def _check_resumable(self, settings: dict[str, Any]) -> None:
        if not self.settings_path.exists() or not self.progress_path.exists():
            raise InputError(f"--resume: no checkpoint at {self.settings_path} (nothing to resume)")
        try:
            saved = json.loads(self.settings_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"--resume: {self.settings_path} is unreadable ({exc})") from None
        with open(self.progress_path, "rb") as handle:
            head = handle.read(len(MAGIC) + 8 * SLOTS)
        if not head.startswith(MAGIC) or len(head) != len(MAGIC) + 8 * SLOTS:
            raise InputError(f"--resume: {self.progress_path} is not a liveness checkpoint")
        if saved.pop("finished", False):
            raise InputError(
                f"--resume: the scan recorded in {self.settings_path} already finished "
                "(nothing to resume; run it without --resume to scan again)"
            )
        differing = sorted(
            key for key in set(saved) | set(settings) if saved.get(key) != settings.get(key)
        )
        if differing:
            raise InputError(
                "--resume: the scan's settings differ from the checkpoint's in "
                + ", ".join(differing)
                + f" (see {self.settings_path})"
            )

    def _wait_for_previous_run(self) -> None:
        """Block until no process of the interrupted scan holds the lock (its receiver drains)."""
        if not wait_for_unlock(self.progress_path, LOCK_WAIT_S):
            raise InputError(f"--resume: {self.progress_path} is still locked by a running scan")

    @property
    def originals_done(self) -> int:
        """Targets (offsets in the shard's order) whose original probes have all been sent."""
        return int(self.counters[0])

    def retransmissions_done(self, attempt: int) -> int:
        """Targets whose retransmission ``attempt`` (1..) has been sent."""
        return int(self.counters[attempt])

    def set(self, slot: int, value: int) -> None:
        """Store one counter (0: originals, k: retransmission k)."""
        self.counters[slot] = value

    def close(self, finished: bool) -> None:
        """Flush; a finished scan marks its checkpoint complete (resuming it probes nothing)."""
        self._map.flush()
        del self.counters
        self._map.close()
        self._file.close()
        if finished:
            saved = json.loads(self.settings_path.read_text())
            saved["finished"] = True
            self.settings_path.write_text(json.dumps(saved, indent=1, sort_keys=True))
