"""Run a command as ``liveness testbed exec`` does: signals reach it, and its status is ours.

SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to this process are passed on to the child (a signal
the terminal sent to the whole foreground group already reached the child and is not sent
twice), and this process waits for the child instead of dying before it: no orphan is left in
the namespace. The status returned is the child's as a shell reports it: its exit code, 128+N
when signal N killed it, 127 when the program does not exist, 126 when it cannot be executed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from collections.abc import Iterable

from liveness.errors import LivenessError

__all__ = ["FORWARDED", "ExecError", "find_program", "run_forwarding"]

FORWARDED: tuple[signal.Signals, ...] = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
)
_SI_KERNEL = 0x80  # si_code of a signal the kernel sent (the terminal's ^C), not kill(2)
_POLL_S = 0.25


class ExecError(LivenessError):
    """The program to run cannot be started: exit 127 (not found) or 126 (not executable)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def find_program(program: str) -> str:
    """The path ``program`` runs as (looked up in PATH without a '/'), or ExecError."""
    if "/" not in program:
        found = shutil.which(program)
        if found is None:
            raise ExecError(f"{program}: command not found", 127)
        return found
    if not os.path.exists(program):
        raise ExecError(f"{program}: no such file", 127)
    if os.path.isdir(program) or not os.access(program, os.X_OK):
        raise ExecError(f"{program}: not an executable file", 126)
    return program


def run_forwarding(argv: list[str], child_mask: Iterable[int] | None = None) -> int:
    """Run ``argv`` (``argv[0]`` looked up in PATH), forwarding signals; its shell status.

    ``child_mask`` is the signal mask the child starts with (default: this thread's before the
    call). Block :data:`FORWARDED` and SIGCHLD before any other thread starts (numpy's and
    Arrow's start at import; threads inherit the mask) and pass the mask from before: each
    signal then reaches the wait here with its sender, and a terminal's ^C, which the child
    got too, is not sent twice. Otherwise a signal another thread takes is still forwarded.
    """
    watched = {*FORWARDED, signal.SIGCHLD}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    pid: int | None = None

    def forward(signum: int, frame: object = None) -> None:
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):  # exited: its status is pending
                os.kill(pid, signum)

    # A thread that does not block them may take these signals: then this handler (without
    # the sender) forwards them, and the poll below notices the child's exit.
    handlers = {number: signal.signal(number, forward) for number in FORWARDED}
    try:
        try:
            pid = os.posix_spawnp(
                argv[0],
                argv,
                os.environ,
                setsigmask=previous if child_mask is None else child_mask,
                setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),  # as subprocess restores them
            )
        except FileNotFoundError:
            raise ExecError(f"{argv[0]}: command not found", 127) from None
        except PermissionError:
            raise ExecError(f"{argv[0]}: not an executable file", 126) from None
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                code = os.waitstatus_to_exitcode(status)
                return 128 - code if code < 0 else code
            info = signal.sigtimedwait(watched, _POLL_S)
            if info is None or info.si_signo == signal.SIGCHLD:
                continue
            if info.si_code != _SI_KERNEL:  # a terminal's signal reached the child itself
                forward(info.si_signo)
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
