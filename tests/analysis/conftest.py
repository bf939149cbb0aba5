"""Fixtures for the analysis tests: write hand-made reply tables as Parquet files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from analysis_replies import Row, WriteReplies, reply_table


@pytest.fixture
def write_replies(tmp_path: Path) -> WriteReplies:
    """Write rows as ``tmp_path/name`` (Parquet) and return the path."""

    def write(rows: Sequence[Row], name: str) -> str:
        path = tmp_path / name
        pq.write_table(reply_table(rows), path)
        return str(path)

    return write
