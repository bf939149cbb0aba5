"""ZMap's output-filter language, compiled once to a pyarrow compute expression.

Grammar (as ZMap's ``--output-filter``; ``and``/``or`` are accepted for ``&&``/``||``)::

    expr       := and_expr (("||" | "or") and_expr)*
    and_expr   := comparison (("&&" | "and") comparison)*
    comparison := "(" expr ")" | FIELD OP literal
    OP         := "=" | "==" | "!=" | ">" | "<" | ">=" | "<="
    literal    := INTEGER | "quoted" | 'quoted' | bareword | true | false

Fields are any name of :data:`~liveness.output.fields.ALL_FIELDS`. As in ZMap, a bare word on
the right is a string (``classification = synack``, ``probe = tcp_syn:443``). Address fields
(``saddr``, ``daddr``, ``icmp_responder``, ``target``, ``responder``) take an IPv4 address
(dotted, or an integer) or an IPv6 address (``saddr = 2001:2::1``); ``target6`` and
``responder6`` take an IPv6 address. An IPv4 literal compares with the IPv4 rows only and an
IPv6 literal with the IPv6 rows only, whatever the operator: ``saddr != 2001:2::1`` matches no
IPv4 row (select a family with ``af = 4`` or ``af = 6``). IPv6 addresses order numerically.
Boolean fields compare as 0/1 (``repeat = 0``). Rows where a comparison meets a null
(``icmp_responder`` of a SYN-ACK) do not match.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from liveness.errors import InputError
from liveness.output.fields import ALL_FIELDS, FIELD_KINDS, FieldContext, address6, derive
from liveness.output.schema import ADDR6

__all__ = ["ReplyFilter", "compile_filter"]

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<op>==|!=|>=|<=|=|>|<)
  | (?P<and>&&)
  | (?P<or>\|\|)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<quoted>"[^"]*"|'[^']*')
  | (?P<word>[A-Za-z0-9_.:/\-]+)
    """,
    re.VERBOSE,
)
_INTEGER = re.compile(r"-?[0-9]+")

_COMPARE: dict[str, Callable[[pc.Expression, pa.Scalar[Any]], pc.Expression]] = {
    "=": lambda f, v: f == v,
    "==": lambda f, v: f == v,
    "!=": lambda f, v: f != v,
    ">": lambda f, v: f > v,
    "<": lambda f, v: f < v,
    ">=": lambda f, v: f >= v,
    "<=": lambda f, v: f <= v,
}


_ROW = "\0row"
_IPV6 = "/6"  # suffix of the column holding an address field's IPv6 part


@dataclass(frozen=True)
class ReplyFilter:
    """A compiled filter: the expression and the fields it reads (to derive before filtering).

    ``fields`` are every field the filter reads (derived as stored: IPv4 addresses as uint32,
    null on IPv6 rows); ``fields6`` are the address fields compared with an IPv6 literal,
    whose IPv6 part (:func:`~liveness.output.fields.address6`) the expression reads as
    ``FIELD/6``.
    """

    text: str
    expression: pc.Expression
    fields: tuple[str, ...]
    fields6: tuple[str, ...] = ()

    def rows(self, batch: pa.RecordBatch, ctx: FieldContext | None = None) -> pa.Array[Any]:
        """The indices of the rows of a reply batch that match."""
        context = ctx or FieldContext()
        wide = derive(batch, self.fields, context)
        for name in self.fields6:
            wide = wide.append_column(name + _IPV6, address6(batch, name, context))
        wide = wide.append_column(_ROW, pa.array(np.arange(batch.num_rows, dtype=np.int64)))
        return wide.filter(self.expression).column(_ROW)

    def apply(
        self,
        batch: pa.RecordBatch,
        keep: Sequence[str],
        ctx: FieldContext | None = None,
        *,
        text: bool = False,
    ) -> pa.RecordBatch:
        """The rows of a reply batch that match, as the fields ``keep`` (see ``derive``)."""
        context = ctx or FieldContext()
        rows = self.rows(batch, context)
        selected = batch if len(rows) == batch.num_rows else batch.take(rows)
        return derive(selected, keep, context, text=text)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int


def compile_filter(text: str, *, flag: str = "--output-filter") -> ReplyFilter:
    """Compile ``text``; a syntax error raises :class:`InputError` naming ``flag`` and where."""
    parser = _Parser(text, flag)
    expression = parser.parse()
    return ReplyFilter(
        text=text,
        expression=expression,
        fields=tuple(parser.fields),
        fields6=tuple(parser.fields6),
    )


def _tokenize(text: str, flag: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise InputError(f"{flag}: unexpected {text[pos]!r} at position {pos + 1}: {text!r}")
        kind = match.lastgroup
        assert kind is not None
        if kind == "word" and match.group().lower() in ("and", "or"):
            kind = match.group().lower()
        if kind != "space":
            tokens.append(_Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _Parser:
    """Recursive descent over the token list, building the expression as it goes."""

    def __init__(self, text: str, flag: str) -> None:
        self.text = text
        self.flag = flag
        self.tokens = _tokenize(text, flag)
        self.index = 0
        self.fields: list[str] = []
        self.fields6: list[str] = []

    def parse(self) -> pc.Expression:
        if self.tokens[0].kind == "end":
            raise InputError(f"{self.flag}: empty filter")
        expression = self._or()
        if self._peek().kind != "end":
            self._fail("expected '&&', '||' or the end")
        return expression

    def _peek(self) -> _Token:
        return self.tokens[self.index]

    def _take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def _fail(self, wanted: str) -> None:
        token = self._peek()
        shown = repr(token.text) if token.text else "the end"
        raise InputError(
            f"{self.flag}: {wanted}, found {shown} at position {token.pos + 1}: {self.text!r}"
        )

    def _or(self) -> pc.Expression:
        expression = self._and()
        while self._peek().kind == "or":
            self._take()
            expression = expression | self._and()
        return expression

    def _and(self) -> pc.Expression:
        expression = self._comparison()
        while self._peek().kind == "and":
            self._take()
            expression = expression & self._comparison()
        return expression

    def _comparison(self) -> pc.Expression:
        token = self._peek()
        if token.kind == "lparen":
            self._take()
            expression = self._or()
            if self._peek().kind != "rparen":
                self._fail("expected ')'")
            self._take()
            return expression
        if token.kind != "word" or _INTEGER.fullmatch(token.text):
            self._fail("expected a field name or '('")
        if token.text not in FIELD_KINDS:
            raise InputError(
                f"{self.flag}: unknown field {token.text!r} at position {token.pos + 1}; "
                f"valid fields: {', '.join(ALL_FIELDS)}"
            )
        self._take()
        if self._peek().kind != "op":
            self._fail("expected a comparison (=, !=, >, <, >=, <=)")
        op = self._take().text
        if self._peek().kind not in ("word", "quoted"):
            self._fail("expected a value")
        value_token = self._take()
        field, value = self._typed(token.text, value_token)
        return _COMPARE[op](field, value)

    def _typed(self, name: str, token: _Token) -> tuple[pc.Expression, pa.Scalar[Any]]:
        """The field expression and the literal, converted to the field's kind."""
        kind = FIELD_KINDS[name]
        raw = token.text[1:-1] if token.kind == "quoted" else token.text
        is_integer = token.kind == "word" and _INTEGER.fullmatch(raw) is not None
        if name not in self.fields:
            self.fields.append(name)
        field = pc.field(name)
        if kind in ("addr", "addr6") and ":" in raw:
            packed = _ipv6_literal(raw)
            if packed is None:
                return self._bad_value(name, token, "an IPv6 address")
            if kind == "addr6":
                return field, pa.scalar(packed, ADDR6)
            if name not in self.fields6:
                self.fields6.append(name)
            return pc.field(name + _IPV6), pa.scalar(packed, ADDR6)
        if kind == "addr6":
            return self._bad_value(name, token, "an IPv6 address")
        if kind == "bytes":
            raise InputError(
                f"{self.flag}: field {name!r} holds bytes: filter on app_proto (http, tls, "
                f"ssh, telnet, text, binary) instead: {self.text!r}"
            )
        if kind == "str":
            return field, pa.scalar(raw, pa.string())
        if kind == "bool":
            lowered = raw.lower()
            if lowered in ("true", "false"):
                return field.cast(pa.int8()), pa.scalar(int(lowered == "true"), pa.int8())
            if is_integer:
                return field.cast(pa.int8()), pa.scalar(int(raw), pa.int64())
            return self._bad_value(name, token, "0, 1, true or false")
        if is_integer:
            return field, pa.scalar(int(raw), pa.int64())
        if kind == "addr":
            try:
                return field, pa.scalar(int(ipaddress.IPv4Address(raw)), pa.int64())
            except ValueError:
                return self._bad_value(name, token, "an IPv4 or IPv6 address")
        return self._bad_value(name, token, "an integer")

    def _bad_value(
        self, name: str, token: _Token, wanted: str
    ) -> tuple[pc.Expression, pa.Scalar[Any]]:
        raise InputError(
            f"{self.flag}: field {name!r} needs {wanted}, found {token.text!r} "
            f"at position {token.pos + 1}: {self.text!r}"
        )


def _ipv6_literal(text: str) -> bytes | None:
    """The 16 bytes of an IPv6 address literal (None if it is not one; no zone index)."""
    try:
        return socket.inet_pton(socket.AF_INET6, text)
    except (OSError, ValueError):
        return None
