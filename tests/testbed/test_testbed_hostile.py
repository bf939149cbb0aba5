"""``liveness testbed`` against hostile inputs (issue 18): bad specs and outputs are one line and
exit 2 and build nothing; ``exec`` forwards signals and returns its child's status."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from liveness.testbed import Testbed, load_spec
from liveness.testbed.forward import ExecError, find_program
from liveness.testbed.state import existing_namespaces

LIVENESS = [sys.executable, "-m", "liveness.cli.main"]
IS_ROOT = os.geteuid() == 0


def _one_line(done: subprocess.CompletedProcess[str], *words: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("liveness: error: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (bytes(range(256)), ["not a TOML file", "UTF-8"]),  # was a UnicodeDecodeError
        (b"name = 'x'\nseed = nan\n[[vp]]\nname = 'a'\n", ["seed", "integer"]),
        (b"[[vp]]\nname = 'a'\n[[loss]]\nloss = nan\n", ["loss", "finite"]),
        (b"[[vp]]\nname = 'a'\n[[loss]]\ndelay_ms = inf\n", ["delay_ms", "finite"]),
        (b"[[vp]]\nname = '" + b"v" * 100_000 + b"'\n", ["vp[0].name", "characters"]),
    ],
)
def test_bad_spec_is_one_line_and_builds_nothing(
    tmp_path: Path, content: bytes, words: list[str]
) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_bytes(content)
    testbed_id = "hb" + secrets.token_hex(2)
    state = tmp_path / "state"
    done = subprocess.run(
        [*LIVENESS, "testbed", "up", str(spec), "--id", testbed_id],
        capture_output=True,
        text=True,
        env={**os.environ, "LIVENESS_TESTBED_STATE": str(state)},
        timeout=60,
    )
    assert done.returncode == 2 and len(done.stderr) < 1000
    _one_line(done, str(spec), *words)
    assert not state.exists() or not any(state.iterdir())
    assert not any(ns.startswith(f"lv{testbed_id}") for ns in existing_namespaces())


def test_device_spec_is_refused_not_read() -> None:
    done = subprocess.run(
        [*LIVENESS, "testbed", "up", "/dev/zero"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    _one_line(done, "/dev/zero", "is a device")


@pytest.mark.skipif(not IS_ROOT or shutil.which("unshare") is None, reason="needs a ro mount")
def test_truth_to_read_only_output_is_one_line(tmp_path: Path) -> None:
    """Checked before the testbed is even looked for, so no testbed is needed."""
    out = tmp_path / "ro"
    out.mkdir()
    (out / "truth.parquet").write_bytes(b"earlier\n")
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', str(out),
         *LIVENESS, "testbed", "truth", "--id", "nosuch1", "-o", str(out / "truth.parquet")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    _one_line(done, "-o", "truth.parquet", "read-only")
    assert (out / "truth.parquet").read_bytes() == b"earlier\n"


# -- exec: signals reach the child, its status is ours ----------------------------------------

FORWARDER = (
    "import sys\n"
    "from liveness.testbed.forward import run_forwarding\n"
    "sys.exit(run_forwarding(sys.argv[1:]))\n"
)


def _default_sigint() -> None:
    """A background job may have inherited SIGINT ignored: a user's foreground run has not."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def _start(tmp_path: Path, argv: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``argv`` under a forwarder; return (the forwarder, the child's pid)."""
    pid_file = tmp_path / "child.pid"
    script = f'echo $$ > {pid_file}; exec "$@"'
    forwarder = subprocess.Popen(
        [sys.executable, "-c", FORWARDER, "sh", "-c", script, "sh", *argv],
        start_new_session=True,  # no terminal signal of ours reaches it
        preexec_fn=_default_sigint,
    )
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.02)
    return forwarder, int(pid_file.read_text())


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize(("sent", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signals_are_forwarded_and_the_child_status_returned(
    tmp_path: Path, sent: signal.Signals, status: int
) -> None:
    forwarder, child = _start(tmp_path, ["sleep", "60"])
    try:
        forwarder.send_signal(sent)
        assert forwarder.wait(timeout=20) == status
        assert _gone(child), "the child was orphaned"
    finally:
        if not _gone(child):
            os.kill(child, signal.SIGKILL)


def test_a_child_that_traps_the_signal_decides_the_status(tmp_path: Path) -> None:
    forwarder, child = _start(tmp_path, ["sh", "-c", "trap 'exit 3' TERM; sleep 60 & wait; exit 9"])
    try:
        time.sleep(0.2)  # let the shell install its trap
        forwarder.send_signal(signal.SIGTERM)
        assert forwarder.wait(timeout=20) == 3
    finally:
        if not _gone(child):
            os.kill(child, signal.SIGKILL)


@pytest.mark.parametrize(
    ("script", "status"), [("exit 7", 7), ("kill -KILL $$", 137), ("kill -TERM $$", 143)]
)
def test_exit_status_as_a_shell_reports_it(script: str, status: int) -> None:
    done = subprocess.run(
        [sys.executable, "-c", FORWARDER, "sh", "-c", script], timeout=60, capture_output=True
    )
    assert done.returncode == status


def test_missing_or_unexecutable_program(tmp_path: Path) -> None:
    with pytest.raises(ExecError) as missing:
        find_program("no-such-program-" + secrets.token_hex(3))
    assert missing.value.exit_code == 127 and "command not found" in str(missing.value)
    text = tmp_path / "plain.txt"
    text.write_text("not a program\n")
    with pytest.raises(ExecError) as plain:
        find_program(str(text))
    assert plain.value.exit_code == 126
    assert find_program("sh").endswith("/sh")


@pytest.mark.root
def test_cli_exec_forwards_sigterm_and_reports_127(tmp_path: Path) -> None:
    """Through a real testbed: ``liveness testbed exec`` as a user runs it."""
    pid_file = tmp_path / "child.pid"
    with Testbed(load_spec("small"), "hx" + secrets.token_hex(2)) as testbed:
        base = [*LIVENESS, "testbed", "exec", "--id", testbed.id, "vp1", "--"]
        missing = subprocess.run([*base, "no-such-program"], capture_output=True, text=True)
        assert missing.returncode == 127 and "command not found" in missing.stderr
        process = subprocess.Popen(
            [*base, "sh", "-c", f"echo $$ > {pid_file}; exec sleep 60"], start_new_session=True
        )
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text().strip():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        child = int(pid_file.read_text())
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 143
        assert _gone(child)
