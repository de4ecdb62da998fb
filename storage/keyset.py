"""Keyset pagination: order a query by columns, and continue after the last row seen.

Never OFFSET: a page 10,000 rows deep costs the same as the first one, and a
row inserted while the user pages does not shift or repeat rows.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVarTuple

from sqlalchemy import ColumnElement, Select, SQLColumnExpression, and_, or_

_Row = TypeVarTuple("_Row")


class BadCursor(ValueError):
    """The cursor text was not produced by `encode_cursor` for this ordering."""


@dataclass(frozen=True)
class SortKey:
    column: SQLColumnExpression[Any]  # a mapped attribute or any Core column expression
    descending: bool


def order_by(query: Select[*_Row], keys: list[SortKey]) -> Select[*_Row]:
    return query.order_by(*(key.column.desc() if key.descending else key.column.asc() for key in keys))


def after(keys: list[SortKey], values: list[Any]) -> ColumnElement[bool]:
    """WHERE clause selecting rows strictly after `values` in the `keys` ordering."""
    if len(values) != len(keys):
        raise BadCursor("cursor has the wrong number of values")
    clauses: list[ColumnElement[bool]] = []
    for depth, key in enumerate(keys):
        equal_prefix = [keys[i].column == values[i] for i in range(depth)]
        step = key.column < values[depth] if key.descending else key.column > values[depth]
        clauses.append(and_(*equal_prefix, step))
    return or_(*clauses)


def encode_cursor(values: list[Any]) -> str:
    encoded = [{"t": value.isoformat()} if isinstance(value, datetime) else value for value in values]
    raw = json.dumps(encoded, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        decoded = json.loads(raw)
        if not isinstance(decoded, list):
            raise BadCursor("cursor is not a list")
        return [
            datetime.fromisoformat(item["t"]) if isinstance(item, dict) else item for item in decoded
        ]
    except (binascii.Error, ValueError, KeyError, TypeError) as error:
        raise BadCursor(str(error)) from None
