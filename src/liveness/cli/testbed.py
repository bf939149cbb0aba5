"""``liveness testbed``: build, use, inspect and remove emulated Internets in namespaces."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import click

from liveness.cli._common import (
    check_output_file,
    echo,
    emit_json,
    json_option,
    log,
    output_file,
)

__all__ = ["command"]

_FORWARDED_AND_SIGCHLD = {
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGCHLD,
}

id_option = click.option("--id", "testbed_id", help="Testbed id (default: the only one running).")


@click.group(name="testbed")
def command() -> None:
    """Build, inspect and remove an emulated Internet in network namespaces."""


@command.command()
@click.argument("spec")
@click.option(
    "--id", "testbed_id", help="Use this id (letters and digits) instead of a random one."
)
@json_option
def up(spec: str, testbed_id: str | None, as_json: bool) -> None:
    """Bring up SPEC (a shipped name: paper, connectivity, small, dualstack; or a TOML file)."""
    from liveness.testbed import Testbed, load_spec

    started = time.monotonic()
    testbed = Testbed.up(load_spec(spec), testbed_id)
    elapsed = time.monotonic() - started
    if as_json:
        emit_json({**testbed.status(), "up_s": round(elapsed, 3)})
        return
    log(f"testbed {testbed.id} ({testbed.spec.name}) up in {elapsed:.2f} s")
    echo(f"id {testbed.id}")
    for vp in testbed.vps.values():
        ipv6 = "" if vp.src_ip6 is None else f" source6 {vp.src_ip6} gateway6 {vp.gateway_ip6}"
        echo(
            f"vp {vp.name} netns {vp.netns} interface {vp.ifname} source {vp.src_ip} "
            f"gateway {vp.gateway_ip} gateway-mac {vp.gateway_mac}{ipv6}"
        )
    echo(f"targets {','.join(testbed.targets)}")
    if testbed.targets6:
        echo(f"targets6 {','.join(testbed.targets6)} (hosts at ::1 of each /64)")


@command.command(name="exec", context_settings={"ignore_unknown_options": True})
@id_option
@click.argument("vp")
@click.argument("argv", nargs=-1, type=click.UNPROCESSED, required=True)
def exec_(testbed_id: str | None, vp: str, argv: tuple[str, ...]) -> None:
    """Run a command inside a VP's namespace: liveness testbed exec VP -- CMD ...

    Signals sent to this command reach CMD; the exit status is CMD's (128+N if signal N killed
    it, 127 if there is no such program, 126 if it cannot be executed).
    """
    # Blocked before any import starts a thread (all threads then block them), so that they
    # reach run_forwarding's wait with their sender; a superset of forward.FORWARDED.
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _FORWARDED_AND_SIGCHLD)
    try:
        from liveness.testbed import Testbed

        status = Testbed.attach(testbed_id).exec_forwarding(vp, list(argv), previous)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    sys.exit(status)


@command.command()
@json_option
def status(as_json: bool) -> None:
    """List running testbeds: VPs, uptime, processes and namespaces still alive."""
    from liveness.testbed.state import existing_namespaces, list_ids, process_alive, read_state

    present = existing_namespaces()
    testbeds = []
    for one in list_ids():
        record = read_state(one)
        started = record.get("started_at")
        testbeds.append(
            {
                "id": one,
                "spec": record.get("spec"),
                "uptime_s": round(time.time() - started, 1) if started else None,
                "vps": record.get("vps", {}),
                "namespaces": {ns: ns in present for ns in record.get("namespaces", [])},
                "processes": {
                    f"{p['name']}:{p['pid']}": process_alive(p) for p in record.get("processes", [])
                },
            }
        )
    if as_json:
        emit_json({"testbeds": testbeds})
        return
    if not testbeds:
        echo("no testbed running")
    for tb in testbeds:
        alive = sum(tb["processes"].values())
        ns_ok = sum(tb["namespaces"].values())
        echo(
            f"{tb['id']} spec={tb['spec']} uptime={tb['uptime_s']}s vps={','.join(tb['vps'])} "
            f"namespaces={ns_ok}/{len(tb['namespaces'])} processes={alive}/{len(tb['processes'])}"
        )


@command.command()
@id_option
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="File for the truth (per address and probe, both families).",
)
@click.option(
    "--schedule",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File for the schedule (default: OUTPUT with .schedule.parquet or .schedule.csv).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["parquet", "csv"]),
    help="Output format (default: csv for a .csv OUTPUT, else parquet). CSV has the addresses "
    "as text (IPv6 as RFC 5952) in target and responder, with af.",
)
@json_option
def truth(
    testbed_id: str | None, output: Path, schedule: Path | None, fmt: str | None, as_json: bool
) -> None:
    """Write the ground truth and the connectivity schedule, as Parquet or CSV."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from liveness.testbed import Testbed
    from liveness.testbed.truth_schema import truth_text

    fmt = fmt or ("csv" if output.suffix.lower() == ".csv" else "parquet")
    suffix = f".{fmt}"
    schedule = schedule or output.with_name(
        output.name.removesuffix(suffix).removesuffix(".parquet") + f".schedule{suffix}"
    )
    check_output_file(str(output), "-o")
    check_output_file(str(schedule), "--schedule")
    testbed = Testbed.attach(testbed_id)
    table, events = testbed.truth()
    with (
        output_file(str(output), "-o") as truth_tmp,
        output_file(str(schedule), "--schedule") as schedule_tmp,
    ):
        if fmt == "csv":
            pcsv.write_csv(truth_text(table), truth_tmp)
            pcsv.write_csv(events, schedule_tmp)
        else:
            pq.write_table(table, truth_tmp)
            pq.write_table(events, schedule_tmp)
    af = table["af"].to_numpy()
    result = {
        "id": testbed.id,
        "truth": str(output),
        "format": fmt,
        "rows": table.num_rows,
        "rows_ipv4": int((af == 4).sum()),
        "rows_ipv6": int((af == 6).sum()),
        "schedule": str(schedule),
        "events": events.num_rows,
        "started_at": testbed.started_at,
    }
    if as_json:
        emit_json(result)
    else:
        log(
            f"wrote {table.num_rows} truth rows to {output}, {events.num_rows} events to {schedule}"
        )


@command.command()
@click.option("--id", "testbed_id", help="Remove only this testbed (default: every one).")
@json_option
def down(testbed_id: str | None, as_json: bool) -> None:
    """Remove testbeds: their namespaces, links, rules and processes (also after a crash)."""
    from liveness.testbed import down_all

    done = down_all(testbed_id)
    if as_json:
        emit_json({"removed": done})
    else:
        for line in done:
            log(line)
        log(f"{len(done)} things removed")
