"""``liveness sql``: run a DuckDB query over reply files (view ``replies``) and ground truth.

Every FILE is read as the analyses read it (Parquet, CSV, JSON lines, the journal of a running
or crashed scan, ZMap output as ``FILE:PROBE``), into one Arrow table that DuckDB scans in
place: the reply record's columns (``probe``, ``reply`` and ``vp`` as text), plus ``target_ip``
and ``responder_ip``, the addresses as text in either family, and ``file``, the argument the row
came from. ``--truth FILE`` (``liveness testbed truth``) is the view ``truth``, with the same
``target_ip``/``responder_ip``. Output: a text table, ``--csv`` or ``--json`` (one object).
"""

from __future__ import annotations

import io
import os
from typing import Any

import click
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from liveness.analysis.zmap_files import parse_zmap_spec, read_zmap
from liveness.cli._common import echo, emit_json, json_option
from liveness.errors import InputError
from liveness.output.addresses import format_dotted, format_ipv6
from liveness.output.readers import read_replies
from liveness.output.schema import ADDR6, REPLY_SCHEMA
from liveness.output.writers import format_for_path

__all__ = ["command", "run_query"]

_TEXT_CELLS = 60  # a text-table cell is cut to this many characters
_READ_ERRORS = (pa.ArrowException, OSError, ValueError, KeyError)


def _as_text(table: pa.Table, names: tuple[str, ...]) -> pa.Table:
    """Dictionary columns as plain strings (DuckDB then compares them as text)."""
    for name in names:
        if name in table.column_names:
            index = table.column_names.index(name)
            table = table.set_column(index, name, table.column(name).cast(pa.string()))
    return table


def _address_text(ipv4: Any, ipv6: Any, af: Any) -> pa.Array[Any]:
    """One column of address text: dotted IPv4 on ``af = 4`` rows, RFC 5952 on IPv6 rows."""
    four = format_dotted(ipv4.combine_chunks())
    six = format_ipv6(ipv6.combine_chunks().cast(ADDR6))
    is6 = pc.equal(af.combine_chunks().cast(pa.uint8()), pa.scalar(6, pa.uint8()))
    result = pc.if_else(is6, six, four)
    assert isinstance(result, pa.Array)
    return result


def _with_addresses(table: pa.Table) -> pa.Table:
    """``table`` with ``target_ip`` and ``responder_ip`` (address text of either family)."""
    for name in ("target", "responder"):
        if name not in table.column_names:
            continue
        column = table.column(name)
        if pa.types.is_string(column.type):  # truth as text (CSV): already the text
            text: pa.Array[Any] = column.combine_chunks()
        elif "af" in table.column_names and f"{name}6" in table.column_names:
            text = _address_text(column, table.column(f"{name}6"), table.column("af"))
        else:
            text = format_dotted(column.combine_chunks())
        table = table.append_column(f"{name}_ip", text)
    return table


def read_reply_table(paths: tuple[str, ...]) -> pa.Table:
    """The rows of every reply file as one table (see the module docstring)."""
    parts = []
    for path in paths:
        source = parse_zmap_spec(path)
        try:
            batches = list(read_zmap(source) if source else read_replies(path))
        except InputError:
            raise
        except _READ_ERRORS as exc:
            raise InputError(f"{path}: unreadable reply file: {exc}") from exc
        part = pa.Table.from_batches(batches, schema=REPLY_SCHEMA)
        parts.append(part.append_column("file", pa.array(np.full(part.num_rows, path))))
    table = pa.concat_tables(parts, promote_options="permissive")
    return _with_addresses(_as_text(table, ("probe", "reply", "vp")))


def read_truth(path: str) -> pa.Table:
    """A truth file (Parquet or CSV, as ``liveness testbed truth`` writes) as a table."""
    from liveness.testbed.truth_schema import upgrade_truth

    if not os.path.isfile(path):
        raise InputError(f"--truth {path}: no such file")
    try:
        if format_for_path(path) == "csv":
            table = pcsv.read_csv(path)
        else:
            table = upgrade_truth(pq.read_table(path))
    except _READ_ERRORS as exc:
        raise InputError(f"--truth {path}: not a truth file ({exc})") from exc
    if "target" not in table.column_names:
        raise InputError(f"--truth {path}: not a truth file (no target column)")
    return _with_addresses(table)


def run_query(query: str, replies: pa.Table, truth: pa.Table | None = None) -> pa.Table:
    """``query``'s result (an empty table for a statement without one); InputError on SQL errors.

    Only the registered views are visible (no replacement scans of Python variables).
    """
    import duckdb

    connection = duckdb.connect(config={"python_enable_replacements": False})
    try:
        connection.register("replies", replies)
        if truth is not None:
            connection.register("truth", truth)
        relation = connection.sql(query)
        result: pa.Table = pa.table({}) if relation is None else relation.to_arrow_table()
        return result
    except duckdb.Error as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"sql: {message}") from None
    finally:
        connection.close()


def _printable(column: Any) -> pa.Array[Any]:
    """A result column as text: 16-byte blobs as IPv6 addresses, other blobs in hex."""
    array: Any = column.combine_chunks()
    if pa.types.is_binary(array.type) or pa.types.is_fixed_size_binary(array.type):
        lengths = pc.binary_length(array)
        if pc.all(pc.equal(lengths, pa.scalar(16, lengths.type))).as_py() is not False:
            return format_ipv6(array.cast(ADDR6))
        return pa.array([None if v is None else v.hex() for v in array.to_pylist()], pa.string())
    text: pa.Array[Any] = array if pa.types.is_string(array.type) else array.cast(pa.string())
    return text


def _jsonable(table: pa.Table) -> pa.Table:
    """Blobs as text, so every value is plain JSON."""
    for index, field in enumerate(table.schema):
        if pa.types.is_binary(field.type) or pa.types.is_fixed_size_binary(field.type):
            table = table.set_column(index, field.name, _printable(table.column(index)))
    return table


def format_table(table: pa.Table) -> str:
    """An aligned text table (nulls empty, long cells cut), with a row-count line."""
    if table.num_columns == 0:
        return "(no result)"
    cells: list[tuple[str, Any]] = []
    for index, name in enumerate(table.column_names):
        text: Any = pc.fill_null(_printable(table.column(index)), pa.scalar(""))
        long = pc.greater(pc.utf8_length(text), pa.scalar(_TEXT_CELLS, pa.int32()))
        text = pc.if_else(
            long,
            pc.binary_join_element_wise(pc.utf8_slice_codeunits(text, 0, _TEXT_CELLS - 1), "…", ""),
            text,
        )
        lengths: Any = pc.utf8_length(text)
        width = max(len(name), pc.max(lengths).as_py() or 0)
        numeric = pa.types.is_integer(table.schema.field(index).type) or pa.types.is_floating(
            table.schema.field(index).type
        )
        pad = pc.utf8_lpad if numeric else pc.utf8_rpad
        cells.append((name.rjust(width) if numeric else name.ljust(width), pad(text, width)))
    header = "  ".join(name for name, _ in cells).rstrip()
    rule = "  ".join("-" * len(name) for name, _ in cells)
    lines = [header, rule]
    if table.num_rows:
        joined: Any = pc.binary_join_element_wise(*[column for _, column in cells], "  ")
        lines.extend(pc.utf8_rtrim_whitespace(joined).to_pylist())
    rows = table.num_rows
    lines.append(f"({rows} row{'s' if rows != 1 else ''})")
    return "\n".join(lines)


@click.command(name="sql")
@click.argument("query")
@click.argument("files", nargs=-1, required=True)
@click.option("--truth", "truth_path", metavar="FILE", help="Ground truth as the view 'truth'.")
@click.option("--csv", "as_csv", is_flag=True, help="Write the result as CSV.")
@json_option
def command(
    query: str, files: tuple[str, ...], truth_path: str | None, as_csv: bool, as_json: bool
) -> None:
    """Run the DuckDB QUERY over reply FILES, seen as the view 'replies'.

    FILES are Parquet, CSV or JSON-lines reply files (a running or crashed scan's journal is
    read through its FILE), or ZMap output as FILE:PROBE. 'replies' has the reply record's
    columns (probe, target, responder, reply, icmp_type, icmp_code, attempt, app_valid, af,
    target6, ...) plus target_ip and responder_ip (text, either family) and file. Example:

    \b
      liveness sql "SELECT probe, count(DISTINCT target_ip) FROM replies GROUP BY 1" scan.parquet
    """
    if as_csv and as_json:
        raise InputError("--csv and --json: give one or the other")
    replies = read_reply_table(files)
    truth = read_truth(truth_path) if truth_path else None
    result = run_query(query, replies, truth)
    if as_json:
        table = _jsonable(result)
        rows = [list(row) for row in zip(*(c.to_pylist() for c in table.columns), strict=True)]
        emit_json({"columns": table.column_names, "rows": rows, "row_count": table.num_rows})
    elif as_csv:
        out = io.BytesIO()
        table = _jsonable(result)
        if table.num_columns:
            pcsv.write_csv(table, out, pcsv.WriteOptions(quoting_style="needed"))
        echo(out.getvalue().decode().rstrip("\n"))
    else:
        echo(format_table(result))
