"""``liveness testbed`` end to end: up, status, exec, truth, down; bad specs build nothing."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from liveness.testbed import down_all
from liveness.testbed.state import existing_namespaces, list_ids
from liveness.testbed.truth_schema import SCHEDULE_SCHEMA, TRUTH_SCHEMA

pytestmark = pytest.mark.root

STATE_ENV = "LIVENESS_TESTBED_STATE"
LIVENESS = str(Path(__file__).parents[2] / ".venv" / "bin" / "liveness")


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LIVENESS, "testbed", *args], capture_output=True, text=True, env=env)


@pytest.mark.parametrize(
    "text",
    [
        'population = ["198.18.0.0/22", "192.0.2.0/24"]\n[[vp]]\nname = "a"\n',
        '[[vp]]\nname = "a"\n[[assign]]\nbehaviour = "nope"\nfraction = 0.1\n',
        '[[vp]\nname = "a"\n',
    ],
)
def test_bad_spec_exits_2_and_builds_nothing(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    testbed_id = "bad" + secrets.token_hex(2)
    state = tmp_path / "state"
    done = _cli("up", str(path), "--id", testbed_id, env={**os.environ, STATE_ENV: str(state)})
    assert done.returncode == 2
    assert done.stderr.startswith("liveness: error: ") and str(path) in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not any(ns.startswith(f"lv{testbed_id}") for ns in existing_namespaces())
    assert not state.exists() or not any(state.iterdir())


@pytest.mark.slow
def test_cli_lifecycle(tmp_path: Path) -> None:
    testbed_id = secrets.token_hex(3)
    try:
        up = _cli("up", "small", "--id", testbed_id, "--json")
        assert up.returncode == 0, up.stderr
        info = json.loads(up.stdout)
        assert info["id"] == testbed_id and set(info["vps"]) == {"vp1", "vp2"}
        assert info["vps"]["vp1"]["gateway_mac"].count(":") == 5

        status = json.loads(_cli("status", "--json").stdout)
        mine = next(t for t in status["testbeds"] if t["id"] == testbed_id)
        assert all(mine["namespaces"].values()) and all(mine["processes"].values())

        ping = _cli("exec", "--id", testbed_id, "vp1", "--", "ip", "-o", "addr", "show", "eth0")
        assert ping.returncode == 0 and info["vps"]["vp1"]["src_ip"] in ping.stdout

        out = tmp_path / "truth.parquet"
        truth = _cli("truth", "--id", testbed_id, "-o", str(out), "--json")
        assert truth.returncode == 0, truth.stderr
        result = json.loads(truth.stdout)
        table = pq.read_table(out)
        assert table.schema.remove_metadata().equals(TRUTH_SCHEMA)
        assert table.num_rows == result["rows"] > 0
        events = pq.read_table(result["schedule"])
        assert events.schema.remove_metadata().equals(SCHEDULE_SCHEMA)
    finally:
        down = _cli("down", "--id", testbed_id, "--json")
    assert down.returncode == 0, down.stderr
    removed = json.loads(down.stdout)["removed"]
    assert any("deleted netns" in line for line in removed)
    assert not any(ns.startswith(f"lv{testbed_id}") for ns in existing_namespaces())
    assert testbed_id not in list_ids()


def test_down_after_a_crash_finds_everything(tmp_path: Path) -> None:
    """A process that brings a testbed up and dies without ``down``: the record suffices."""
    testbed_id = secrets.token_hex(3)
    script = (
        "import os\nfrom liveness.testbed import Testbed, load_spec\n"
        f"Testbed.up(load_spec('small'), {testbed_id!r})\nos._exit(1)\n"
    )
    crashed = subprocess.run([str(Path(LIVENESS).with_name("python")), "-c", script])
    assert crashed.returncode == 1
    assert any(ns.startswith(f"lv{testbed_id}") for ns in existing_namespaces())
    removed = down_all(testbed_id)
    assert any("killed listener" in line for line in removed)
    assert not any(ns.startswith(f"lv{testbed_id}") for ns in existing_namespaces())
