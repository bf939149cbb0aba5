"""``write_figures``: every report figure as PDF and SVG one paper column wide, its data as CSV."""

from __future__ import annotations

import csv
import json
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from test_analysis_ipv6_rows import MIXED

from liveness.analysis import summarize
from liveness.analysis.figure_files import COLUMN_WIDTH_IN, FIGURES, write_figures
from liveness.cli.main import cli
from liveness.errors import RunError


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = tmp_path_factory.mktemp("scan") / "mixed.parquet"
    pq.write_table(MIXED, path)
    return summarize([str(path)])


@pytest.fixture(scope="module")
def written(summary: dict, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_figures(summary, tmp_path_factory.mktemp("out") / "figures")


def test_every_figure_of_both_families_as_pdf_svg_and_csv(written: list[Path]) -> None:
    names = {p.name for p in written}
    ipv6 = [n for n in FIGURES if n != "address_map"] + ["prefixes"]
    expected = {f"{n}{s}.{e}" for n in FIGURES for s in [""] for e in ("pdf", "svg", "csv")}
    expected |= {f"{n}_ipv6.{e}" for n in ipv6 for e in ("pdf", "svg", "csv")}
    assert names == expected
    for path in written:
        assert path.stat().st_size > 0
        if path.suffix == ".pdf":
            assert path.read_bytes().startswith(b"%PDF-")
        if path.suffix == ".svg":
            root = ElementTree.parse(path).getroot()
            width = float(re.sub(r"pt$", "", root.attrib["width"]))
            assert width <= COLUMN_WIDTH_IN * 72 + 1  # one column of a two-column paper


def test_csv_holds_the_numbers_the_figure_draws(summary: dict, written: list[Path]) -> None:
    directory = written[0].parent
    with open(directory / "coverage.csv", encoding="utf-8") as handle:
        rows = dict(csv.reader(handle))
    assert rows["coverage.all"] == str(summary["coverage"]["all"])
    assert rows["coverage.families.tcp.alive"] == str(
        summary["coverage"]["families"]["tcp"]["alive"]
    )
    with open(directory / "prefixes_ipv6.csv", encoding="utf-8") as handle:
        rows6 = dict(csv.reader(handle))
    assert rows6["prefixes./48.prefixes"] == str(summary["ipv6"]["prefixes"]["/48"]["prefixes"])


def test_an_unwritable_directory_is_a_one_line_error(summary: dict, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(RunError, match=r"--figures-dir .*cannot write the figures"):
        write_figures(summary, blocker / "figures")


def test_report_cli_writes_the_figures_beside_the_page(tmp_path: Path) -> None:
    scan = tmp_path / "mixed.parquet"
    pq.write_table(MIXED, scan)
    out = tmp_path / "report.html"
    done = CliRunner().invoke(
        cli, ["report", str(scan), "-o", str(out), "--figures-dir", str(tmp_path / "f"), "--json"]
    )
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    page = out.read_text()
    assert "<h2>Compared with the study</h2>" in page  # study vs this scan; no truth here
    assert len(result["figures"]) == 3 * (len(FIGURES) + len(FIGURES))  # IPv6: no map, prefixes
    assert all(Path(path).is_file() for path in result["figures"])
