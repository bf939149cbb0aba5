"""The two kinds of failure a command can report, and their exit statuses.

Every layer raises these instead of printing; the CLI turns them into one line on stderr
(``liveness: error: ...``) and exit status 2 (bad usage or input) or 1 (failure while running).
"""

from __future__ import annotations

__all__ = ["InputError", "LivenessError", "OutputClosed", "RunError"]


class LivenessError(Exception):
    """Base class: a failure with a message meant for the user."""

    exit_code = 1


class InputError(LivenessError):
    """Bad usage or bad input: a malformed file, a wrong CIDR, an unknown flag value.

    The message says what is wrong and where (file, line, flag).
    """

    exit_code = 2


class RunError(LivenessError):
    """A failure while running (no permission, an interface went away, a tool is missing)."""

    exit_code = 1


class OutputClosed(RunError):
    """The reader of the output went away (``liveness scan -o - | head``): stop, say how many
    replies it was given, and exit as a process killed by SIGPIPE would (141)."""

    exit_code = 141
