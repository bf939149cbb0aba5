"""Writers and readers: round trips per format, ZMap-shaped text, bad files."""

from __future__ import annotations

import csv
import ipaddress
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet as pq
import pytest
from output_fixtures import address_text, random_replies, row_address, same_rows

from liveness.errors import InputError
from liveness.output import REPLY_SCHEMA, journal_path, open_writer, read_replies
from liveness.output.schema import ADDR6

SCANNER6 = ipaddress.IPv6Address("2001:2::1").packed

FORMATS = ("parquet", "csv", "jsonl")


def read_all(path: Path) -> pa.Table:
    batches = list(read_replies(str(path), batch_size=700))
    return pa.Table.from_batches(batches, schema=REPLY_SCHEMA)


@pytest.mark.parametrize("extension", FORMATS)
def test_round_trip_keeps_every_value(tmp_path: Path, extension: str) -> None:
    batch = random_replies(3000, seed=5)
    path = tmp_path / f"scan.{extension}"
    with open_writer(str(path)) as writer:
        writer.write(batch.slice(0, 1000))
        writer.flush()
        writer.write(pa.Table.from_batches([batch.slice(1000)]))
    assert writer.rows_written == 3000
    assert same_rows(read_all(path), pa.Table.from_batches([batch]))
    assert not os.path.exists(journal_path(str(path)))
    assert all(b.num_rows <= 700 for b in read_replies(str(path), batch_size=700))


def test_unknown_extension_is_parquet(tmp_path: Path) -> None:
    path = tmp_path / "scan.out"
    with open_writer(str(path)) as writer:
        writer.write(random_replies(10))
    assert pq.read_table(path).num_rows == 10


def test_csv_is_zmap_shaped(tmp_path: Path) -> None:
    batch = random_replies(500, seed=2)
    path = tmp_path / "scan.csv"
    fields = ["saddr", "daddr", "classification", "success", "repeat", "cooldown", "icmp_responder"]
    fields += ["target", "responder", "af", "target6", "responder6", "saddr_raw", "daddr_raw"]
    with open_writer(
        str(path), fields=fields, scanner_addr=0xC6120001, scanner_addr6=SCANNER6
    ) as writer:
        writer.write(batch)
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == fields
    assert len(rows) == 500
    for row, reply in zip(rows, batch.to_pylist(), strict=True):
        ipv6 = reply["af"] == 6
        target, responder = row_address(reply, "target"), row_address(reply, "responder")
        assert row["saddr"] == row["target"] == target
        assert row["responder"] == responder
        assert row["daddr"] == ("2001:2::1" if ipv6 else "198.18.0.1")
        assert row["success"] in ("0", "1")
        assert row["repeat"] == str(int(reply["repeat"]))
        assert row["icmp_responder"] == (responder if reply["icmp_type"] >= 0 else "")
        assert row["af"] == str(reply["af"])
        assert row["target6"] == (target if ipv6 else "")
        assert row["responder6"] == (responder if ipv6 else "")
        assert (row["saddr_raw"] == "") == (row["daddr_raw"] == "") == ipv6


def test_jsonl_is_one_object_a_line_with_escaped_strings(tmp_path: Path) -> None:
    batch = random_replies(300, seed=4)
    path = tmp_path / "scan.jsonl"
    with open_writer(str(path), fields=["saddr", "vp", "success", "icmp_unreach_str"]) as writer:
        writer.write(batch)
    lines = path.read_text().splitlines()
    assert len(lines) == 300
    objects = [json.loads(line) for line in lines]
    assert {o["vp"] for o in objects} == set(batch.column("vp").to_pylist())
    assert all(isinstance(o["success"], bool) for o in objects)
    replies = batch.to_pylist()
    assert [o["saddr"] for o in objects] == [row_address(r, "target") for r in replies]


def test_jsonl_addresses_of_both_families(tmp_path: Path) -> None:
    batch = random_replies(400, seed=14)
    path = tmp_path / "scan.jsonl"
    fields = ["target", "responder6", "daddr", "icmp_responder", "af"]
    with open_writer(str(path), fields=fields, scanner_addr6=SCANNER6) as writer:
        writer.write(batch)
    objects = [json.loads(line) for line in path.read_text().splitlines()]
    for got, reply in zip(objects, batch.to_pylist(), strict=True):
        ipv6 = reply["af"] == 6
        responder = row_address(reply, "responder")
        assert got["target"] == row_address(reply, "target")
        assert got["responder6"] == (address_text(reply["responder6"]) if ipv6 else None)
        assert got["daddr"] == ("2001:2::1" if ipv6 else "0.0.0.0")
        assert got["icmp_responder"] == (responder if reply["icmp_type"] >= 0 else None)
        assert got["af"] == reply["af"]


def test_parquet_with_zmap_fields_keeps_addresses_as_integers(tmp_path: Path) -> None:
    batch = random_replies(50)
    path = tmp_path / "scan.parquet"
    with open_writer(
        str(path), fields=["saddr", "classification"], output_filter="success = 0"
    ) as w:
        w.write(batch)
    table = pq.read_table(path)
    assert table.schema.field("saddr").type == pa.uint32()
    assert None in table.column("saddr").to_pylist()  # the IPv6 rows: null, never 0.0.0.0
    assert set(table.column("classification").to_pylist()) <= {
        "rst",
        "unreach",
        "timxceed",
        "redirect",
        "sourcequench",
        "paramprob",
        "other",
    }
    assert w.rows_written == table.num_rows > 0


def test_stdout_is_csv(capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    with open_writer("-", fields=["saddr", "success"]) as writer:
        writer.write(random_replies(3))
    out = capfdbinary.readouterr().out.decode().splitlines()
    assert out[0] == "saddr,success" and len(out) == 4


def test_text_readers_drop_a_torn_last_line(tmp_path: Path) -> None:
    batch = random_replies(100, seed=8)
    for extension in ("csv", "jsonl"):
        path = tmp_path / f"scan.{extension}"
        with open_writer(str(path)) as writer:
            writer.write(batch)
        data = path.read_bytes()
        path.write_bytes(data[:-10])
        assert same_rows(read_all(path), pa.Table.from_batches([batch.slice(0, 99)]))


def test_empty_scan_gives_a_valid_empty_file(tmp_path: Path) -> None:
    for extension in FORMATS:
        path = tmp_path / f"empty.{extension}"
        open_writer(str(path)).close()
        assert read_all(path).num_rows == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"ts,probe\n1,icmp_echo\n", r"missing column\(s\) target, responder"),
        (b"", r"missing column"),
    ],
)
def test_csv_without_reply_columns(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=rf"bad.csv: not a reply table: {message}"):
        read_replies(str(path))


def test_bad_values_name_file_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "scan.csv"
    with open_writer(str(path)) as writer:
        writer.write(random_replies(5))
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[3].split(",")
    cells[header.index("target")] = "10.0.0.999"
    lines[3] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"scan.csv: column 'target': row 3: not an IPv4 address"):
        read_all(path)


def test_damaged_parquet_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "scan.parquet"
    with open_writer(str(path)) as writer:
        writer.write(random_replies(2000))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(InputError, match=r"scan.parquet: not a readable Parquet file"):
        read_replies(str(path))
    with pytest.raises(InputError, match=r"nothing.csv: no such file"):
        read_replies(str(tmp_path / "nothing.csv"))
    with pytest.raises(InputError, match=r"nothing.parquet: no such file"):
        read_replies(str(tmp_path / "nothing.parquet"))
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1]}), other)
    with pytest.raises(InputError, match=r"other.parquet: not a reply table: missing column"):
        read_replies(str(other))


def test_bad_writer_arguments(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown field"):
        open_writer(str(tmp_path / "x.csv"), fields=["nope"])
    with pytest.raises(InputError, match="--output-filter"):
        open_writer(str(tmp_path / "x.csv"), output_filter="success ==")
    assert not (tmp_path / "x.csv").exists()


def test_resume_refuses_different_fields(tmp_path: Path) -> None:
    for extension in FORMATS:
        path = tmp_path / f"scan.{extension}"
        with open_writer(str(path), fields=["saddr", "ttl"]) as writer:
            writer.write(random_replies(5))
        if extension == "jsonl":
            continue  # JSON lines carry their names per line: nothing to check
        with pytest.raises(InputError, match="cannot resume"):
            open_writer(str(path), fields=["saddr"], resume=True)


def test_csv_with_integer_addresses_is_read(tmp_path: Path) -> None:
    batch = random_replies(20, seed=9)
    path = tmp_path / "scan.csv"
    table = pa.Table.from_batches([batch])
    plain = table.cast(
        pa.schema(
            [
                (f.name, pa.string() if pa.types.is_dictionary(f.type) else f.type)
                for f in table.schema
            ]
        )
    )
    for name in ("target6", "responder6"):  # as an export would: IPv6 as text
        texts = pa.array([address_text(v) for v in plain.column(name).to_pylist()], pa.string())
        plain = plain.set_column(plain.column_names.index(name), name, texts)
    pa.csv.write_csv(plain, path)
    assert "0," in path.read_text()  # the IPv6 rows' target: the integer 0
    assert same_rows(read_all(path), table)
    text = path.read_text().splitlines()
    text[1] = text[1].replace(str(batch.column("ts")[0].as_py()) + ",", "", 1)
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(InputError, match=r"scan.csv"):
        read_all(path)


@pytest.mark.parametrize("extension", FORMATS)
def test_reading_some_columns_needs_only_those(tmp_path: Path, extension: str) -> None:
    batch = random_replies(400, seed=12)
    path = tmp_path / f"part.{extension}"
    with open_writer(str(path), fields=["target", "reply", "ttl"]) as writer:
        writer.write(batch)
    batches = list(read_replies(str(path), columns=["reply", "target"], batch_size=150))
    table = pa.Table.from_batches(batches)
    assert table.column_names == ["target", "reply"]  # the reply record's order
    assert table.schema.field("target").type == pa.uint32()
    assert table.column("target").to_pylist() == batch.column("target").to_pylist()
    assert table.column("reply").to_pylist() == batch.column("reply").to_pylist()
    with pytest.raises(InputError, match=r"missing column\(s\) probe"):
        read_replies(str(path), columns=["probe"])


def test_parquet_keeps_both_families_in_typed_columns(tmp_path: Path) -> None:
    batch = random_replies(600, seed=15)
    path = tmp_path / "scan.parquet"
    fields = ["saddr", "target6", "af", "daddr", "icmp_responder", "responder6"]
    with open_writer(str(path), fields=fields, scanner_addr=7, scanner_addr6=SCANNER6) as w:
        w.write(batch)
    table = pq.read_table(path)
    types = dict(zip(table.column_names, table.schema.types, strict=True))
    assert types == {
        "saddr": pa.uint32(),
        "target6": ADDR6,
        "af": pa.uint8(),
        "daddr": pa.uint32(),
        "icmp_responder": pa.uint32(),
        "responder6": ADDR6,
    }
    for row, reply in zip(table.to_pylist(), batch.to_pylist(), strict=True):
        ipv6 = reply["af"] == 6
        assert row["saddr"] == (None if ipv6 else reply["target"])
        assert row["target6"] == reply["target6"] and row["responder6"] == reply["responder6"]
        assert row["daddr"] == (None if ipv6 else 7)


def test_default_parquet_stores_ipv6_rows_ipv4_columns_as_null(tmp_path: Path) -> None:
    """A query on the file cannot take an IPv6 row for 0.0.0.0; the reader gives 0 back."""
    batch = random_replies(300, seed=16)
    path = tmp_path / "scan.parquet"
    with open_writer(str(path)) as writer:
        writer.write(batch)
    table = pq.read_table(path)
    af = table.column("af").to_pylist()
    assert [t is None for t in table.column("target").to_pylist()] == [a == 6 for a in af]
    assert [t is None for t in table.column("responder").to_pylist()] == [a == 6 for a in af]
    assert same_rows(read_all(path), pa.Table.from_batches([batch]))


V1_SCHEMA = pa.schema(
    [field for field in REPLY_SCHEMA if field.name not in ("af", "target6", "responder6")],
    metadata={"liveness.schema": "reply/1"},
)


def write_v1(batch: pa.RecordBatch, path: Path) -> None:
    """Write IPv4 replies as the output layer did before IPv6 (schema reply/1)."""
    table = pa.Table.from_batches([batch]).select(V1_SCHEMA.names).cast(V1_SCHEMA)
    plain = table.cast(
        pa.schema(
            [(f.name, pa.string() if pa.types.is_dictionary(f.type) else f.type) for f in V1_SCHEMA]
        )
    )
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    elif path.suffix == ".csv":  # as the reply/1 CSV writer: addresses dotted, booleans 0/1
        columns = {
            name: [str(ipaddress.IPv4Address(v)) for v in plain.column(name).to_pylist()]
            if name in ("target", "responder")
            else plain.column(name).cast(pa.uint8())
            if pa.types.is_boolean(plain.schema.field(name).type)
            else plain.column(name)
            for name in plain.column_names
        }
        pa.csv.write_csv(pa.table(columns), path)
    else:
        with open(path, "w") as handle:
            for row in plain.to_pylist():
                row["target"] = str(ipaddress.IPv4Address(row["target"]))
                row["responder"] = str(ipaddress.IPv4Address(row["responder"]))
                handle.write(json.dumps(row) + "\n")


@pytest.mark.parametrize("extension", FORMATS)
def test_reply_v1_files_read_as_ipv4_rows(tmp_path: Path, extension: str) -> None:
    batch = random_replies(800, seed=17, ipv6_share=0.0)
    path = tmp_path / f"old.{extension}"
    write_v1(batch, path)
    if extension == "parquet":
        assert pq.read_schema(path).metadata[b"liveness.schema"] == b"reply/1"
        assert "af" not in pq.read_schema(path).names
    table = read_all(path)
    assert table.schema.equals(REPLY_SCHEMA)
    assert set(table.column("af").to_pylist()) == {4}
    assert table.column("target6").null_count == table.column("responder6").null_count == 800
    assert same_rows(table, pa.Table.from_batches([batch]))
    some = pa.Table.from_batches(list(read_replies(str(path), columns=["probe", "af", "target6"])))
    assert some.column_names == ["probe", "af", "target6"]
    assert set(some.column("af").to_pylist()) == {4} and some.column("target6").null_count == 800


@pytest.mark.parametrize("extension", ["csv", "jsonl"])
def test_text_with_only_the_either_family_columns_reads_both(
    tmp_path: Path, extension: str
) -> None:
    """``-f target,responder,...`` in text holds IPv6 rows' addresses as text: read back whole."""
    batch = random_replies(500, seed=18)
    path = tmp_path / f"part.{extension}"
    with open_writer(str(path), fields=["target", "responder", "reply"]) as writer:
        writer.write(batch)
    names = ["target", "responder", "reply", "af", "target6", "responder6"]
    table = pa.Table.from_batches(list(read_replies(str(path), columns=names)))
    for name in names:
        assert table.column(name).to_pylist() == batch.column(name).to_pylist(), name


def test_bad_ipv6_values_name_file_row_and_column(tmp_path: Path) -> None:
    batch = random_replies(40, seed=19)
    path = tmp_path / "scan.csv"
    with open_writer(str(path)) as writer:
        writer.write(batch)
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    row = next(i for i, r in enumerate(batch.to_pylist()) if r["af"] == 6)
    cells = lines[row + 1].split(",")
    cells[header.index("target6")] = "2001:db8::g"
    lines[row + 1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        InputError, match=rf"scan.csv: column 'target6': row {row + 1}: not an IPv6 address"
    ):
        read_all(path)
    cells[header.index("target6")] = cells[header.index("target")]
    cells[header.index("af")] = "5"
    lines[row + 1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=rf"scan.csv: row {row + 1}: column 'af' is 5"):
        read_all(path)


@pytest.mark.parametrize("path", ["-", "/dev/null"])
def test_a_stream_writer_removes_its_private_scratch_directory(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfdbinary: pytest.CaptureFixture[bytes],
    path: str,
) -> None:
    """A writer that resolved a stream destination itself (``decode -o -``) leaves no
    ``liveness-scan-*`` directory behind once closed."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    writer = open_writer(path)
    writer.write(random_replies(50, seed=2))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("liveness-scan-")]
    writer.close()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("liveness-scan-")]
