"""The reach HTML report: overview, detail, event tables, DNSmon bars, RIR table; its CLI."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pyarrow as pa
import pytest

from cli_runner import run_cli
from liveness.reach.detect import DetectParams, detect
from liveness.reach.dnsmon import dnsmon_loss
from liveness.reach.observation import OBSERVATION_SCHEMA
from liveness.reach.report import render_report

# ../shared/data beside the repository (as on CI and the developers' machines).
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

SHARED = SHARED_DATA


def observations() -> pa.Table:
    rows = [
        ("a", "10.0.0.0/24", 0, 3600, "up"),
        ("a", "10.0.0.0/24", 3600, 7200, "down"),
        ("b", "10.0.0.0/24", 0, 7200, "up"),
        ("b", "10.0.1.0/24", 0, 1800, "unknown"),
        ("a", "10.0.1.0/24", 0, 1800, "down"),
    ]
    vp, target, t0, t1, status = (list(c) for c in zip(*rows, strict=True))
    return pa.table(
        {
            "vp": pa.array(vp).dictionary_encode(),
            "target": pa.array(target).dictionary_encode(),
            "af": pa.array([4] * len(rows), pa.uint8()),
            "t0": pa.array(t0, pa.int64()),
            "t1": pa.array(t1, pa.int64()),
            "status": pa.array(status).dictionary_encode(),
        },
        schema=OBSERVATION_SCHEMA,
    )


def loss_table() -> pa.Table:
    rows = [(p, f"{c}.root", 4, 10, p != "isl") for p in ("ok", "isl") for c in "abcdefg"]
    vp, target, af, ts, ok = (list(c) for c in zip(*rows, strict=True))
    return dnsmon_loss(
        pa.table({"vp": vp, "target": target, "af": pa.array(af, pa.uint8()), "ts": ts, "ok": ok})
    )


def images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def test_render_report_sections() -> None:
    obs = observations()
    found = detect(obs, DetectParams(round_s=0, min_duration=0, min_blocks=1))
    page = render_report(obs, found, dnsmon=loss_table(), title="test <report>")
    assert page.lower().startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert "test &lt;report&gt;" in page  # escaped
    pngs = images(page)
    # events per hour, durations (no island: no island timeline), two details, the DNSmon bars
    assert len(pngs) == 5
    assert all(png.startswith(b"\x89PNG") for png in pngs)
    assert "Peninsulas (1)" in page and "Outages (1)" in page and "Islands (0)" in page
    assert "DNSmon" in page and "without islands" not in page.split("DNSmon")[0]
    assert "http" not in page.replace("http-equiv", "")  # self-contained: no external links


def test_report_without_detail_or_dnsmon() -> None:
    obs = observations()
    found = detect(obs, DetectParams(round_s=0, min_duration=0, min_blocks=1))
    page = render_report(obs, found, detail=0)
    assert len(images(page)) == 2 and "DNSmon" not in page  # the overview only
    assert '<section class="detail"' not in page


def test_report_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    obs_path = tmp_path / "obs.parquet"
    import pyarrow.parquet as pq

    pq.write_table(observations(), obs_path)
    out = tmp_path / "reach.html"
    args = [
        "reach",
        "report",
        str(obs_path),
        "-o",
        str(out),
        "--round",
        "0",
        "--min-duration",
        "0",
        "--json",
    ]
    atlas = SHARED / "atlas" / "dns-results-sample.jsonl"
    rir = SHARED / "rir" / "delegated-afrinic-extended-20260505"
    if atlas.exists() and rir.exists():
        args += ["--atlas", str(atlas), "--rir", str(rir)]
    code, stdout, err = run_cli(args, capsys)
    assert code == 0, err
    result = json.loads(stdout)
    assert result["events"] == 2 and out.exists()
    page = out.read_text()
    assert "largest events in detail" in page and result["detail"] == 2
    if atlas.exists() and rir.exists():
        assert result["dnsmon"] and result["rir"]
        assert "Who could secede" in page and "ZA" in page
    code, _, err = run_cli(
        ["reach", "report", str(obs_path), "-o", str(tmp_path / "r.pdf")], capsys
    )
    assert code == 2 and "use a .html file name" in err


@pytest.mark.parametrize(
    ("horizon", "unit", "width"),
    [(240, "minutes", 4.0), (60, "seconds", 60.0), (7200, "hours", 2.0)],
)
def test_timeline_axis_spans_the_data_in_a_fitting_unit(
    horizon: int, unit: str, width: float
) -> None:
    """A four-minute run is drawn over its four minutes, not as a sliver of two hours."""
    import matplotlib.pyplot as plt

    from liveness.reach.report import timeline_figure

    third = horizon // 3
    obs = pa.table(
        {
            "vp": pa.array(["a", "a", "a"]).dictionary_encode(),
            "target": pa.array(["10.0.0.0/24"] * 3).dictionary_encode(),
            "af": pa.array([4, 4, 4], pa.uint8()),
            "t0": pa.array([0, third, 2 * third], pa.int64()),
            "t1": pa.array([third, 2 * third, horizon], pa.int64()),
            "status": pa.array(["up", "down", "up"]).dictionary_encode(),
        },
        schema=OBSERVATION_SCHEMA,
    )
    figure = timeline_figure(obs, "10.0.0.0/24", third, 2 * third)
    axes = figure.axes[0]
    assert axes.get_xlabel().startswith(f"{unit} since")
    assert axes.get_xlim() == pytest.approx((0.0, width))
    plt.close(figure)
