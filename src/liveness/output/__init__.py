"""Reply output: the record schema, writers (Parquet, CSV, JSON lines) and readers.

The scanner calls :func:`open_writer` and writes batches of :data:`REPLY_SCHEMA` rows (IPv4 and
IPv6); every consumer reads them back with :func:`read_replies`. Field names follow the reply
record and ZMap (:data:`ZMAP_FIELDS`); filters follow ZMap's ``--output-filter`` syntax.
"""

from __future__ import annotations

from liveness.output.addresses import format_dotted, format_ipv6, parse_dotted, parse_ipv6
from liveness.output.fields import ALL_FIELDS, FIELD_KINDS, ZMAP_FIELDS, FieldContext
from liveness.output.filter import ReplyFilter, compile_filter
from liveness.output.readers import read_replies
from liveness.output.schema import REPLY_CATEGORIES, REPLY_COLUMNS, REPLY_SCHEMA
from liveness.output.writers import ReplyWriter, format_for_path, journal_path, open_writer

__all__ = [
    "ALL_FIELDS",
    "FIELD_KINDS",
    "REPLY_CATEGORIES",
    "REPLY_COLUMNS",
    "REPLY_SCHEMA",
    "ZMAP_FIELDS",
    "FieldContext",
    "ReplyFilter",
    "ReplyWriter",
    "compile_filter",
    "format_dotted",
    "format_for_path",
    "format_ipv6",
    "journal_path",
    "open_writer",
    "parse_dotted",
    "parse_ipv6",
    "read_replies",
]
