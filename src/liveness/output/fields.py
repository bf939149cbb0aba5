"""Output fields: the reply record's own columns plus ZMap's field names, derived per batch.

A writer or a filter asks for fields by name; :func:`derive` computes them from a batch of
reply records (:data:`~liveness.output.schema.REPLY_SCHEMA`) with Arrow kernels. Every field has
a *kind* that fixes how it is stored and shown:

- ``addr``: uint32 in Parquet, dotted string in CSV and JSON.
- ``bool``: bool in Parquet, ``0``/``1`` in CSV (as ZMap), ``true``/``false`` in JSON.
- ``int`` and ``str``: the same everywhere (strings may be dictionary-encoded).

ZMap's names and their meaning here: ``saddr`` = target (the probed address, as ZMap rewrites
``saddr`` to the quoted destination for ICMP errors), ``daddr`` = the scanner's address,
``*_raw`` = the same in network byte order, ``classification`` = ZMap's string for the reply
category, ``success`` = 1 for positive replies (synack, echoreply, udp, timestampreply) and 0
for rst and ICMP errors (as ZMap's modules), ``cooldown`` = received after the last probe was sent,
``timestamp_str`` = ISO 8601 with milliseconds (``%Y-%m-%dT%H:%M:%S.mmm+0000``),
``timestamp_ts``/``timestamp_us`` = seconds and the microseconds within them,
``icmp_responder`` = the ICMP error's source (null for non-ICMP replies) and
``icmp_unreach_str`` = ZMap's text for an unreachable's code (null for other replies).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from liveness.errors import InputError
from liveness.output.addresses import join_strings
from liveness.output.schema import REPLY_COLUMNS

__all__ = [
    "ALL_FIELDS",
    "FIELD_KINDS",
    "ZMAP_CLASSIFICATION",
    "ZMAP_FIELDS",
    "FieldContext",
    "derive",
    "resolve_fields",
    "source_columns",
]


@dataclass
class FieldContext:
    """What derived fields need beyond the batch: the scanner's address, the cooldown start."""

    scanner_addr: int = 0
    cooldown_start_ns: int | None = None


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
}
_SUCCESS_CATEGORIES = ("synack", "echo_reply", "udp", "timestamp_reply")

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
_ICMP_UNREACH = 3


def _array(value: Any) -> pa.Array[Any]:
    """Narrow a compute kernel's result (typed loosely by the stubs) to an array."""
    assert isinstance(value, pa.Array)
    return value


def _column(name: str) -> Deriver:
    return lambda batch, _ctx: batch.column(name)


def _constant_addr(batch: pa.RecordBatch, ctx: FieldContext) -> pa.Array[Any]:
    return pa.array(np.full(batch.num_rows, ctx.scanner_addr, dtype=np.uint32))


def _byteswap(name: str) -> Deriver:
    def derive_raw(batch: pa.RecordBatch, ctx: FieldContext) -> pa.Array[Any]:
        if name == "daddr":
            host = np.full(batch.num_rows, ctx.scanner_addr, dtype=np.uint32)
        else:
            host = batch.column(name).to_numpy().astype(np.uint32)
        return pa.array(host.byteswap().astype(np.int64))

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


def _is_icmp(batch: pa.RecordBatch) -> pa.Array[Any]:
    return _array(pc.greater_equal(batch.column("icmp_type"), pa.scalar(0, pa.int16())))


def _icmp_responder(batch: pa.RecordBatch, _ctx: FieldContext) -> pa.Array[Any]:
    no_address = pa.scalar(None, pa.uint32())
    return _array(pc.if_else(_is_icmp(batch), batch.column("responder"), no_address))


def _icmp_unreach_str(batch: pa.RecordBatch, _ctx: FieldContext) -> pa.Array[Any]:
    codes = batch.column("icmp_code").to_numpy().astype(np.int64)
    index = np.where((codes >= 0) & (codes < len(_UNREACH_STRINGS)), codes, len(_UNREACH_STRINGS))
    texts = pa.array([*_UNREACH_STRINGS, "unknown"], pa.string()).take(index)
    is_unreach = pc.equal(batch.column("icmp_type"), pa.scalar(_ICMP_UNREACH, pa.int16()))
    return _array(pc.if_else(is_unreach, texts, pa.scalar(None, pa.string())))


_REPLY_KINDS: dict[str, str] = {
    "target": "addr",
    "responder": "addr",
    "probe": "str",
    "reply": "str",
    "vp": "str",
    "repeat": "bool",
    "app_valid": "bool",
}

_DERIVERS: dict[str, tuple[str, Deriver]] = {
    name: (_REPLY_KINDS.get(name, "int"), _column(name)) for name in REPLY_COLUMNS
}
_ZMAP_ONLY: dict[str, tuple[str, Deriver]] = {
    "saddr": ("addr", _column("target")),
    "saddr_raw": ("int", _byteswap("target")),
    "daddr": ("addr", _constant_addr),
    "daddr_raw": ("int", _byteswap("daddr")),
    "classification": ("str", _classification),
    "success": ("bool", _success),
    "cooldown": ("bool", _cooldown),
    "timestamp_str": ("str", _timestamp_str),
    "timestamp_ts": ("int", _timestamp_ts),
    "timestamp_us": ("int", _timestamp_us),
    "icmp_responder": ("addr", _icmp_responder),
    "icmp_unreach_str": ("str", _icmp_unreach_str),
}
_DERIVERS.update(_ZMAP_ONLY)

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
"""Field name -> ``addr``, ``bool``, ``int`` or ``str``."""


def resolve_fields(fields: Sequence[str] | None, flag: str = "--output-fields") -> tuple[str, ...]:
    """The field names to write, in order, from a user's list.

    ``None`` means the reply record's columns; items may hold several comma-separated names;
    ``*`` means every field. Unknown names raise :class:`InputError` listing the valid ones.
    """
    if fields is None:
        return REPLY_COLUMNS
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


_SOURCES: dict[str, tuple[str, ...]] = {name: (name,) for name in REPLY_COLUMNS}
_SOURCES.update(
    {
        "saddr": ("target",),
        "saddr_raw": ("target",),
        "daddr": (),
        "daddr_raw": (),
        "classification": ("reply",),
        "success": ("reply",),
        "cooldown": ("ts",),
        "timestamp_str": ("ts",),
        "timestamp_ts": ("ts",),
        "timestamp_us": ("ts",),
        "icmp_responder": ("icmp_type", "responder"),
        "icmp_unreach_str": ("icmp_type", "icmp_code"),
    }
)


def source_columns(names: Iterable[str]) -> tuple[str, ...]:
    """The reply columns needed to derive the named fields (to read only those)."""
    needed = {column for name in names for column in _SOURCES[name]}
    return tuple(column for column in REPLY_COLUMNS if column in needed)


def derive(batch: pa.RecordBatch, names: Iterable[str], ctx: FieldContext) -> pa.RecordBatch:
    """A batch holding the named fields computed from a reply batch (kinds as documented).

    The batch needs only the reply columns the fields are made from (:func:`source_columns`).
    """
    wanted = list(dict.fromkeys(names))
    missing = [c for c in source_columns(wanted) if c not in batch.schema.names]
    if missing:
        raise ValueError(f"reply batch lacks columns {missing}")
    arrays = [_DERIVERS[name][1](batch, ctx) for name in wanted]
    return pa.RecordBatch.from_arrays(arrays, names=wanted)
