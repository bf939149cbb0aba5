"""``--app-layer`` refuses to start, saying why and how to allow it, when the RST guard cannot be
installed (no nft, or nft refuses: not root, no CAP_NET_ADMIN). No root needed: nft is faked."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from liveness.errors import RunError
from liveness.scan import rst_guard


def test_no_nft_means_no_app_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rst_guard.shutil, "which", lambda name: None)
    with pytest.raises(RunError, match=r"nft command is missing.*run the scan as root"):
        rst_guard.install_guard(40000, 100, None)


def test_a_refused_rule_is_reported_with_nfts_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "nft"
    fake.write_text(
        "#!/bin/sh\ncat >/dev/null\necho 'Error: Operation not permitted' >&2\nexit 1\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    record = tmp_path / "scan.checkpoint.guard.json"
    with pytest.raises(RunError) as caught:
        rst_guard.install_guard(40000, 100, record)
    message = str(caught.value)
    assert "does not reset the connections" in message
    assert "Operation not permitted" in message and "leave out --app-layer" in message
    assert not record.exists()  # nothing recorded for a guard that never was


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--app-profile", "80:http"], "--app-profile: only with --app-layer"),
        (["--banner-bytes", "64"], "--banner-bytes: only with --app-layer"),
        (["--app-layer", "--probes", "icmp_echo"], "no tcp_syn probe to follow up"),
        (["--app-layer", "--app-profile", "80:gopher"], "unknown profile 'gopher'"),
        (["--app-layer", "--app-timeout", "0"], "--app-timeout 0.0: must be above 0"),
        (["--app-layer", "--banner-bytes", "0"], "--banner-bytes 0: must be 1..1024"),
    ],
)
def test_bad_app_layer_flags_are_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from cli_runner import run_cli

    allow = tmp_path / "allow.txt"
    allow.write_text("198.18.0.0/15\n")
    code, _, err = run_cli(["scan", "198.18.0.0/30", "-w", str(allow), "-d", *argv], capsys)
    assert code == 2 and message in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
