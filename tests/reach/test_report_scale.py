"""The reach report at scale: overview per family, ``--detail N`` largest events, page size,
rendering in headless Chromium, and the benchmark's quarter mode."""

from __future__ import annotations

import importlib.util
import itertools
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from observation_rows import observation_table

from chromium import chromium, screenshot
from cli_runner import run_cli
from liveness.reach.detect import EVENT_SCHEMA, DetectParams, detect
from liveness.reach.island_mask import detect_with_island_mask
from liveness.reach.observation import OBSERVATION_SCHEMA
from liveness.reach.report import DETAIL, event_groups, render_report

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "reach.py"
PARAMS = DetectParams(round_s=0, min_duration=0, min_blocks=1)
END = 100_000
# (blocks, seconds) of planted outages: by blocks x duration 12000, 9000, 7500, 6000, 5000, 2000
PLANTED = [(1, 9000), (5, 1000), (3, 2500), (10, 600), (2, 1000), (4, 3000)]
RANKED = [(4, 3000), (1, 9000), (3, 2500), (10, 600), (5, 1000), (2, 1000)]


def benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reach_benchmark", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def block_name(af: int, i: int) -> str:
    return f"10.0.{i}.0/24" if af == 4 else f"2001:db8:{i:x}::/48"


def planted(af: int = 4, island: bool = False) -> list[tuple[str, str, int, int, int, str]]:
    """40 blocks seen by 3 VPs (and x), with the outages of ``PLANTED``, 10000 s apart; with
    ``island`` VP x reaches only block 0 in [70000, 80000)."""
    rows = []
    block = 0
    down: dict[int, tuple[int, int]] = {}
    for g, (blocks, seconds) in enumerate(PLANTED):
        for _ in range(blocks):
            down[block] = (1000 + 10_000 * g, 1000 + 10_000 * g + seconds)
            block += 1
    for vp in ("a", "b", "c", "x"):
        for i in range(40):
            name = block_name(af, i)
            spans = [down[i]] if i in down else []
            if vp == "x" and island and i != 0:
                spans.append((70_000, 80_000))
            edges = [0, *[t for span in spans for t in span], END]
            for k, (t0, t1) in enumerate(itertools.pairwise(edges)):
                rows.append((vp, name, af, t0, t1, "down" if k % 2 else "up"))
    return rows


def sections(page: str) -> list[str]:
    return re.findall(r'<section class="detail" id="event-\d+"><h3>([^<]*)</h3>', page)


def test_event_groups_rank_by_blocks_times_duration() -> None:
    found = detect(observation_table(planted()), PARAMS)
    groups = event_groups(found.events)
    sizes = zip(groups.blocks.tolist(), (groups.block_s // groups.blocks).tolist(), strict=True)
    assert list(sizes) == RANKED
    assert groups.kind == ["outage"] * 6 and (groups.af == 4).all()
    scopes = found.events.column("scope").cast(pa.string()).to_pylist()
    first = sorted(str(scopes[int(r)]) for r in groups.members(0))
    assert first == [block_name(4, i) for i in range(21, 25)]  # the last planted group


def test_event_groups_of_no_event() -> None:
    groups = event_groups(EVENT_SCHEMA.empty_table())
    assert groups.kind == [] and len(groups.block_s) == 0


@pytest.mark.parametrize("n", [0, 1, 3, 6, 50])
def test_detail_shows_exactly_the_n_largest(n: int) -> None:
    obs = observation_table(planted())
    page = render_report(obs, detect(obs, PARAMS), detail=n)
    titles = sections(page)
    assert len(titles) == min(n, 6)
    for rank, (title, (blocks, seconds)) in enumerate(zip(titles, RANKED, strict=False)):
        what = "outage of " + (f"{blocks} blocks from" if blocks > 1 else "10.0.")
        assert title.startswith(f"#{rank + 1}: {what}") and f"for {seconds} s" in title
        assert title.endswith(f"{blocks * seconds / 3600:.1f} block-hours")


def test_overview_per_family_with_islands() -> None:
    obs = observation_table(planted(4, island=True) + planted(6))
    page = render_report(obs, detect_with_island_mask(obs, PARAMS), detail=2)
    v4 = page.split("<h2>Overview: IPv4</h2>")[1].split("<h2>Overview: IPv6</h2>")[0]
    v6 = page.split("<h2>Overview: IPv6</h2>")[1].split("<h2>Vantage points across")[0]
    # per hour, durations, islands (IPv4 only: x is an island there); then the largest events
    assert v4.count("<img") == 3 and v6.count("<img") == 2
    assert "no IPv6 island among 4 VPs" in v6
    assert "Largest IPv4 events by blocks x duration (6 events of 25 block events)" in v4
    # ranks among both families: the largest of each (a tie) first, IPv4 before IPv6
    assert "#1 (detail below)" in v4 and "#2 (detail below)" in v6 and "<td>#3</td>" in v4
    assert "<b>x</b> was an IPv4 island from" in page
    assert len(sections(page)) == 2
    assert page.count("<h2>IPv4</h2>") == 1 and page.count("<h2>IPv6</h2>") == 1


def test_page_stays_small_for_many_blocks() -> None:
    """30,000 blocks over a quarter (~650,000 intervals, ~50,000 events): a few hundred kB."""
    obs, _ = benchmark().synthesise(30_000, seed=2)
    found = detect_with_island_mask(obs)
    assert found.events.num_rows > 40_000
    began = time.perf_counter()
    page = render_report(obs, found)
    seconds = time.perf_counter() - began
    assert len(page.encode()) < 3_000_000, len(page)
    assert len(sections(page)) == DETAIL
    assert seconds < 60
    titles = sections(page)
    hours = [float(t.rsplit(", ", 1)[1].split()[0]) for t in titles]
    assert hours == sorted(hours, reverse=True)


@pytest.mark.slow
@pytest.mark.skipif(chromium() is None, reason="chromium is not installed")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    obs, _ = benchmark().synthesise(30_000, seed=3)
    out = tmp_path / "reach.html"
    out.write_text(render_report(obs, detect_with_island_mask(obs)), encoding="utf-8")
    png = tmp_path / "shot.png"
    assert screenshot(out, png, height=3000) < 60
    assert png.exists() and png.stat().st_size > 10_000
    matplotlib_image = pytest.importorskip("matplotlib.image")
    pixels: Any = matplotlib_image.imread(str(png))
    assert pixels.shape[0] >= 2000 and pixels.shape[1] >= 1000
    rgb = (pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    assert len(np.unique(rgb, axis=0)) > 50  # figures, not a blank page
    assert (rgb.min(axis=1) < 200).mean() > 0.05


def test_cli_detail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    obs_path = tmp_path / "obs.parquet"
    pq.write_table(observation_table(planted()), obs_path)
    out = tmp_path / "reach.html"
    base = ["reach", "report", str(obs_path), "-o", str(out), "--round", "0"]
    code, stdout, err = run_cli([*base, "--min-duration", "0", "--detail", "4", "--json"], capsys)
    assert code == 0, err
    assert json.loads(stdout)["detail"] == 4 and len(sections(out.read_text())) == 4
    for bad in ("-1", "x", "100000"):
        code, _, err = run_cli([*base, "--detail", bad], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "--detail" in err, err


def test_benchmark_writes_a_quarter_and_its_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    quarter, page = tmp_path / "quarter.parquet", tmp_path / "quarter.html"
    run = subprocess.run(
        [
            sys.executable,
            str(BENCHMARK),
            "--blocks",
            "2000",
            "--write",
            str(quarter),
            "--report",
            str(page),
            "--detail",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(run.stdout)
    assert result["report"]["bytes"] == len(page.read_bytes()) and result["report"]["detail"] == 3
    assert result["events"]["island"] == 1 and len(sections(page.read_text())) == 3
    assert pq.read_metadata(quarter).num_rows == result["intervals"]
    out = tmp_path / "cli.html"
    code, stdout, err = run_cli(
        ["reach", "report", str(quarter), "-o", str(out), "--detail", "3", "--json"], capsys
    )
    assert code == 0, err
    assert json.loads(stdout)["events"] == sum(result["island_mask"]["events"].values())


def test_report_of_nothing() -> None:
    obs = OBSERVATION_SCHEMA.empty_table()
    page = render_report(obs, detect(obs, PARAMS), detail=5)
    assert "no observations" in page and "no IPv4 event" in page and sections(page) == []
    assert page.rstrip().endswith("</html>")
