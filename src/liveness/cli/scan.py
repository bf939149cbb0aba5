"""``liveness scan``: probe targets with several probe types at once (ZMap-style flags).

This module parses and checks the flags into a :class:`ScanOptions`. The dry run
(``-d/--dryrun``) builds every frame without a network or privileges and writes them to
``--pcap-out`` or prints one line per frame (to ``-o`` or stdout), then reports counts. The live
scan hands the options to :func:`liveness.scan.loop.run_scan` (AF_PACKET rings, pacing,
retransmission, a receiver process, crash-safe output).
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, TextIO

import click
import numpy as np

from liveness.cli._common import emit_json, json_option, log
from liveness.errors import InputError, RunError
from liveness.net.pcap import PcapWriter
from liveness.net.route import parse_mac
from liveness.probes import DEFAULT_PROBES, Probe, parse_probes
from liveness.probes.context import ScanContext
from liveness.scan.dryrun import dry_run

__all__ = [
    "RunOptions",
    "ScanOptions",
    "app_layer_settings",
    "command",
    "parse_max_targets",
    "parse_options",
]

DRY_RUN_SOURCE = "192.0.2.1"  # TEST-NET-1: a placeholder source for frames never sent
DRY_RUN_SOURCE6 = "2001:db8::1"  # the IPv6 documentation prefix, likewise
DEFAULT_SOURCE_MAC = "02:00:00:00:00:01"
DEFAULT_GATEWAY_MAC = "02:00:00:00:00:02"
DEFAULT_BATCH = 65536
DEFAULT_RATE = 10_000.0  # ZMap's default: higher rates must be asked for with -r or -B


@dataclass
class ScanOptions:
    """The scan's flags, checked: target space, probes, context and run parameters."""

    space: Any  # liveness.targets.TargetSpace
    probes: list[Probe]
    context: ScanContext
    seed: int
    shards: int
    shard: int
    max_targets: int | None
    retransmit_delay: float
    batch_size: int
    retransmissions: int = 1
    interface: str | None = None

    @property
    def attempts(self) -> list[int]:
        """0, then 1.. for each retransmission when retransmission is on."""
        return list(range(1 + self.retransmissions)) if self.retransmit_delay > 0 else [0]

    def target_batches(self) -> Iterator[tuple[int, Any]]:
        """The shard's targets in permuted order, ``batch_size`` at a time: uint32 arrays, or
        :class:`~liveness.targets.TargetBatch` es when the space holds IPv6."""
        from liveness.targets import Permutation, Shard, iter_target_batches, iter_target_lookups

        perm = Permutation(self.space.size, self.seed)
        shard = Shard(self.space.size, self.shards, self.shard)
        if not self.space.has_ipv6:
            return iter_target_batches(self.space, perm, shard, self.batch_size)
        return iter_target_lookups(self.space, perm, shard, self.batch_size)


@dataclass
class RunOptions:
    """The flags that shape a run rather than its frames: rate, outputs, timing, status.

    Checked by :func:`check_live_options` (the dry run checks them too) and turned, with the
    :class:`ScanOptions`, into the scan loop's :class:`~liveness.scan.loop.ScanSettings`.
    """

    output: str
    rate_text: str | None
    bandwidth_text: str | None
    max_runtime: float | None
    cooldown: float
    fields: list[str] | None
    output_filter: str | None
    resume: bool
    quiet: bool
    status_csv: str | None
    metadata: str | None
    copies: int
    max_sendto_failures: int | None
    rate: float | None = None  # packets/s from -r or -B (None: unlimited), set by the check
    describe: dict[str, Any] | None = None  # --notes, --user-metadata: added to the metadata
    output_module: str | None = None  # -O: csv, json, parquet (None: by -o's extension)
    header: bool = True  # False: --no-header-row
    max_results: int | None = None  # -N (0 or None: no cap, as ZMap)
    min_hitrate: float | None = None  # --min-hitrate, percent (0 or None: never abort)


def parse_max_targets(text: str | None, space_size: int) -> int | None:
    """``-n``: a count or a percentage of the target space (``"10%"``)."""
    if text is None:
        return None
    try:
        if text.endswith("%"):
            share = float(text[:-1])
            if not 0 <= share <= 100:
                raise ValueError
            return int(space_size * share / 100)
        count = int(text)
        if count < 0:
            raise ValueError
        return count
    except ValueError:
        raise InputError(
            f"-n/--max-targets: {text!r} is not a count >= 0 or a percentage 0-100%"
        ) from None


def _ipv4(text: str, flag: str) -> int:
    try:
        return int(ipaddress.IPv4Address(text))
    except ValueError:
        raise InputError(f"{flag}: {text!r} is not an IPv4 address") from None


def _ipv6(text: str, flag: str) -> bytes:
    try:
        return ipaddress.IPv6Address(text).packed
    except ValueError:
        raise InputError(f"{flag}: {text!r} is not an IPv6 address") from None


def _sources(source_ip: str | None, source_ip6: str | None) -> tuple[str | None, str | None]:
    """``-S`` may name the source of either family; ``--source-ip6`` names the IPv6 one."""
    if source_ip is not None and ":" in source_ip:
        if source_ip6 is not None:
            raise InputError("-S/--source-ip and --source-ip6 both name an IPv6 source")
        return None, source_ip
    return source_ip, source_ip6


def parse_options(
    targets: tuple[str, ...],
    *,
    target_ports: str | None,
    probes: str,
    allowlist_file: str | None,
    blocklist_file: str | None,
    list_of_ips_file: str | None,
    seed: int | None,
    shards: int,
    shard: int,
    max_targets: str | None,
    source_ip: str | None,
    source_mac: str | None,
    gateway_mac: str | None,
    retransmit_delay: float,
    vp: str,
    batch_size: int,
    dryrun: bool,
    retransmissions: int = 1,
    interface: str | None = None,
    source_ip6: str | None = None,
    iid: str = "low",
    ttl: int = 64,
    source_port: str | None = None,
    app_layer: Any = None,
) -> ScanOptions:
    """Check every flag and build the scan's options (InputError names the flag).

    For a live scan, whatever of ``-i``, ``-S`` and ``-G`` is missing is taken from the kernel's
    route to the first target of each family and its neighbour (ARP or NDP) table.
    """
    from liveness.targets import Shard, TargetSpace, parse_iid

    if not math.isfinite(retransmit_delay) or retransmit_delay < 0:
        raise InputError(f"--retransmit-delay: {retransmit_delay} must be a number >= 0 (0 = off)")
    if not 0 <= retransmissions <= 15:
        raise InputError(f"--retransmissions: {retransmissions} must be within 0..15")
    if batch_size < 1:
        raise InputError(f"--batch-size: {batch_size} must be at least 1")
    if not 1 <= ttl <= 255:
        raise InputError(f"--probe-ttl: {ttl} must be within 1..255")
    transmissions = 1 + retransmissions if retransmit_delay > 0 else 1
    ports: dict[str, int] = {}
    if source_port is not None:
        base, count = parse_source_ports(source_port)
        if count < transmissions:
            raise InputError(
                f"-s/--source-port: {count} port(s) cannot tell {transmissions} transmissions "
                "apart (the attempt is in the source port); give a wider range or "
                "--retransmit-delay 0"
            )
        ports = {"sport_base": base, "sport_count": count}
    probe_list = parse_probes(probes, target_ports)
    source_ip, source_ip6 = _sources(source_ip, source_ip6)
    if seed is None:
        import secrets

        seed = secrets.randbits(63)
    space = TargetSpace.from_files(
        targets,
        allowlist_file,
        blocklist_file,
        list_of_ips_file,
        iid=parse_iid(iid),
        seed=seed,
    )
    Shard(space.size, shards, shard)  # checks --shards/--shard
    if space.has_ipv6:
        no_ipv6 = [p.name for p in probe_list if not p.ipv6]
        if no_ipv6:
            raise InputError(
                f"--probes: {', '.join(no_ipv6)} has no IPv6 form, and the targets include "
                "IPv6 addresses; scan those without it"
            )
    has_ipv4 = space.size4 > 0
    gateway_mac6: str | None = None
    named_gateway = gateway_mac  # -G names the next hop of both families
    if not dryrun and has_ipv4 and (source_ip is None or gateway_mac is None or interface is None):
        interface, source_ip, gateway_mac = _route_defaults(
            space, interface, source_ip, gateway_mac
        )
    if (
        not dryrun
        and space.has_ipv6
        and (source_ip6 is None or interface is None or named_gateway is None)
    ):
        # The IPv6 next hop may be another router than the IPv4 one: its MAC comes from the
        # NDP table unless -G named it.
        interface, source_ip6, gateway_mac6 = _route_defaults6(
            space, interface, source_ip6, named_gateway
        )
    if not dryrun and source_mac is None:
        from liveness.net.afpacket import interface_mac

        assert interface is not None
        source_mac = interface_mac(interface).hex(":")
    if source_ip is None:
        source_ip = DRY_RUN_SOURCE if dryrun or has_ipv4 else "0.0.0.0"
    if source_ip6 is None and space.has_ipv6:
        source_ip6 = DRY_RUN_SOURCE6
    gw_text = gateway_mac or gateway_mac6 or DEFAULT_GATEWAY_MAC
    ctx_fields: dict[str, Any] = {
        "src_ip": _ipv4(source_ip, "-S/--source-ip"),
        "src_mac": parse_mac(source_mac or DEFAULT_SOURCE_MAC, "--source-mac"),
        "gw_mac": parse_mac(gw_text, "-G/--gateway-mac"),
        "vp": vp,
        "ttl": ttl,
        "max_attempts": transmissions,
        **ports,
        "src_ip6": _ipv6(source_ip6, "--source-ip6") if source_ip6 is not None else None,
        "gw_mac6": parse_mac(gateway_mac6, "-G/--gateway-mac") if gateway_mac6 else None,
        "app_layer": app_layer,
    }
    if app_layer is not None and not any(p.name.startswith("tcp_syn") for p in probe_list):
        raise InputError("--app-layer: the scan has no tcp_syn probe to follow up")
    context = ScanContext.from_seed(seed, **ctx_fields)
    assert context.seed is not None
    options = ScanOptions(
        space=space,
        probes=probe_list,
        context=context,
        seed=context.seed,
        shards=shards,
        shard=shard,
        max_targets=parse_max_targets(max_targets, space.size),
        retransmit_delay=retransmit_delay,
        batch_size=batch_size,
        retransmissions=retransmissions if retransmit_delay > 0 else 0,
        interface=interface,
    )
    return options


def parse_source_ports(text: str, flag: str = "-s/--source-port") -> tuple[int, int]:
    """``-s``: one port or a range ``A-B`` (ZMap's spelling) -> (first port, count)."""
    first, dash, last = text.strip().partition("-")
    try:
        low = int(first)
        high = int(last) if dash else low
    except ValueError:
        raise InputError(f"{flag}: {text!r} is not a port or a range A-B") from None
    if not 1 <= low <= high <= 65535:
        raise InputError(f"{flag}: {text!r} must lie within 1-65535, low end first")
    return low, high - low + 1


def _describe(notes: str | None, user_metadata: str | None) -> dict[str, Any]:
    """``--notes`` and ``--user-metadata`` (a JSON value) as metadata entries, as ZMap's."""
    out: dict[str, Any] = {}
    if notes is not None:
        out["notes"] = notes
    if user_metadata is not None:
        try:
            out["user_metadata"] = json.loads(user_metadata)
        except ValueError as exc:
            raise InputError(f"--user-metadata: not JSON ({exc})") from None
    return out


def _print_lists(modules: bool, fields: bool, as_json: bool) -> None:
    """``--list-probe-modules`` and ``--list-output-fields`` on stdout."""
    from liveness.cli.zmap_names import PROBE_MODULES
    from liveness.output.fields import ALL_FIELDS, FIELD_KINDS
    from liveness.probes.registry import probe_classes

    listing: dict[str, Any] = {}
    if modules:
        listing["probes"] = sorted(probe_classes())
        listing["zmap_modules"] = PROBE_MODULES
    if fields:
        listing["fields"] = {name: FIELD_KINDS[name] for name in ALL_FIELDS}
    if as_json:
        emit_json(listing)
        return
    lines: list[str] = []
    if modules:
        lines += [f"{name}" for name in listing["probes"]]
        lines += [f"-M {name}: {text}" for name, text in PROBE_MODULES.items()]
    if fields:
        lines += [f"{name} ({kind})" for name, kind in listing["fields"].items()]
    click.echo("\n".join(lines))


def _route_defaults(
    space: Any, interface: str | None, source_ip: str | None, gateway_mac: str | None
) -> tuple[str, str, str]:
    """Fill in -i, -S and -G from the route to the first target (ZMap does the same)."""
    from liveness.net.route import sending_defaults

    first = str(ipaddress.IPv4Address(int(space.addresses(np.zeros(1, np.uint64))[0])))
    return sending_defaults(first, interface, source_ip, gateway_mac)


def _route_defaults6(
    space: Any, interface: str | None, source_ip6: str | None, gateway_mac: str | None
) -> tuple[str, str, str | None]:
    """Fill in -i, the IPv6 source and the IPv6 next hop's MAC from ``ip -6 route get`` to the
    first IPv6 target and the NDP table. The MAC is None when ``-G`` names it already."""
    from liveness.net.route import sending_defaults

    batch = space.lookup(np.array([space.size4], dtype=np.uint64))
    first = str(ipaddress.IPv6Address(batch.v6[0].tobytes()))
    ifname, source, mac = sending_defaults(first, interface, source_ip6, gateway_mac)
    return ifname, source, None if gateway_mac is not None else mac


def _parse_rate(rate: str | None, bandwidth: str | None, probes: list[Probe]) -> float | None:
    """``-r`` packets/s (0: as fast as the path allows) or ``-B`` bits/s with 10M/1G suffixes."""
    from liveness.scan.pacing import rate_for_bandwidth

    if rate is not None and bandwidth is not None:
        raise InputError("-r/--rate and -B/--bandwidth exclude each other")
    if bandwidth is not None:
        scale = {"K": 1e3, "M": 1e6, "G": 1e9}
        text = bandwidth.strip().upper()
        factor = scale.get(text[-1:], 1.0)
        number = text[:-1] if text[-1:] in scale else text
        try:
            bits = float(number) * factor
        except ValueError:
            bits = -1.0
        if not math.isfinite(bits) or bits <= 0:
            raise InputError(f"-B/--bandwidth: {bandwidth!r} is not a rate like 10M or 1G")
        mean_len = sum(p.frame_len for p in probes) / len(probes)
        return rate_for_bandwidth(bits, mean_len)
    if rate is None:
        return DEFAULT_RATE
    try:
        value = float(rate)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        raise InputError(f"-r/--rate: {rate!r} is not a packet rate >= 0 (0: unlimited)")
    return None if value == 0 else value


def _checkpoint_seed(output: str) -> int:
    """The seed an interrupted scan used (``--resume`` without ``-e`` continues with it)."""
    from liveness.scan.loop import default_checkpoint

    path = f"{default_checkpoint(output)}.json"
    try:
        with open(path) as handle:
            saved = json.load(handle)
        return int(saved["seed"])
    except FileNotFoundError:
        raise InputError(f"--resume: no checkpoint at {path} (nothing to resume)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"--resume: {path} is not a liveness checkpoint ({exc})") from None


def run_live(options: ScanOptions, live: RunOptions) -> dict[str, Any]:
    """Run the scan on the wire; returns its metadata."""
    from liveness.scan.loop import ScanSettings, run_scan

    if os.geteuid() != 0:
        raise RunError(
            "a live scan needs root or CAP_NET_RAW for its packet sockets (or use -d for a dry run)"
        )
    destination = preflight_outputs(live)
    fields = live.fields
    settings = ScanSettings(
        space=options.space,
        probes=options.probes,
        context=options.context,
        seed=options.seed,
        ifname=options.interface or "",
        output=live.output,
        shards=options.shards,
        shard=options.shard,
        rate=live.rate,
        max_targets=options.max_targets,
        max_runtime=live.max_runtime,
        cooldown=live.cooldown,
        retransmissions=options.retransmissions,
        retransmit_delay=options.retransmit_delay,
        fields=fields,
        output_filter=live.output_filter,
        resume=live.resume,
        quiet=live.quiet,
        status_csv=live.status_csv,
        metadata_path=live.metadata,
        copies=live.copies,
        max_sendto_failures=live.max_sendto_failures,
        destination=destination,
        describe=dict(live.describe or {}),
        output_module=live.output_module,
        header=live.header,
        max_results=live.max_results,
        min_hitrate=live.min_hitrate,
    )
    return run_scan(settings)


def app_layer_settings(on: bool, profile: str | None, timeout: float, banner_bytes: int) -> Any:
    """The ``--app-layer`` settings (None without it; its companions alone are an error)."""
    from liveness.probes.app_profiles import AppLayer, parse_app_profiles

    if not on:
        given = [
            flag
            for flag, value in (
                ("--app-profile", profile is not None),
                ("--app-timeout", timeout != 4.0),
                ("--banner-bytes", banner_bytes != 256),
            )
            if value
        ]
        if given:
            raise InputError(f"{', '.join(given)}: only with --app-layer")
        return None
    if not math.isfinite(timeout):
        raise InputError(f"--app-timeout {timeout}: must be a number of seconds")
    return AppLayer(parse_app_profiles(profile), timeout, banner_bytes)


def check_live_options(live: RunOptions, probes: list[Probe]) -> None:
    """The checks a dry run and a live scan share (a dry run is a faithful rehearsal)."""
    from liveness.output.fields import resolve_fields
    from liveness.output.filter import compile_filter

    cooldown, max_runtime = live.cooldown, live.max_runtime
    if not math.isfinite(cooldown) or cooldown < 0:
        raise InputError(f"-c/--cooldown-time: {cooldown} must be a number >= 0")
    if max_runtime is not None and (not math.isfinite(max_runtime) or max_runtime <= 0):
        raise InputError(f"-t/--max-runtime: {max_runtime} must be a number > 0")
    if not 1 <= live.copies <= 16:
        raise InputError(f"-P/--probes-per-target: {live.copies} must be within 1..16")
    check_zmap_limits(live)
    if live.fields is not None:
        resolve_fields(live.fields, "-f/--output-fields")
    if live.output_filter:
        try:
            compile_filter(live.output_filter)
        except InputError as exc:
            raise InputError(f"--output-filter: {exc}") from None
    live.rate = _parse_rate(live.rate_text, live.bandwidth_text, probes)


def check_zmap_limits(live: RunOptions) -> None:
    """``-O``, ``-N`` and ``--min-hitrate`` as ZMap accepts them (InputError names the flag)."""
    from liveness.output.writers import output_format

    output_format(live.output, live.output_module)  # an unknown module lists the valid ones
    if live.max_results is not None and live.max_results < 0:
        raise InputError(f"-N/--max-results: {live.max_results} must be a count >= 0 (0: no cap)")
    if live.max_results == 0:
        live.max_results = None
    rate = live.min_hitrate
    if rate is not None and not (math.isfinite(rate) and 0 <= rate <= 100):
        raise InputError(f"--min-hitrate: {rate} must be a percentage within 0..100 (0: off)")
    if rate == 0:
        live.min_hitrate = None


def preflight_outputs(live: RunOptions) -> Any:
    """Check every output path before the first packet; returns the resolved ``-o``.

    Each is checked as the scan will write it: after it has dropped its capabilities.
    """
    from liveness.output.destination import check_writable, resolve_destination
    from liveness.scan.loop import default_checkpoint
    from liveness.scan.privileges import check_writable_without_capabilities

    destination = resolve_destination(live.output)
    outputs = [
        ("-m/--metadata-file", live.metadata),
        ("-u/--status-updates-file", live.status_csv),
    ]
    if destination.resumable:
        checkpoint = default_checkpoint(live.output) + ".json"
        outputs += [("-o/--output-file", destination.path), ("checkpoint", checkpoint)]
    try:
        if live.resume and not destination.resumable:
            raise InputError(f"--resume needs -o to name a regular file, not {live.output!r}")
        named = [(flag, path) for flag, path in outputs if path]
        for flag, path in named:
            check_writable(os.path.realpath(path), flag)
        check_writable_without_capabilities(named)
    except InputError:
        destination.remove_scratch()
        raise
    return destination


def run_dry(
    options: ScanOptions,
    pcap_out: str | None,
    output_file: str | None,
    as_json: bool,
    *,
    copies: int = 1,
) -> dict[str, Any]:
    """Build every frame; write them to a pcap or print them; return the counts."""
    try:
        with ExitStack() as stack:
            pcap = stack.enter_context(PcapWriter(pcap_out)) if pcap_out else None
            lines: TextIO | None = None
            if output_file not in (None, "-"):
                try:
                    lines = stack.enter_context(open(output_file, "w", encoding="ascii"))  # type: ignore[arg-type]
                except OSError as exc:
                    raise InputError(f"-o/--output-file: {output_file}: {exc.strerror}") from None
            elif pcap is None and not as_json:
                lines = sys.stdout
            try:
                report = dry_run(
                    options.target_batches,
                    options.probes,
                    options.context,
                    attempts=options.attempts,
                    retransmit_delay_s=options.retransmit_delay,
                    pcap=pcap,
                    lines=lines,
                    max_targets=options.max_targets,
                    copies=copies,
                )
            except BrokenPipeError:  # `liveness scan -d ... | head`: the reader has seen enough
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                raise SystemExit(0) from None
    except OSError as exc:  # the frame lines could not be written (a full disk, /dev/full)
        where = output_file if output_file not in (None, "-") else "stdout"
        raise RunError(f"-o/--output-file: {where}: cannot write: {exc.strerror}") from None
    ctx = options.context
    return {
        "dryrun": True,
        **report.as_dict(),
        "probes": [p.name for p in options.probes],
        "target_space": options.space.size,
        "shards": options.shards,
        "shard": options.shard,
        "seed": options.seed,
        "key": ctx.key_hex(),
        "source_ip": ctx.src_ip_text,
        "source_ip6": ctx.src_ip6_text or None,
        "pcap": pcap_out,
    }


# ZMap's man page groups its options; `liveness scan --help` does the same (zmap.1: BASIC,
# SCAN (with sharding), NETWORK, PROBE, OUTPUT (with logging and metadata), ADDITIONAL).
HELP_SECTIONS: dict[str, tuple[str, ...]] = {
    "Basic options": (
        "target_ports", "output_file", "blocklist_file", "allowlist_file", "list_of_ips_file",
    ),
    "Scan options": (
        "rate", "bandwidth", "max_targets", "max_results", "max_runtime", "probes_per_target",
        "cooldown_time", "seed", "retransmit_delay", "retransmissions", "dryrun", "pcap_out",
        "shards", "shard", "resume", "iid",
    ),
    "Network options": (
        "source_port", "source_ip", "source_ip6", "gateway_mac", "source_mac", "interface",
    ),
    "Probe options": (
        "probes", "probe_module", "probe_args", "probe_ttl", "list_probe_modules",
        "app_layer", "app_profile", "app_timeout", "banner_bytes",
    ),
    "Output options": (
        "output_fields", "output_module", "output_filter", "list_output_fields", "no_header_row",
        "metadata_file", "status_updates_file", "quiet", "notes", "user_metadata", "vp",
        "as_json",
    ),
    "Advanced options": ("max_sendto_failures", "min_hitrate", "help"),
}  # fmt: skip


class ScanCommand(click.Command):
    """``liveness scan``: its ``--help`` lists options in ZMap's man-page sections."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """One section per ZMap group; an option left out of every group still shows."""
        place = {
            name: (title, index)
            for title, names in HELP_SECTIONS.items()
            for index, name in enumerate(names)
        }
        rows: dict[str, list[tuple[int, tuple[str, str]]]] = {title: [] for title in HELP_SECTIONS}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None and isinstance(param, click.Option):
                title, index = place.get(param.name or "", ("Advanced options", len(place)))
                rows[title].append((index, record))
        for title, records in rows.items():
            if records:
                with formatter.section(title):
                    formatter.write_dl([record for _, record in sorted(records)])


@click.command(name="scan", cls=ScanCommand)
@click.argument("targets", nargs=-1)
@click.option("-p", "--target-ports", help="TCP ports for the tcp_syn probes: 22,80-90.")
@click.option(
    "--probes",
    default=DEFAULT_PROBES,
    show_default=True,
    help="Probe list: icmp_echo, icmp_timestamp, tcp_syn[:PORT|:random], "
    "udp_dns[:TYPE[:NAME]], udp_ntp, udp:PORT[:PAYLOAD] (a named payload such as snmp, "
    "or hex:/text:/file:).",
)
@click.option(
    "-M",
    "--probe-module",
    help="ZMap's module name instead of --probes: icmp_echoscan, tcp_synscan (with -p), dns, "
    "ntp, udp (with -p).",
)
@click.option(
    "--probe-args",
    help="Arguments of the -M module (dns: TYPE,NAME; udp: text:, hex:, file:PATH or a name).",
)
@click.option("--probe-ttl", type=int, default=64, show_default=True, help="TTL of the probes.")
@click.option(
    "-s", "--source-port", help="Source ports: one, or a range A-B (default 32768-60999)."
)
@click.option("--notes", help="Free text recorded in the metadata (-m).")
@click.option("--user-metadata", help="A JSON value recorded in the metadata (-m).")
@click.option(
    "--list-probe-modules", is_flag=True, help="List the probe types and ZMap module names."
)
@click.option("--list-output-fields", is_flag=True, help="List the fields -f can name.")
@click.option("-w", "--allowlist-file", help="Only scan these CIDRs (one per line).")
@click.option("-b", "--blocklist-file", help="Never scan these CIDRs (added to the default).")
@click.option("-I", "--list-of-ips-file", help="Only scan the addresses listed in this file.")
@click.option("-e", "--seed", type=int, help="Seed of the permutation and validation key.")
@click.option("--shards", type=int, default=1, show_default=True, help="Number of shards.")
@click.option("--shard", type=int, default=0, show_default=True, help="This shard (0-based).")
@click.option("-n", "--max-targets", help="Stop after this many targets (or N%).")
@click.option(
    "-N",
    "--max-results",
    type=int,
    help="Stop once this many results (rows, after --output-filter) are written (0: no cap).",
)
@click.option(
    "--iid",
    default="low",
    show_default=True,
    help="Interface identifier of prefix-walk targets (2001:db8::/32-64): low (::1), random, "
    "fixed:HEX.",
)
@click.option("-S", "--source-ip", help="Source address of the probes (IPv4, or IPv6).")
@click.option("--source-ip6", help="IPv6 source address (default: the route's).")
@click.option("--source-mac", help="Source MAC address.")
@click.option("-G", "--gateway-mac", help="Gateway MAC address (Ethernet destination).")
@click.option("-d", "--dryrun", is_flag=True, help="Build the frames, send nothing.")
@click.option("--pcap-out", help="Dry run: write the frames to this pcap file.")
@click.option("-o", "--output-file", help="Replies (live) or frame lines (dry run); - stdout.")
@click.option(
    "--retransmit-delay",
    type=float,
    default=20.0,
    show_default=True,
    help="Seconds before each probe is sent again (0: no retransmission).",
)
@click.option(
    "--retransmissions",
    type=int,
    default=1,
    show_default=True,
    help="How many times each probe is sent again, --retransmit-delay apart.",
)
@click.option("--vp", default="", help="Name of this vantage point (recorded in every reply).")
@click.option("-i", "--interface", help="Interface to send on (default: the route's).")
@click.option(
    "-r", "--rate", help="Packets per second (default 10000, ZMap's; 0: as fast as possible)."
)
@click.option("-B", "--bandwidth", help="Bits per second instead of -r (10M, 1G).")
@click.option("-t", "--max-runtime", type=float, help="Stop sending after this many seconds.")
@click.option(
    "--max-sendto-failures",
    type=int,
    default=-1,
    show_default=True,
    help="Give up after more than this many failed sends, each retried (-1: never).",
)
@click.option(
    "--min-hitrate",
    type=float,
    help="Abort (exit 1) once the hitrate, in percent, stays below this for 5 s after the "
    "first 5 s (ZMap's rule).",
)
@click.option(
    "-c",
    "--cooldown-time",
    type=float,
    default=8.0,
    show_default=True,
    help="Seconds to keep receiving after the last probe.",
)
@click.option(
    "-P",
    "--probes-per-target",
    type=int,
    default=1,
    show_default=True,
    help="Copies of each probe sent together (replies to copies are marked repeat).",
)
@click.option(
    "-f",
    "--output-fields",
    help="Comma-separated fields (liveness names, or ZMap's: saddr, daddr, classification, ...).",
)
@click.option(
    "--output-filter", help="Keep only replies matching, e.g. 'success = 1 && repeat = 0'."
)
@click.option(
    "-O",
    "--output-module",
    help="Output format instead of -o's extension: csv, json (JSON lines), parquet.",
)
@click.option("--no-header-row", is_flag=True, help="CSV output without its header line.")
@click.option("--resume", is_flag=True, help="Continue an interrupted scan from its checkpoint.")
@click.option("-u", "--status-updates-file", help="Write the status line as CSV to this file.")
@click.option("-q", "--quiet", is_flag=True, help="No status line.")
@click.option("-m", "--metadata-file", help="Write the scan's metadata as JSON to this file.")
@click.option("--batch-size", type=int, default=DEFAULT_BATCH, show_default=True, hidden=True)
@click.option(
    "--app-layer",
    is_flag=True,
    help="Complete each SYN-ACK's handshake statelessly, send the port's profile payload and "
    "record the answer (app_active, app_proto, banner).",
)
@click.option(
    "--app-profile",
    help="PORT:PROFILE,... (profiles: http, tls, banner); default 22,23 banner, 80,7547 http, "
    "443 tls, other ports http.",
)
@click.option(
    "--app-timeout",
    type=float,
    default=4.0,
    show_default=True,
    help="Seconds to wait for an answer before closing with a RST.",
)
@click.option(
    "--banner-bytes",
    type=int,
    default=256,
    show_default=True,
    help="Bytes of each answer kept in the banner field.",
)
@json_option
def command(
    targets: tuple[str, ...],
    target_ports: str | None,
    probes: str,
    probe_module: str | None,
    probe_args: str | None,
    probe_ttl: int,
    source_port: str | None,
    notes: str | None,
    user_metadata: str | None,
    list_probe_modules: bool,
    list_output_fields: bool,
    allowlist_file: str | None,
    blocklist_file: str | None,
    list_of_ips_file: str | None,
    seed: int | None,
    shards: int,
    shard: int,
    max_targets: str | None,
    iid: str,
    source_ip: str | None,
    source_ip6: str | None,
    source_mac: str | None,
    gateway_mac: str | None,
    dryrun: bool,
    pcap_out: str | None,
    output_file: str | None,
    retransmit_delay: float,
    retransmissions: int,
    vp: str,
    interface: str | None,
    rate: str | None,
    bandwidth: str | None,
    max_runtime: float | None,
    max_sendto_failures: int,
    cooldown_time: float,
    probes_per_target: int,
    output_fields: str | None,
    output_filter: str | None,
    resume: bool,
    status_updates_file: str | None,
    quiet: bool,
    metadata_file: str | None,
    max_results: int | None,
    output_module: str | None,
    no_header_row: bool,
    min_hitrate: float | None,
    batch_size: int,
    app_layer: bool,
    app_profile: str | None,
    app_timeout: float,
    banner_bytes: int,
    as_json: bool,
) -> None:
    """Probe TARGETS (CIDRs of either family, or prefix walks such as 2001:db8::/32-64) with
    several probe types at once and record every reply."""
    if list_probe_modules or list_output_fields:
        _print_lists(list_probe_modules, list_output_fields, as_json)
        return
    if probe_module is not None:
        if probes != DEFAULT_PROBES:
            raise InputError("-M/--probe-module and --probes exclude each other")
        from liveness.cli.zmap_names import probes_for_module

        probes = probes_for_module(probe_module, target_ports, probe_args)
        if probe_module == "udp":
            target_ports = None  # the udp:PORT probes carry the -p ports
    elif probe_args is not None:
        raise InputError("--probe-args needs -M/--probe-module")
    describe = _describe(notes, user_metadata)
    if pcap_out and not dryrun:
        raise InputError("--pcap-out only applies to a dry run (-d/--dryrun)")
    if resume and seed is None and not dryrun:
        seed = _checkpoint_seed(output_file or "replies.parquet")
    app = app_layer_settings(app_layer, app_profile, app_timeout, banner_bytes)
    options = parse_options(
        targets,
        target_ports=target_ports,
        probes=probes,
        allowlist_file=allowlist_file,
        blocklist_file=blocklist_file,
        list_of_ips_file=list_of_ips_file,
        seed=seed,
        shards=shards,
        shard=shard,
        max_targets=max_targets,
        source_ip=source_ip,
        source_mac=source_mac,
        gateway_mac=gateway_mac,
        retransmit_delay=retransmit_delay,
        vp=vp,
        batch_size=batch_size,
        dryrun=dryrun,
        retransmissions=retransmissions,
        interface=interface,
        source_ip6=source_ip6,
        iid=iid,
        ttl=probe_ttl,
        source_port=source_port,
        app_layer=app,
    )
    fields = [f.strip() for f in output_fields.split(",")] if output_fields else None
    if app is not None and fields is None:
        from liveness.output.schema import REPLY_COLUMNS

        fields = list(REPLY_COLUMNS)  # the reply record with its application columns
    if app is not None and cooldown_time < app.timeout_s + 1:
        log(
            f"liveness: --cooldown-time raised from {cooldown_time:g} to "
            f"{app.timeout_s + 1:g} s so that the last connections get their --app-timeout"
        )
        cooldown_time = app.timeout_s + 1
    live = RunOptions(
        output=output_file or "replies.parquet",
        rate_text=rate,
        bandwidth_text=bandwidth,
        max_runtime=max_runtime,
        cooldown=cooldown_time,
        fields=fields,
        output_filter=output_filter,
        resume=resume,
        quiet=quiet or as_json,
        status_csv=status_updates_file,
        metadata=metadata_file,
        copies=probes_per_target,
        max_sendto_failures=None if max_sendto_failures < 0 else max_sendto_failures,
        describe=describe,
        output_module=output_module,
        header=not no_header_row,
        max_results=max_results,
        min_hitrate=min_hitrate,
    )
    check_live_options(live, options.probes)
    if dryrun and source_ip is None:  # only once every flag has been checked
        if options.space.has_ipv6 and source_ip6 is None and options.space.size4:
            log(
                f"liveness: dry run from placeholder sources {DRY_RUN_SOURCE} and "
                f"{DRY_RUN_SOURCE6} (set -S and --source-ip6 to change)"
            )
        elif options.space.has_ipv6:
            if source_ip6 is None:
                log(
                    f"liveness: dry run from placeholder source {DRY_RUN_SOURCE6} "
                    "(set --source-ip6 to change)"
                )
        else:
            log(f"liveness: dry run from placeholder source {DRY_RUN_SOURCE} (set -S to change)")
    if not dryrun:
        metadata = run_live(options, live)
        aborted = metadata.get("aborted")
        if as_json:
            emit_json(metadata)
            if aborted:
                log(f"liveness: scan aborted: {aborted}")
        else:
            stopped = metadata["interrupted"]
            log(
                f"liveness: sent {metadata['packets_sent']} probes to {metadata['targets_probed']}"
                f" targets at {metadata['rate_achieved_pps']:.0f} p/s; "
                f"{metadata['rows_written']} replies written to {live.output}"
                + (
                    f"; scan aborted: {aborted}"
                    if aborted
                    else (f" (stopped: {stopped})" if stopped else "")
                )
            )
        from liveness.scan.loop import EXIT_STATUS

        if metadata["interrupted"] in EXIT_STATUS:
            sys.exit(EXIT_STATUS[metadata["interrupted"]])
        return
    result = run_dry(options, pcap_out, output_file, as_json, copies=probes_per_target)
    if as_json:
        emit_json(result)
    else:
        log(
            f"liveness: dry run: {result['frames']} frames for {result['targets']} targets, "
            f"{len(options.probes)} probes, attempts {result['attempts']}"
            + (f", written to {pcap_out}" if pcap_out else "")
        )
