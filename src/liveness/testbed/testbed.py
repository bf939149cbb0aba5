"""The testbed object: bring a spec up, run things inside its VPs, read the truth, tear it down.

``with Testbed(spec) as tb:`` brings it up and always tears it down (also on exceptions);
``Testbed.up(spec)`` and ``tb.down()`` do the same without a context manager, and
``Testbed.attach(id)`` finds a running testbed from its record (what the CLI does).
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa

from liveness.errors import InputError, LivenessError, RunError
from liveness.targets.inputs import excerpt
from liveness.testbed.build import bring_up
from liveness.testbed.forward import find_program, run_forwarding
from liveness.testbed.layout import Layout, layout_for
from liveness.testbed.plan import Plan, make_plan
from liveness.testbed.spec import TestbedSpec, load_spec
from liveness.testbed.state import (
    list_ids,
    process_start,
    read_state,
    remove_testbed,
    state_dir,
    write_state,
)

__all__ = ["LIVENESS_CLI", "Testbed", "VantagePoint", "down_all"]

LIVENESS_CLI: tuple[str, ...] = (sys.executable, "-m", "liveness.cli.main")
"""How to run the ``liveness`` CLI of this interpreter inside a VP (``ip netns exec``)."""


@dataclass(frozen=True)
class VantagePoint:
    """What a scanner needs to send from a VP: namespace, interface, /32 source, gateway, and
    on an IPv6 testbed its /128 source and IPv6 gateway (the same router interface, so the
    same ``gateway_mac``; a permanent entry of the VP's ``ip -6 neigh``)."""

    name: str
    netns: str
    ifname: str
    src_ip: str
    gateway_mac: str
    gateway_ip: str
    src_ip6: str | None = None
    gateway_ip6: str | None = None

    def sender_options(self) -> list[str]:
        """``-i/-S/-G`` (and ``--vp``) of ``liveness scan`` and ``liveness monitor`` for
        sending from this VP."""
        return ["-i", self.ifname, "-S", self.src_ip, "-G", self.gateway_mac, "--vp", self.name]

    def sender_options6(self) -> list[str]:
        """The extra flags for sending IPv6 from this VP: ``--source-ip6 ADDR`` (none on an
        IPv4-only testbed)."""
        return [] if self.src_ip6 is None else ["--source-ip6", self.src_ip6]

    def sender_options_dual(self) -> list[str]:
        """:meth:`sender_options` and :meth:`sender_options6`: sending both families."""
        return [*self.sender_options(), *self.sender_options6()]

    def scan_argv(self, targets: Sequence[str], allowlist: Path, *options: str) -> list[str]:
        """The ``liveness scan`` command line for scanning ``targets`` from this VP (run it
        with :meth:`Testbed.run`), with ``allowlist`` (``-w``) and further ``options``."""
        scan = [*LIVENESS_CLI, "scan", *targets, "-w", str(allowlist)]
        return [*scan, *self.sender_options(), *options]


class Testbed:
    """An emulated Internet in network namespaces, built from a spec."""

    __test__ = False  # not a pytest test class despite its name

    def __init__(self, spec: TestbedSpec, testbed_id: str | None = None) -> None:
        self.spec = spec
        self.id = testbed_id or secrets.token_hex(3)
        if not self.id.isalnum() or len(self.id) > 8:
            raise InputError(f"--id {excerpt(self.id)}: use at most 8 letters and digits")
        self.plan: Plan = make_plan(spec)
        self.layout: Layout = layout_for(self.plan, self.id)
        self.vps: dict[str, VantagePoint] = {
            vp.name: VantagePoint(
                vp.name,
                vp.netns,
                vp.ifname,
                vp.ip,
                vp.router_mac,
                self.plan.router_ip,
                vp.ip6,
                self.plan.router_ip6,
            )
            for vp in self.layout.vps
        }
        self.targets: list[str] = list(self.plan.targets)
        self.targets6: list[str] = list(self.plan.targets6)  # hosts at ::1 of each /64
        self.started_at: float = 0.0
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._record: dict[str, Any] = {}
        self._is_up = False

    # -- lifecycle -------------------------------------------------------------------------
    @classmethod
    def up(cls, spec: TestbedSpec, testbed_id: str | None = None) -> Testbed:
        """Build a testbed and return it running."""
        testbed = cls(spec, testbed_id)
        testbed._bring_up()
        return testbed

    def _bring_up(self) -> None:
        if self._is_up:
            return
        if (state_dir() / f"{self.id}.json").exists():
            raise InputError(f"--id {self.id}: a testbed with this id already exists")
        work = state_dir() / self.id
        work.mkdir(parents=True, exist_ok=True)
        (work / "spec.toml").write_text(_spec_text(self.spec))
        self._record = {
            "id": self.id,
            "spec": self.spec.name,
            "source": self.spec.source,
            "created": time.time(),
            "started_at": None,
            "namespaces": [],
            "processes": [],
            "vps": {name: vars(vp) for name, vp in self.vps.items()},
            "targets": self.targets,
            "targets6": self.targets6,
        }
        write_state(self._record)
        self._is_up = True
        try:
            self.started_at = bring_up(
                self.plan, self.layout, work, self._remember, self._mark_namespaces
            )
        except BaseException as exc:
            self.down()
            if isinstance(exc, LivenessError | KeyboardInterrupt):
                raise
            raise RunError(f"testbed: bringing up failed: {exc}") from exc
        self._record["started_at"] = self.started_at
        write_state(self._record)

    def _mark_namespaces(self) -> None:
        self._record["namespaces"] = self.layout.namespaces
        write_state(self._record)

    def _remember(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        self._procs[proc.pid] = proc
        start = process_start(proc.pid)
        self._record["processes"].append({"name": name, "pid": proc.pid, "start": start})
        write_state(self._record)

    def down(self) -> list[str]:
        """Remove every namespace, process and file of this testbed; what was removed."""
        if not self._is_up:
            return []
        done = remove_testbed(self._record or read_state(self.id))
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        self._procs.clear()
        self._is_up = False
        return done

    def __enter__(self) -> Testbed:
        self._bring_up()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    @classmethod
    def attach(cls, testbed_id: str | None = None) -> Testbed:
        """The running testbed with this id (or the only one) from its record."""
        testbed_id = only_id(testbed_id)
        record = read_state(testbed_id)
        spec = load_spec(state_dir() / testbed_id / "spec.toml")
        testbed = cls(spec, testbed_id)
        testbed._record = record
        testbed.started_at = float(record.get("started_at") or 0.0)
        testbed._is_up = True
        return testbed

    # -- use -------------------------------------------------------------------------------
    def _netns(self, vp: str | VantagePoint) -> str:
        name = vp.name if isinstance(vp, VantagePoint) else vp
        if name not in self.vps:
            raise InputError(f"VP {excerpt(name)}: no such vantage point ({', '.join(self.vps)})")
        return self.vps[name].netns

    def run(
        self, vp: str | VantagePoint, argv: list[str], **kw: Any
    ) -> subprocess.CompletedProcess[Any]:
        """Run a command inside a VP's namespace (``subprocess.run`` keywords pass through)."""
        return subprocess.run(["ip", "netns", "exec", self._netns(vp), *argv], **kw)

    def exec_forwarding(
        self, vp: str | VantagePoint, argv: list[str], child_mask: Iterable[int] | None = None
    ) -> int:
        """Run a command inside a VP's namespace in the foreground, as a shell would: signals
        to this process reach it, and its status (128+N for signal N, 127 for no such program)
        is returned (:func:`liveness.testbed.forward.run_forwarding`, ``child_mask`` too)."""
        netns = self._netns(vp)
        find_program(argv[0])
        return run_forwarding(["ip", "netns", "exec", netns, *argv], child_mask)

    def popen(self, vp: str | VantagePoint, argv: list[str], **kw: Any) -> subprocess.Popen[Any]:
        """Start a command inside a VP's namespace (``subprocess.Popen`` keywords pass through)."""
        return subprocess.Popen(["ip", "netns", "exec", self._netns(vp), *argv], **kw)

    def truth(self) -> tuple[pa.Table, pa.Table]:
        """(TRUTH_SCHEMA table, SCHEDULE_SCHEMA table): what every address answers (IPv4 and
        IPv6 rows, told apart by ``af``), and when connectivity events happen (seconds from
        ``started_at``, kept in the metadata)."""
        meta = {b"liveness.testbed.started_at": repr(self.started_at).encode()}
        return (
            self.plan.truth().replace_schema_metadata(meta),
            self.plan.schedule().replace_schema_metadata(meta),
        )

    def status(self) -> dict[str, Any]:
        """A summary for ``liveness testbed status``."""
        return {
            "id": self.id,
            "spec": self.spec.name,
            "started_at": self.started_at,
            "uptime_s": round(time.time() - self.started_at, 3) if self.started_at else None,
            "vps": {name: vars(vp) for name, vp in self.vps.items()},
            "targets": self.targets,
            "targets6": self.targets6,
            "behaviours": {name: len(a) for name, a in self.plan.assigned.items()},
            "behaviours6": {name: len(a) for name, a in self.plan.assigned6.items()},
        }


def _spec_text(spec: TestbedSpec) -> str:
    """The spec's TOML text, kept beside the record so ``attach`` rebuilds the same plan."""
    if not spec.text:
        raise InputError(f"{spec.source}: a testbed needs a spec read by load_spec")
    return spec.text


def only_id(testbed_id: str | None) -> str:
    """The given id, or the only running testbed's; InputError when that is ambiguous."""
    if testbed_id is not None:
        return testbed_id
    ids = list_ids()
    if not ids:
        raise InputError("no testbed is running (liveness testbed up SPEC)")
    if len(ids) > 1:
        raise InputError(f"several testbeds are running ({', '.join(ids)}): give --id")
    return ids[0]


def down_all(testbed_id: str | None = None) -> list[str]:
    """Remove the testbed with this id, or every recorded testbed; what was removed."""
    ids = [testbed_id] if testbed_id is not None else list_ids()
    done = []
    for one in ids:
        done.extend(remove_testbed(read_state(one)))
    return done
