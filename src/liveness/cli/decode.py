"""``liveness decode``: reply records from a pcap of captured replies, offline.

The validation key comes from the scan's seed (``--seed``, as ``scan -e``) or is given as hex
(``--key``, from the scan's metadata); the source addresses (``-S``, once per family the
scan used), probe list and port range must be those of the scan. A truncated pcap is decoded
up to the cut and reported as a warning.
"""

from __future__ import annotations

import ipaddress
from contextlib import ExitStack
from typing import Any

import click

from liveness.cli._common import check_output_file, emit_json, json_option, log
from liveness.cli._common import output_file as replacing_output
from liveness.errors import InputError
from liveness.probes import DEFAULT_PROBES, parse_probes
from liveness.probes.context import ScanContext
from liveness.targets.inputs import check_input_file, excerpt
from liveness.validate import KEY_LEN

__all__ = ["command"]

PLACEHOLDER_MAC = bytes(6)


def _sources(texts: tuple[str, ...]) -> tuple[int, bytes | None]:
    """``-S`` addresses: at most one IPv4 and one IPv6."""
    src4: int | None = None
    src6: bytes | None = None
    for text in texts:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise InputError(f"-S/--source-ip: {excerpt(text)} is not an IP address") from None
        if address.version == 4:
            if src4 is not None:
                raise InputError("-S/--source-ip: give one IPv4 source (the scan's)")
            src4 = int(address)
        else:
            if src6 is not None:
                raise InputError("-S/--source-ip: give one IPv6 source (the scan's)")
            src6 = address.packed
    return (src4 or 0), src6


def _context(
    seed: int | None,
    key: str | None,
    sources: tuple[str, ...],
    vp: str,
    max_attempts: int,
    ports: dict[str, Any] | None = None,
) -> ScanContext:
    src, src6 = _sources(sources)
    fields: dict[str, Any] = {
        **(ports or {}),
        "src_ip": src,
        "src_ip6": src6,
        "src_mac": PLACEHOLDER_MAC,
        "gw_mac": PLACEHOLDER_MAC,
        "vp": vp,
        "max_attempts": max_attempts,
    }
    if (seed is None) == (key is None):
        raise InputError("give exactly one of --seed (the scan's -e) and --key (hex)")
    if seed is not None:
        return ScanContext.from_seed(seed, **fields)
    assert key is not None
    try:
        raw = bytes.fromhex(key)
    except ValueError:
        raise InputError(f"--key: {excerpt(key)} is not hex") from None
    if len(raw) != KEY_LEN:
        raise InputError(f"--key: must be {KEY_LEN} bytes ({2 * KEY_LEN} hex digits)")
    return ScanContext(key=raw, **fields)


@click.command(name="decode")
@click.argument("pcap", type=click.Path(dir_okay=False))
@click.option("-e", "--seed", type=click.IntRange(0, 2**64 - 1), help="The scan's seed (scan -e).")
@click.option("--key", help="The scan's validation key in hex (from its metadata).")
@click.option(
    "-S",
    "--source-ip",
    required=True,
    multiple=True,
    help="The scan's source address (repeat for the other family's).",
)
@click.option("--probes", default=DEFAULT_PROBES, show_default=True, help="The scan's probes.")
@click.option("-p", "--target-ports", help="The scan's -p ports.")
@click.option(
    "--max-attempts",
    type=int,
    default=2,
    show_default=True,
    help="Transmissions per probe in the scan (1 + retransmissions).",
)
@click.option("-s", "--source-port", help="The scan's -s source ports, if it gave any.")
@click.option("--vp", default="", help="Vantage point name to record.")
@click.option("-o", "--output-file", help="Records: .parquet, .csv, .jsonl (- = CSV stdout).")
@click.option("--app-layer", is_flag=True, help="The scan ran with --app-layer.")
@click.option("--app-profile", help="The scan's --app-profile, if it gave one.")
@click.option("--banner-bytes", type=int, default=256, show_default=True, help="Banner bytes kept.")
@json_option
def command(
    pcap: str,
    seed: int | None,
    key: str | None,
    source_ip: tuple[str, ...],
    probes: str,
    target_ports: str | None,
    max_attempts: int,
    source_port: str | None,
    vp: str,
    output_file: str | None,
    app_layer: bool,
    app_profile: str | None,
    banner_bytes: int,
    as_json: bool,
) -> None:
    """Decode PCAP (captured replies) into reply records and print the counters."""
    from liveness.output.writers import open_writer
    from liveness.scan.offline import decode_capture

    if output_file == "-" and as_json:
        raise InputError("-o - and --json would both write to stdout; pick one")
    if not 1 <= max_attempts <= 255:
        raise InputError(f"--max-attempts: {max_attempts} must be 1..255")
    to_file = output_file not in (None, "-")
    if to_file:
        assert output_file is not None
        check_output_file(output_file, "-o/--output-file")
    check_input_file(pcap)
    ports: dict[str, Any] = {}
    if source_port is not None:
        from liveness.cli.scan import parse_source_ports

        base, count = parse_source_ports(source_port)
        ports = {"sport_base": base, "sport_count": count}
    from liveness.cli.scan import app_layer_settings

    app = app_layer_settings(app_layer, app_profile, 4.0, banner_bytes)
    if app is not None:
        ports["app_layer"] = app
    ctx = _context(seed, key, source_ip, vp, max_attempts, ports)
    probe_list = parse_probes(probes, target_ports)
    with ExitStack() as stack:
        # a file output is written to a temporary that replaces it only once complete
        target = output_file
        if to_file:
            assert output_file is not None
            target = stack.enter_context(replacing_output(output_file, "-o/--output-file"))
        fields = None
        if app is not None:
            from liveness.output.schema import REPLY_COLUMNS

            fields = list(REPLY_COLUMNS)
        writer = (
            open_writer(target, fields=fields, scanner_addr=ctx.src_ip, scanner_addr6=ctx.src_ip6)
            if target
            else None
        )
        decoded = decode_capture(pcap, ctx, probe_list, writer)
        if writer is not None:
            writer.close()
    if decoded.warning:
        log(f"liveness: warning: {decoded.warning}")
    result = {
        "pcap": pcap,
        "output": output_file,
        "records": decoded.records,
        "counters": decoded.counters,
        "warning": decoded.warning,
    }
    if as_json:
        emit_json(result)
    else:
        counters = " ".join(f"{k}={v}" for k, v in decoded.counters.items() if v)
        log(f"liveness: decoded {decoded.records} replies; {counters}")
