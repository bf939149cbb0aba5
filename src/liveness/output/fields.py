"""Output fields: the reply record's own columns plus ZMap's field names, derived per batch.

A writer or a filter asks for fields by name; :func:`derive` computes them from a batch of
reply records (:data:`~liveness.output.schema.REPLY_SCHEMA`) with Arrow kernels. Every field has
a *kind* that fixes how it is stored and shown:

- ``addr`` (``target``, ``responder``, ``saddr``, ``daddr``, ``icmp_responder``): an address
  of either family. In CSV and JSON it is text: IPv4 dotted, IPv6 in RFC 5952 form
  (``2001:2::1``). In Parquet (and from :func:`derive` without ``text``) it is the IPv4
  address as uint32, **null on IPv6 rows**, never 0: a mixed scan's Parquet file keeps one
  column type per field, and an IPv4 tool reading ``saddr`` or ``target`` (an IP set, a DuckDB
  query) must not see IPv6 rows as 0.0.0.0 (``read_replies`` turns the nulls of ``target``
  and ``responder`` back into the record's 0). The IPv6 addresses are in ``target6`` and
  ``responder6``, which the default field list includes: ask ``-f saddr,target6`` for both
  families in Parquet. (A string ``saddr`` only when the scan has IPv6 rows would make the
  column's type depend on the data, and the Parquet schema is fixed before the first reply.)
- ``addr6`` (``target6``, ``responder6``): an IPv6 address, null on IPv4 rows: ``binary(16)``
  in network byte order in Parquet, RFC 5952 text in CSV and JSON.
- ``bool``: bool in Parquet, ``0``/``1`` in CSV (as ZMap), ``true``/``false`` in JSON.
- ``int`` and ``str``: the same everywhere (strings may be dictionary-encoded); ``af`` is int.
- ``bytes`` (``banner``): binary in Parquet, lowercase hex in CSV, and in JSON a string holding
  one character per byte (U+0000..U+00FF, printable ASCII as itself, JSON-escaped otherwise), so
  a banner reads as text and converts back exactly.

The default field list is the reply record without the application columns (``app_active``,
``app_proto``, ``banner``), which a ``--app-layer`` scan adds; a batch without them (an older
file) derives them as False, ``""`` and null.

ZMap's names and their meaning here: ``saddr`` = target (the probed address, as ZMap rewrites
``saddr`` to the quoted destination for ICMP errors), ``daddr`` = the scanner's address
(:attr:`FieldContext.scanner_addr`, or :attr:`FieldContext.scanner_addr6` on IPv6 rows; null there
when it is not known), ``saddr_raw``/``daddr_raw`` = the IPv4 address in network byte order as an
integer, null on IPv6 rows (ZMap has no such field for IPv6, and 128 bits do not fit an integer
column), ``classification`` = ZMap's string for the reply category, ``success`` = 1 for positive
replies (synack, echoreply, udp, timestampreply, and the application layer's data and ack) and 0 for
rst and ICMP errors (as ZMap's modules), ``cooldown`` = received after the last probe was sent,
``timestamp_str`` = ISO 8601 with milliseconds (``%Y-%m-%dT%H:%M:%S.mmm+0000``),
``timestamp_ts``/``timestamp_us`` = seconds and the microseconds within them, ``icmp_responder`` =
the ICMP (or ICMPv6) error's source (null for non-ICMP replies) and ``icmp_unreach_str`` = the text
for a destination unreachable's code: ZMap's for ICMP type 3 on IPv4 rows, RFC 4443's for ICMPv6
type 1 on IPv6 rows (``icmp_type`` of an IPv6 row is the ICMPv6 type), null for other replies.

A batch without the ``af`` column (made before IPv6, schema ``reply/1``) is all IPv4.
Converting IPv6 addresses to text is vectorised (:func:`~liveness.output.addresses.format_ipv6`)
and done once per address column and batch: ``saddr``, ``target`` and ``target6`` share one
conversion, ``responder6`` converts only the rows whose responder is not the target, and the
scanner's address is converted once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from liveness.errors import InputError
from liveness.output.addresses import format_dotted, format_ipv6, join_strings
from liveness.output.schema import ADDR6, APP_COLUMNS, APP_DEFAULTS, BASE_COLUMNS, REPLY_COLUMNS

__all__ = [
    "ALL_FIELDS",
    "FIELD_KINDS",
    "ZMAP_CLASSIFICATION",
    "ZMAP_FIELDS",
    "FieldContext",
    "address6",
    "derive",
    "resolve_fields",
    "source_columns",
]


@dataclass
class FieldContext:
    """What derived fields need beyond the batch: the scanner's addresses, the cooldown start.

    ``scanner_addr`` is the IPv4 address (uint32, host order) and ``scanner_addr6`` the IPv6
    address (16 bytes, network order; None when the scan has no IPv6 source address).
    """

    scanner_addr: int = 0
    cooldown_start_ns: int | None = None
    scanner_addr6: bytes | None = None

    def __post_init__(self) -> None:
        if self.scanner_addr6 is not None and len(self.scanner_addr6) != 16:
            raise ValueError(f"scanner_addr6 must be 16 bytes, not {len(self.scanner_addr6)}")


Deriver = Callable[[pa.RecordBatch, FieldContext], "pa.Array[Any]"]

ZMAP_CLASSIFICATION: dict[str, str] = {
    "echo_reply": "echoreply",
    "synack": "synack",
    "rst": "rst",
    "udp": "udp",
    "icmp_unreach": "unreach",
    "icmp_time_exceeded": "timxceed",
    "icmp_redirect": "redirect",
    "icmp_source_quench": "sourcequench",
    "icmp_param_problem": "paramprob",
    "icmp_other": "other",
    "timestamp_reply": "timestampreply",
    "app_data": "data",
    "app_ack": "ack",
    "app_rst": "rst",
}
_SUCCESS_CATEGORIES = ("synack", "echo_reply", "udp", "timestamp_reply", "app_data", "app_ack")

# ZMap's text for ICMP destination-unreachable codes 0..15 (spelling as ZMap prints it).
_UNREACH_STRINGS = (
    "network unreachable",
    "host unreachable",
    "protocol unreachable",
    "port unreachable",
    "fragments required",
    "source route failed",
    "network unknown",
    "host unknown",
    "source host isolated",
    "network admin. prohibited",
    "host admin. prohibited",
    "network unreachable TOS",
    "host unreachable TOS",
    "communication admin. prohibited",
    "host presdence violation",
    "precedence cutoff",
)
# ICMPv6 destination-unreachable codes 0..8 (RFC 4443 section 3.1; 7 RFC 6550, 8 RFC 8883).
_UNREACH6_STRINGS = (
    "no route to destination",
    "communication admin. prohibited",
    "beyond scope of source address",
    "address unreachable",
    "port unreachable",
    "source address failed ingress/egress policy",
    "reject route to destination",
    "error in source routing header",
    "headers too long",
)
_ICMP_UNREACH = 3
_ICMP6_UNREACH = 1
_NO_ADDR = pa.scalar(None, pa.uint32())
_NO_ADDR6 = pa.scalar(None, ADDR6)


def _array(value: Any) -> pa.Array[Any]:
    """Narrow a compute kernel's result (typed loosely by the stubs) to an array."""
    assert isinstance(value, pa.Array)
    return value


def _column(name: str) -> Deriver:
    return lambda batch, _ctx: batch.column(name)


def _is6(batch: pa.RecordBatch) -> pa.Array[Any] | None:
    """Where the rows are IPv6 (``af = 6``); None for a batch without ``af`` (all IPv4)."""
    if "af" not in batch.schema.names:
        return None
    return _array(pc.equal(batch.column("af"), pa.scalar(6, pa.uint8())))


def _ipv4_only(batch: pa.RecordBatch, values: pa.Array[Any]) -> pa.Array[Any]:
    """``values`` with the IPv6 rows null."""
    is6 = _is6(batch)
    if is6 is None or not pc.any(is6).as_py():
        return values
    return _array(pc.if_else(is6, pa.scalar(None, values.type), values))


def _ipv6_only(batch: pa.RecordBatch, name: str) -> pa.Array[Any]:
    """The IPv6 column ``name`` with the IPv4 rows null (all null without ``af``)."""
    is6 = _is6(batch)
    if is6 is None or name not in batch.schema.names:
        return pa.nulls(batch.num_rows, ADDR6)
    values = batch.column(name).cast(ADDR6)
    if pc.all(is6).as_py():
        return values
    return _array(pc.if_else(is6, values, _NO_ADDR6))


def _family(batch: pa.RecordBatch, _ctx: FieldContext) -> pa.Array[Any]:
    if "af" in batch.schema.names:
        return batch.column("af")
    return pa.array(np.full(batch.num_rows, 4, dtype=np.uint8))


def _is_icmp(batch: pa.RecordBatch) -> pa.Array[Any]:
    return _array(pc.greater_equal(batch.column("icmp_type"), pa.scalar(0, pa.int16())))


# The two parts of each ``addr`` field: the IPv4 address (uint32, null on IPv6 rows) and the
# IPv6 address (binary(16), null on IPv4 rows).
def _target4(batch: pa.RecordBatch, _ctx: FieldContext) -> pa.Array[Any]:
    return _ipv4_only(batch, batch.column("target"))


def _responder4(batch: pa.RecordBatch, _ctx: FieldContext) -> pa.Array[Any]:
    return _ipv4_only(batch, batch.column("responder"))


def _scanner4(batch: pa.RecordBatch, ctx: FieldContext) -> pa.Array[Any]:
    return _ipv4_only(batch, pa.array(np.full(batch.num_rows, ctx.scanner_addr, dtype=np.uint32)))


def _icmp_responder4(batch: pa.RecordBatch, ctx: FieldContext) -> pa.Array[Any]:
    return _array(pc.if_else(_is_icmp(batch), _responder4(batch, ctx), _NO_ADDR))


def _target6(batch: pa.RecordBatch, _ctx: FieldContext) -> pa.Array[Any]:
    return _ipv6_only(batch, "target6")


def _responder6(batch: pa.RecordBatch, _ctx: FieldContext) -> pa.Array[Any]:
    return _ipv6_only(batch, "responder6")


def _scanner6(batch: pa.RecordBatch, ctx: FieldContext) -> pa.Array[Any]:
    is6 = _is6(batch)
    if is6 is None or ctx.scanner_addr6 is None:
        return pa.nulls(batch.num_rows, ADDR6)
    return _array(pc.if_else(is6, pa.scalar(ctx.scanner_addr6, ADDR6), _NO_ADDR6))


def _icmp_responder6(batch: pa.RecordBatch, ctx: FieldContext) -> pa.Array[Any]:
    return _array(pc.if_else(_is_icmp(batch), _responder6(batch, ctx), _NO_ADDR6))


# Field -> (its IPv4 part, its IPv6 part, the key naming its IPv6 text in a derive call's cache).
_ADDRESS_PARTS: dict[str, tuple[Deriver | None, Deriver, str]] = {
    "target": (_target4, _target6, "target"),
    "saddr": (_target4, _target6, "target"),
    "target6": (None, _target6, "target"),
    "responder": (_responder4, _responder6, "responder"),
    "responder6": (None, _responder6, "responder"),
    "daddr": (_scanner4, _scanner6, "scanner"),
    "icmp_responder": (_icmp_responder4, _icmp_responder6, "icmp_responder"),
}


def address6(batch: pa.RecordBatch, name: str, ctx: FieldContext) -> pa.Array[Any]:
    """The IPv6 part of the address field ``name`` (``binary(16)``, null on IPv4 rows)."""
    return _ADDRESS_PARTS[name][1](batch, ctx)


class _Texts:
    """The text of address fields within one :func:`derive` call, each conversion done once."""

    def __init__(self, batch: pa.RecordBatch, ctx: FieldContext) -> None:
        self.batch = batch
        self.ctx = ctx
        self._ipv6: dict[str, pa.Array[Any]] = {}

    def field(self, name: str) -> pa.Array[Any]:
        """The field's text: IPv4 dotted, else IPv6 in RFC 5952 form, else null."""
        part4, _, key = _ADDRESS_PARTS[name]
        text6 = self.ipv6(key)
        if part4 is None:
            return text6
        text4 = format_dotted(part4(self.batch, self.ctx))
        if text6.null_count == len(text6):
            return text4
        return _array(pc.coalesce(text4, text6))

    def ipv6(self, key: str) -> pa.Array[Any]:
        if key not in self._ipv6:
            self._ipv6[key] = self._convert(key)
        return self._ipv6[key]

    def _convert(self, key: str) -> pa.Array[Any]:
        batch, ctx = self.batch, self.ctx
        if key == "target":
            values = _target6(batch, ctx)
            return format_ipv6(values) if values.null_count < len(values) else _null_text(values)
        if key == "responder":  # mostly the target: convert only the other rows
            values = _responder6(batch, ctx)
            if values.null_count == len(values):
                return _null_text(values)
            same = _array(pc.fill_null(pc.equal(values, _target6(batch, ctx)), pa.scalar(False)))
            others = format_ipv6(_array(pc.if_else(same, _NO_ADDR6, values)))
            return _array(pc.if_else(same, self.ipv6("target"), others))
        if key == "scanner":
            is6 = _is6(batch)
            if is6 is None or ctx.scanner_addr6 is None:
                return pa.nulls(batch.num_rows, pa.string())
            text = format_ipv6(pa.array([ctx.scanner_addr6], ADDR6))[0]
            return _array(pc.if_else(is6, text, pa.scalar(None, pa.string())))
        assert key == "icmp_responder"
        return _array(
            pc.if_else(_is_icmp(batch), self.ipv6("responder"), pa.scalar(None, pa.string()))
        )


def _null_text(values: pa.Array[Any]) -> pa.Array[Any]:
    return pa.nulls(len(values), pa.string())


def _byteswap(part4: Deriver) -> Deriver:
    def derive_raw(batch: pa.RecordBatch, ctx: FieldContext) -> pa.Array[Any]:
        host = part4(batch, ctx)
        values = host.fill_null(0).to_numpy().astype(np.uint32)
        swapped = pa.array(values.byteswap().astype(np.int64))
        return _array(pc.if_else(host.is_valid(), swapped, pa.scalar(None, pa.int64())))

    return derive_raw


def _classification(batch: pa.RecordBatch, _ctx: FieldContext) -> pa.Array[Any]:
    reply = batch.column("reply")
    if isinstance(reply, pa.DictionaryArray):
        categories = [str(v) for v in reply.dictionary.to_pylist()]
        mapped = [ZMAP_CLASSIFICATION.get(v, "other") for v in categories]
        return pa.DictionaryArray.from_arrays(reply.indices, pa.array(mapped, pa.string()))
    values = pa.array(list(ZMAP_CLASSIFICATION.values()), pa.string())
    index = _array(pc.index_in(reply, value_set=pa.array(list(ZMAP_CLASSIFICATION), pa.string())))
    return _array(pc.take(values, index.fill_null(len(values) - 1).cast(pa.int32())))


def _success(batch: pa.RecordBatch, _ctx: FieldContext) -> pa.Array[Any]:
    reply = batch.column("reply")
    return _array(pc.is_in(reply, value_set=pa.array(_SUCCESS_CATEGORIES, pa.string())))


def _cooldown(batch: pa.RecordBatch, ctx: FieldContext) -> pa.Array[Any]:
    if ctx.cooldown_start_ns is None:
        return pa.array(np.zeros(batch.num_rows, dtype=bool))
    start = pa.scalar(ctx.cooldown_start_ns, pa.int64())
    return _array(pc.greater_equal(batch.column("ts"), start))


def _timestamp_ts(batch: pa.RecordBatch, _ctx: FieldContext) -> pa.Array[Any]:
    return _array(pa.array(batch.column("ts").to_numpy() // 1_000_000_000))


def _timestamp_us(batch: pa.RecordBatch, _ctx: FieldContext) -> pa.Array[Any]:
    return _array(pa.array(batch.column("ts").to_numpy() % 1_000_000_000 // 1_000))


def _timestamp_str(batch: pa.RecordBatch, _ctx: FieldContext) -> pa.Array[Any]:
    ts = batch.column("ts").to_numpy()
    seconds = pa.array(ts // 1_000_000_000).cast(pa.timestamp("s", tz="UTC"))
    millis = pa.array(ts % 1_000_000_000 // 1_000_000).cast(pa.string())
    with_millis = join_strings(
        [pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%S"), pc.utf8_lpad(millis, 3, "0")], "."
    )
    return join_strings([with_millis, "+0000"], "").cast(pa.string())


def _icmp_unreach_str(batch: pa.RecordBatch, _ctx: FieldContext) -> pa.Array[Any]:
    codes = batch.column("icmp_code").to_numpy().astype(np.int64)
    types = batch.column("icmp_type").to_numpy()
    is6 = _is6(batch)
    ipv6 = (
        np.zeros(batch.num_rows, dtype=bool) if is6 is None else is6.to_numpy(zero_copy_only=False)
    )
    texts = (*_UNREACH_STRINGS, *_UNREACH6_STRINGS, "unknown")
    base = np.where(ipv6, len(_UNREACH_STRINGS), 0)
    known = np.where(ipv6, len(_UNREACH6_STRINGS), len(_UNREACH_STRINGS))
    index = np.where((codes >= 0) & (codes < known), base + codes, len(texts) - 1)
    is_unreach = np.where(ipv6, types == _ICMP6_UNREACH, types == _ICMP_UNREACH)
    return pa.array(texts, pa.string()).take(pa.array(index, type=pa.int64(), mask=~is_unreach))


_REPLY_KINDS: dict[str, str] = {
    "target": "addr",
    "responder": "addr",
    "target6": "addr6",
    "responder6": "addr6",
    "probe": "str",
    "reply": "str",
    "vp": "str",
    "repeat": "bool",
    "app_valid": "bool",
    "app_active": "bool",
    "app_proto": "str",
    "banner": "bytes",
}


def _app_column(name: str) -> Deriver:
    """An application column, or its default where the batch has none (an older file)."""

    def derive_app(batch: pa.RecordBatch, _ctx: FieldContext) -> pa.Array[Any]:
        if name in batch.schema.names:
            return batch.column(name)
        return _array(pa.repeat(APP_DEFAULTS[name], batch.num_rows))

    return derive_app


_DERIVERS: dict[str, tuple[str, Deriver]] = {
    name: (_REPLY_KINDS.get(name, "int"), _column(name)) for name in REPLY_COLUMNS
}
_DERIVERS.update({name: (_REPLY_KINDS[name], _app_column(name)) for name in APP_COLUMNS})
_ZMAP_ONLY: dict[str, tuple[str, Deriver]] = {
    "saddr": ("addr", _target4),
    "saddr_raw": ("int", _byteswap(_target4)),
    "daddr": ("addr", _scanner4),
    "daddr_raw": ("int", _byteswap(_scanner4)),
    "classification": ("str", _classification),
    "success": ("bool", _success),
    "cooldown": ("bool", _cooldown),
    "timestamp_str": ("str", _timestamp_str),
    "timestamp_ts": ("int", _timestamp_ts),
    "timestamp_us": ("int", _timestamp_us),
    "icmp_responder": ("addr", _icmp_responder4),
    "icmp_unreach_str": ("str", _icmp_unreach_str),
}
_DERIVERS.update(_ZMAP_ONLY)
_DERIVERS.update(
    {
        "af": ("int", _family),
        "target": ("addr", _target4),
        "responder": ("addr", _responder4),
        "target6": ("addr6", _target6),
        "responder6": ("addr6", _responder6),
    }
)

ZMAP_FIELDS: tuple[str, ...] = (
    "saddr",
    "saddr_raw",
    "daddr",
    "daddr_raw",
    "ipid",
    "ttl",
    "sport",
    "dport",
    "classification",
    "success",
    "repeat",
    "cooldown",
    "timestamp_str",
    "timestamp_ts",
    "timestamp_us",
    "icmp_responder",
    "icmp_type",
    "icmp_code",
    "icmp_unreach_str",
)
"""ZMap's output field names that liveness can produce."""

ALL_FIELDS: tuple[str, ...] = (*REPLY_COLUMNS, *_ZMAP_ONLY)
"""Every field name a writer or filter accepts: the reply columns, then ZMap-only names."""

FIELD_KINDS: dict[str, str] = {name: kind for name, (kind, _) in _DERIVERS.items()}
"""Field name -> ``addr``, ``addr6``, ``bool``, ``bytes``, ``int`` or ``str``."""


def resolve_fields(fields: Sequence[str] | None, flag: str = "--output-fields") -> tuple[str, ...]:
    """The field names to write, in order, from a user's list.

    ``None`` means the reply record's columns without the application ones
    (:data:`~liveness.output.schema.BASE_COLUMNS`); items may hold several comma-separated
    names; ``*`` means every field. Unknown names raise :class:`InputError` listing the valid
    ones.
    """
    if fields is None:
        return BASE_COLUMNS
    names: list[str] = []
    for item in fields:
        for name in (part.strip() for part in item.split(",")):
            if not name:
                continue
            expanded: Iterable[str] = ALL_FIELDS if name == "*" else (name,)
            for one in expanded:
                if one not in FIELD_KINDS:
                    raise InputError(
                        f"{flag}: unknown field {one!r}; valid fields: {', '.join(ALL_FIELDS)}"
                    )
                if one not in names:
                    names.append(one)
    if not names:
        raise InputError(f"{flag}: no fields given")
    return tuple(names)


# Columns a batch may lack: those that came with IPv6 (schema reply/2; without them it is all
# IPv4) and the application columns (reply/3; without them their defaults).
_OPTIONAL = frozenset({"af", "target6", "responder6", *APP_COLUMNS})
_FAMILY = ("af",)
_SOURCES: dict[str, tuple[str, ...]] = {name: (name,) for name in REPLY_COLUMNS}
_SOURCES.update(
    {
        "target": ("target", "af", "target6"),
        "responder": ("responder", "af", "target6", "responder6"),
        "target6": ("af", "target6"),
        "responder6": ("af", "target6", "responder6"),
        "saddr": ("target", "af", "target6"),
        "saddr_raw": ("target", *_FAMILY),
        "daddr": _FAMILY,
        "daddr_raw": _FAMILY,
        "classification": ("reply",),
        "success": ("reply",),
        "cooldown": ("ts",),
        "timestamp_str": ("ts",),
        "timestamp_ts": ("ts",),
        "timestamp_us": ("ts",),
        "icmp_responder": ("icmp_type", "responder", "af", "target6", "responder6"),
        "icmp_unreach_str": ("icmp_type", "icmp_code", *_FAMILY),
    }
)


def source_columns(names: Iterable[str]) -> tuple[str, ...]:
    """The reply columns needed to derive the named fields (to read only those)."""
    needed = {column for name in names for column in _SOURCES[name]}
    return tuple(column for column in REPLY_COLUMNS if column in needed)


def derive(
    batch: pa.RecordBatch, names: Iterable[str], ctx: FieldContext, *, text: bool = False
) -> pa.RecordBatch:
    """A batch holding the named fields computed from a reply batch (kinds as documented).

    With ``text``, ``addr`` and ``addr6`` fields come as strings (IPv4 dotted, IPv6 RFC 5952),
    as text outputs show them; otherwise as stored in Parquet (uint32 IPv4 / ``binary(16)``).
    The batch needs only the reply columns the fields are made from (:func:`source_columns`);
    without ``af``, ``target6`` and ``responder6`` its rows are IPv4.
    """
    wanted = list(dict.fromkeys(names))
    present = set(batch.schema.names)
    missing = [c for c in source_columns(wanted) if c not in present and c not in _OPTIONAL]
    if missing:
        raise ValueError(f"reply batch lacks columns {missing}")
    texts = _Texts(batch, ctx) if text else None
    arrays = [
        texts.field(name)
        if texts is not None and name in _ADDRESS_PARTS
        else _DERIVERS[name][1](batch, ctx)
        for name in wanted
    ]
    return pa.RecordBatch.from_arrays(arrays, names=wanted)
