"""The once-a-second status line, in ZMap's shape, on stderr and optionally as CSV (``-u``)."""

from __future__ import annotations

import csv
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from liveness.errors import RunError

__all__ = ["HitrateGuard", "StatusReporter", "StatusSample", "format_duration", "hitrate"]

# ZMap's monitor.c: the hitrate is judged only after WARMUP_PERIOD seconds of scanning, and the
# scan is aborted once it has stayed below --min-hitrate for MIN_HITRATE_TIME_WINDOW seconds.
HITRATE_WARMUP_S = 5.0
HITRATE_WINDOW_S = 5.0


def format_duration(seconds: float) -> str:
    """``m:ss`` or ``h:mm:ss`` as ZMap prints elapsed and remaining time."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _si(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {unit}"
    return f"{value:.0f} "


@dataclass
class StatusSample:
    """One reading of the scan's progress."""

    elapsed: float
    targets_done: int
    targets_total: int
    sent: int
    received: int
    valid: int
    drops: int
    hits_per_probe: Sequence[int]
    hits_any: int = 0
    phase: str = "send"
    sendto_failures: int = 0  # failed flushes, each retried (ZMap's sendto failures)
    rate: float | None = None  # the send rate asked for now (-r, changed by SIGUSR1/SIGUSR2)


def hitrate(sample: StatusSample) -> float:
    """Percent of the targets probed so far that answered any probe (the status line's)."""
    return 100.0 * sample.hits_any / max(sample.targets_done, 1)


@dataclass
class HitrateGuard:
    """ZMap's ``--min-hitrate`` (a percentage): after ``warmup_s`` of scanning, a hitrate below
    ``minimum`` for ``window_s`` seconds without a break aborts the scan."""

    minimum: float
    warmup_s: float = HITRATE_WARMUP_S
    window_s: float = HITRATE_WINDOW_S
    below_since: float | None = None
    last: float = 0.0  # the hitrate of the last sample, percent
    below_for: float = 0.0  # seconds it had stayed below the minimum at the last sample

    def check(self, sample: StatusSample) -> bool:
        """Record one sample; True once the scan should be aborted (and from then on)."""
        if self.below_for >= self.window_s:
            return True  # tripped: the reason stays as it was when the scan was aborted
        self.last = hitrate(sample)
        if sample.elapsed > self.warmup_s and self.last < self.minimum:
            if self.below_since is None:
                self.below_since = sample.elapsed
        else:
            self.below_since = None
        self.below_for = 0.0 if self.below_since is None else sample.elapsed - self.below_since
        return self.below_for >= self.window_s

    def reason(self) -> str:
        """Why the scan was aborted, in one line."""
        return (
            f"hitrate {self.last:.2f}% stayed below --min-hitrate {self.minimum:g}% for "
            f"{self.below_for:.0f} s"
        )


@dataclass
class StatusReporter:
    """Prints the status line (unless quiet) and appends CSV rows (when given a file)."""

    probe_names: Sequence[str]
    quiet: bool = False
    csv_path: str | None = None
    stream: IO[str] = field(default_factory=lambda: sys.stderr)
    _last: StatusSample | None = None
    _first_rate: float | None = None
    _csv_file: IO[str] | None = None
    _csv: Any = None

    def __post_init__(self) -> None:
        if self.csv_path:
            try:
                self._csv_file = open(self.csv_path, "w", newline="")  # noqa: SIM115
            except OSError as exc:
                raise RunError(
                    f"-u/--status-updates-file: {self.csv_path}: cannot write: {exc.strerror}"
                ) from None
            self._csv = csv.writer(self._csv_file)
            self._csv.writerow(
                [
                    "real-time",
                    "time-elapsed",
                    "time-remaining",
                    "percent-complete",
                    "sent-total",
                    "sent-last-one-sec",
                    "sent-avg-per-sec",
                    "recv-success-total",
                    "recv-success-last-one-sec",
                    "recv-success-avg-per-sec",
                    "recv-total",
                    "drop-total",
                    "hitrate",
                    *[f"hitrate-{name}" for name in self.probe_names],
                    "sendto-fail-total",
                    "send-rate",
                ]
            )

    def report(self, sample: StatusSample) -> str:
        """Format, print and record one sample; returns the line."""
        last = self._last
        span = sample.elapsed - last.elapsed if last else sample.elapsed
        span = span if span > 0 else 1.0
        send_now = (sample.sent - (last.sent if last else 0)) / span
        recv_now = (sample.valid - (last.valid if last else 0)) / span
        drop_now = (sample.drops - (last.drops if last else 0)) / span
        elapsed = sample.elapsed if sample.elapsed > 0 else 1.0
        percent = (
            100.0 * sample.targets_done / sample.targets_total if sample.targets_total else 100.0
        )
        rate_targets = sample.targets_done / elapsed
        left = (sample.targets_total - sample.targets_done) / rate_targets if rate_targets else 0.0
        done = max(sample.targets_done, 1)
        hits = hitrate(sample)
        per_probe = [100.0 * hits / done for hits in sample.hits_per_probe]
        probes = " ".join(
            f"{name} {rate:.1f}%" for name, rate in zip(self.probe_names, per_probe, strict=True)
        )
        line = (
            f"{format_duration(sample.elapsed)} {percent:.0f}% ({format_duration(left)} left); "
            f"send: {sample.sent} {_si(send_now)}p/s ({_si(sample.sent / elapsed)}p/s avg); "
            f"recv: {sample.valid} {_si(recv_now)}p/s ({_si(sample.valid / elapsed)}p/s avg); "
            f"drops: {_si(drop_now)}p/s ({_si(sample.drops / elapsed)}p/s avg); "
            f"hitrate: {hits:.2f}% [{probes}]"
        )
        if self._first_rate is None:
            self._first_rate = sample.rate
        if sample.rate is not None and sample.rate != self._first_rate:
            line += f"; rate: {_si(sample.rate)}p/s (from {_si(self._first_rate or 0)}p/s)"
        if sample.sendto_failures:
            line += f"; sendto failures: {sample.sendto_failures} (retried)"
        if sample.phase != "send":
            line += f" ({sample.phase})"
        if not self.quiet:
            print(line, file=self.stream, flush=True)
        if self._csv is not None and self._csv_file is not None:
            self._csv.writerow(
                [
                    f"{time.time():.3f}",
                    f"{sample.elapsed:.3f}",
                    f"{left:.0f}",
                    f"{percent:.2f}",
                    sample.sent,
                    f"{send_now:.0f}",
                    f"{sample.sent / elapsed:.0f}",
                    sample.valid,
                    f"{recv_now:.0f}",
                    f"{sample.valid / elapsed:.0f}",
                    sample.received,
                    sample.drops,
                    f"{hits:.4f}",
                    *[f"{rate:.4f}" for rate in per_probe],
                    sample.sendto_failures,
                    "" if sample.rate is None else f"{sample.rate:.1f}",
                ]
            )
            self._csv_file.flush()
        self._last = sample
        return line

    def note(self, text: str) -> None:
        """Print one event line (a rate change) beside the status lines, unless quiet."""
        if not self.quiet:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        """Close the CSV file, if any."""
        if self._csv_file is not None:
            self._csv_file.close()
