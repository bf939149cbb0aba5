"""The plan: which address gets which behaviour and loss, the infrastructure addresses, the truth.

Everything here is pure computation over numpy arrays of addresses (uint32, host order), done
before a single namespace exists: ``up`` builds from the plan, ``truth`` reads it, and tests can
check it without root.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from liveness.errors import InputError
from liveness.testbed.behaviours import PROBES, answers
from liveness.testbed.spec import Selection, TestbedSpec
from liveness.testbed.truth_schema import SCHEDULE_SCHEMA, TRUTH_SCHEMA

__all__ = ["Plan", "make_plan"]

Addrs = NDArray[np.uint32]


@dataclass(frozen=True)
class Plan:
    """A spec resolved to addresses."""

    spec: TestbedSpec
    population: Addrs  # sorted target addresses (population minus infrastructure)
    assigned: dict[str, Addrs]  # behaviour name -> its sorted addresses (non-empty only)
    loss_masks: tuple[NDArray[np.bool_], ...]  # per loss entry, over ``population``
    router_ip: str
    inet_ip: str
    vp_ips: dict[str, str]
    targets: list[str]  # CIDRs covering ``population``

    def vp_loss(self, vp: str) -> NDArray[np.float64]:
        """The loss probability from ``vp`` to each population address (entries compound)."""
        delivered = np.ones(len(self.population), dtype=np.float64)
        for entry, mask in zip(self.spec.losses, self.loss_masks, strict=True):
            if vp in entry.vps:
                delivered[mask] *= 1.0 - entry.loss_rate
        return 1.0 - delivered

    def truth(self) -> pa.Table:
        """One row per (address, probe, VP) that gets a reply (``TRUTH_SCHEMA``)."""
        router = np.uint32(int(ipaddress.IPv4Address(self.router_ip)))
        cols: dict[str, list[NDArray[np.generic]]] = {
            k: [] for k in ("target", "probe", "reply", "responder", "code", "app")
        }
        for name, addrs in self.assigned.items():
            for probe, answer in answers(self.spec.behaviours[name]).items():
                if answer is None:
                    continue
                n = len(addrs)
                cols["target"].append(addrs)
                cols["probe"].append(np.full(n, PROBES.index(probe), dtype=np.int8))
                cols["reply"].append(np.full(n, answer.reply, dtype=object))
                cols["responder"].append(np.full(n, router) if answer.by_router else addrs)
                cols["code"].append(np.full(n, answer.icmp_code, dtype=np.int16))
                cols["app"].append(np.full(n, answer.app_valid, dtype=np.bool_))
        if not cols["target"]:
            return TRUTH_SCHEMA.empty_table()
        target = np.concatenate(cols["target"])
        probe_idx = np.concatenate(cols["probe"])
        order = np.lexsort((probe_idx, target))
        target, probe_idx = target[order], probe_idx[order]
        reply = np.concatenate(cols["reply"])[order]
        responder = np.concatenate(cols["responder"]).astype(np.uint32)[order]
        code = np.concatenate(cols["code"])[order]
        app = np.concatenate(cols["app"])[order]
        position = np.searchsorted(self.population, target)
        probe_names = np.array(PROBES, dtype=object)[probe_idx]
        tables = []
        for vp in self.vp_ips:
            tables.append(
                pa.table(
                    {
                        "target": pa.array(target, pa.uint32()),
                        "probe": pa.array(probe_names, pa.string()),
                        "vp": pa.array(np.full(len(target), vp, dtype=object), pa.string()),
                        "reply": pa.array(reply, pa.string()),
                        "responder": pa.array(responder, pa.uint32()),
                        "icmp_code": pa.array(code, pa.int16()),
                        "app_valid": pa.array(app, pa.bool_()),
                        "loss": pa.array(self.vp_loss(vp)[position], pa.float64()),
                    },
                    schema=TRUTH_SCHEMA,
                )
            )
        return pa.concat_tables(tables)

    def schedule(self) -> pa.Table:
        """One row per scheduled event (``SCHEDULE_SCHEMA``)."""
        rows: dict[str, list[object]] = {name: [] for name in SCHEDULE_SCHEMA.names}
        all_vps = list(self.vp_ips)
        for event in self.spec.events:
            if event.kind == "island":
                scope = event.vps[0]
                down = [vp for vp in all_vps if vp != scope]
            else:
                scope = ",".join(str(b) for b in event.blocks)
                down = list(event.vps)
            rows["kind"].append(event.kind)
            rows["scope"].append(scope)
            rows["vps_down"].append(",".join(down))
            rows["start"].append(event.start)
            rows["end"].append(event.end)
        return pa.table(rows, schema=SCHEDULE_SCHEMA)


def _net_range(net: ipaddress.IPv4Network) -> tuple[int, int]:
    return int(net.network_address), int(net.broadcast_address) + 1


def _positions(population: Addrs, nets: tuple[ipaddress.IPv4Network, ...]) -> NDArray[np.intp]:
    """Indices into ``population`` of the addresses inside ``nets``."""
    parts = []
    for net in nets:
        lo, hi = _net_range(net)
        parts.append(
            np.arange(
                np.searchsorted(population, lo), np.searchsorted(population, hi), dtype=np.intp
            )
        )
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.intp)


def _target_nets(spec: TestbedSpec) -> list[ipaddress.IPv4Network]:
    nets: list[ipaddress.IPv4Network] = []
    infra = spec.infrastructure
    for net in ipaddress.collapse_addresses(spec.population):
        if net.subnet_of(infra):
            continue
        if infra.subnet_of(net):
            nets.extend(net.address_exclude(infra))
        else:
            nets.append(net)
    return sorted(ipaddress.collapse_addresses(nets))


def make_plan(spec: TestbedSpec) -> Plan:
    """Resolve a spec to addresses; InputError when a selection cannot be satisfied."""
    nets = _target_nets(spec)
    if not nets:
        raise InputError(f"{spec.source}: population has no address outside the infrastructure")
    population = np.concatenate([np.arange(*_net_range(n), dtype=np.uint64) for n in nets]).astype(
        np.uint32
    )
    owner = np.full(len(population), -1, dtype=np.int32)
    names = [a.behaviour for a in spec.assigns]
    for i, assign in enumerate(spec.assigns):  # explicit blocks and addresses first
        if assign.selection.nets:
            pos = _positions(population, assign.selection.nets)
            where = f"{spec.source}: assign[{i}]"
            if len(pos) == 0:
                raise InputError(f"{where}: its blocks hold no population address")
            if (owner[pos] >= 0).any():
                raise InputError(f"{where}: overlaps an earlier assign")
            owner[pos] = i
    rng = np.random.default_rng(spec.seed)
    free = rng.permutation(np.flatnonzero(owner < 0))
    taken = 0
    for i, assign in enumerate(spec.assigns):
        if assign.selection.fraction:
            count = round(assign.selection.fraction * len(population))
            if taken + count > len(free):
                raise InputError(f"{spec.source}: assign[{i}]: not enough unassigned addresses")
            owner[free[taken : taken + count]] = i
            taken += count
    assigned: dict[str, list[Addrs]] = {}
    for i, name in enumerate(names):
        if spec.behaviours[name].silent:
            continue
        addrs = population[owner == i]
        if len(addrs):
            assigned.setdefault(name, []).append(addrs)
    loss_masks = tuple(
        _select(population, entry.selection, spec.seed + 1 + k)
        for k, entry in enumerate(spec.losses)
    )
    infra = spec.infrastructure
    base = int(infra.network_address)
    vp_ips = {vp.name: str(ipaddress.IPv4Address(base + 1 + k)) for k, vp in enumerate(spec.vps)}
    return Plan(
        spec=spec,
        population=population,
        assigned={k: np.sort(np.concatenate(v)) for k, v in assigned.items()},
        loss_masks=loss_masks,
        router_ip=str(infra.broadcast_address - 1),
        inet_ip=str(infra.broadcast_address - 2),
        vp_ips=vp_ips,
        targets=[str(n) for n in nets],
    )


def _select(population: Addrs, selection: Selection, seed: int) -> NDArray[np.bool_]:
    mask = np.zeros(len(population), dtype=np.bool_)
    if selection.everything:
        mask[:] = True
    elif selection.nets:
        mask[_positions(population, selection.nets)] = True
    else:
        count = round(selection.fraction * len(population))
        mask[np.random.default_rng(seed).choice(len(population), count, replace=False)] = True
    return mask
