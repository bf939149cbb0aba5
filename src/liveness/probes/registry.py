"""Probe types by name, and the parser of a probe list (``--probes``, ``-p``).

Probe types are found by name from the classes themselves: every module of this package is
imported once, and each :class:`~liveness.probes.base.Probe` subclass with a ``kind`` registers
itself (:data:`~liveness.probes.base.PROBE_CLASSES`), so a new probe type is one new file.
``KIND[:ARGS]`` is handed to the class's ``from_spec``.

Grammar: a comma-separated list of ``icmp_echo``, ``tcp_syn:PORT`` (or ``tcp_syn:LO-HI``),
bare ``tcp_syn`` (the ``-p`` ports), ``tcp_syn:random``, ``udp_dns[:TYPE[:NAME]]``,
``udp_ntp``, ``udp:PORT[:PAYLOAD]`` (see :mod:`liveness.probes.udp`) and any other registered
kind. When ports are given (``-p``), they replace every
fixed ``tcp_syn`` port of the list (at the place of the first one, or at the end), so ``-p 80``
with the default set probes ICMP, TCP 80, the random port, DNS and NTP.
"""

from __future__ import annotations

import importlib
import pkgutil

from liveness.errors import InputError
from liveness.probes.base import PROBE_CLASSES, Probe

__all__ = ["DEFAULT_PROBES", "PROBE_TYPES", "parse_ports", "parse_probes", "probe_classes"]

DEFAULT_PROBES = (
    "icmp_echo,tcp_syn:22,tcp_syn:23,tcp_syn:80,tcp_syn:443,tcp_syn:7547,"
    "tcp_syn:random,udp_dns,udp_ntp"
)
FIXED_PORT_KIND = "tcp_syn"  # the kind whose fixed ports -p replaces


def probe_classes() -> dict[str, type[Probe]]:
    """Every probe type by kind (importing this package's modules registers them)."""
    import liveness.probes as package

    for module in pkgutil.iter_modules(package.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{module.name}")
    return dict(sorted(PROBE_CLASSES.items()))


PROBE_TYPES: tuple[str, ...] = tuple(probe_classes())


def parse_ports(text: str, where: str = "-p/--target-ports") -> list[int]:
    """``"22,80-82"`` -> ``[22, 80, 81, 82]`` (order kept, duplicates dropped)."""
    ports: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise InputError(f"{where}: empty port in {text!r}")
        lo_text, _, hi_text = part.partition("-")
        try:
            lo = int(lo_text)
            hi = int(hi_text) if hi_text else lo
        except ValueError:
            raise InputError(f"{where}: {part!r} is not a port or a LO-HI range") from None
        if not 1 <= lo <= hi <= 65535:
            raise InputError(f"{where}: {part!r} must be ports within 1..65535, LO <= HI")
        ports.extend(range(lo, hi + 1))
    return list(dict.fromkeys(ports))


def parse_probes(spec: str, ports: str | None = None) -> list[Probe]:
    """Probes from a list such as :data:`DEFAULT_PROBES`; InputError on anything unknown or bad."""
    items = [item.strip() for item in spec.split(",")]
    if not spec.strip() or any(not item for item in items):
        raise InputError(f"--probes: empty entry in {spec!r}")
    classes = probe_classes()
    port_list = parse_ports(ports) if ports is not None else None

    # Fixed TCP ports gather in one slot (where the first stands), so -p can replace them.
    ordered: list[tuple[str, str]] = []
    fixed: list[int] | None = None
    for item in items:
        kind, _, args = item.partition(":")
        if kind not in classes:
            known = ", ".join(classes)
            raise InputError(f"--probes: unknown probe {kind!r} in {item!r} (known: {known})")
        if kind == FIXED_PORT_KIND and args != "random":
            if fixed is None:
                fixed = []
                ordered.append((kind, ""))
            if args:
                fixed.extend(parse_ports(args, where=f"--probes: {item}"))
            elif port_list is None:
                raise InputError("--probes: bare tcp_syn needs ports (-p/--target-ports)")
        else:
            ordered.append((kind, args))
    if port_list is not None:
        if fixed is None:
            ordered.append((FIXED_PORT_KIND, ""))
        fixed = port_list
    fixed_ports = list(dict.fromkeys(fixed or []))
    context = {"ports": fixed_ports}

    probes: list[Probe] = []
    for kind, args in ordered:
        if kind == FIXED_PORT_KIND and args == "":
            if fixed_ports:
                probes.extend(classes[kind].from_spec(",".join(map(str, fixed_ports)), context))
            continue
        probes.extend(classes[kind].from_spec(args, context))
    if not probes:
        raise InputError("--probes: no probes to send")
    _check_unique(probes)
    return probes


def _check_unique(probes: list[Probe]) -> None:
    """Names, probe ids (part of the validation token) and fixed ports (which find a reply's
    probe: ``udp:53`` and ``udp_dns`` would both claim port 53) must not repeat."""
    names: set[str] = set()
    ids: dict[int, str] = {}
    ports: dict[tuple[int, int], str] = {}
    for probe in probes:
        if probe.target_port is not None:
            where = (probe.protocol, probe.target_port)
            if where in ports:
                raise InputError(
                    f"--probes: {probe.name} and {ports[where]} both probe port {where[1]}"
                )
            ports[where] = probe.name
        if probe.name in names:
            raise InputError(f"--probes: {probe.name} listed twice")
        if probe.probe_id in ids:
            raise InputError(
                f"--probes: {probe.name} and {ids[probe.probe_id]} share probe id {probe.probe_id}"
            )
        names.add(probe.name)
        ids[probe.probe_id] = probe.name
