"""Atlas per-probe window detector: islands, peninsulas, unmeasurable probes."""

from __future__ import annotations

import pyarrow as pa
import pytest

from liveness.errors import InputError
from liveness.reach.atlas_islands import AtlasParams, detect_atlas
from liveness.reach.observation import OBSERVATION_SCHEMA

LETTERS = [f"{c}.root" for c in "abcdefghijklm"]
DAY = 86_400


def observations(rows: list[tuple[str, str, int, int, str]], af: int = 4) -> pa.Table:
    vp, target, t0, t1, status = (list(c) for c in zip(*rows, strict=True))
    return pa.table(
        {
            "vp": pa.array(vp).dictionary_encode(),
            "target": pa.array(target).dictionary_encode(),
            "af": pa.array([af] * len(rows), pa.uint8()),
            "t0": pa.array(t0, pa.int64()),
            "t1": pa.array(t1, pa.int64()),
            "status": pa.array(status).dictionary_encode(),
        },
        schema=OBSERVATION_SCHEMA,
    )


def day(
    probe: str, n: int, answered: set[str], letters: list[str] = LETTERS
) -> list[tuple[str, str, int, int, str]]:
    """One day of a probe: every letter queried at noon, answered or not."""
    noon = n * DAY + DAY // 2
    return [(probe, L, noon, noon + 240, "up" if L in answered else "down") for L in letters]


def test_island_peninsula_ok_unmeasurable() -> None:
    rows = day("ok", 0, set(LETTERS)) + day("isl", 0, set()) + day("pen", 0, set(LETTERS[:4]))
    rows += day("few", 0, set(), letters=LETTERS[:5])
    found = detect_atlas(observations(rows))
    kinds = {e["scope"]: (e["kind"], e["start"], e["end"]) for e in found.events.to_pylist()}
    assert kinds == {"isl": ("island", 0, DAY), "pen": ("peninsula", 0, DAY)}
    pen = next(e for e in found.events.to_pylist() if e["scope"] == "pen")
    assert pen["share"] == pytest.approx(4 / 13)
    summary = {r["vp"]: r for r in found.vp_summary.to_pylist()}
    assert summary["few"]["unmeasurable_s"] == DAY and summary["few"]["island_s"] == 0
    assert summary["ok"]["island_s"] == summary["ok"]["peninsula_s"] == 0


def test_one_answer_in_the_window_is_enough() -> None:
    rows = day("p", 0, set())
    rows.append(("p", "k.root", 100, 340, "up"))  # K answered once, early in the day
    (event,) = detect_atlas(observations(rows)).events.to_pylist()
    assert event["kind"] == "peninsula" and event["share"] == pytest.approx(1 / 13)


def test_consecutive_days_merge_and_gap_and_min_duration() -> None:
    rows = day("p", 0, set()) + day("p", 1, set()) + day("p", 2, set(LETTERS)) + day("p", 3, set())
    events = detect_atlas(observations(rows)).events.to_pylist()
    assert [(e["start"], e["end"]) for e in events] == [(0, 2 * DAY), (3 * DAY, 4 * DAY)]
    merged = detect_atlas(observations(rows), AtlasParams(gap=DAY)).events.to_pylist()
    assert [(e["start"], e["end"]) for e in merged] == [(0, 4 * DAY)]
    long_only = detect_atlas(observations(rows), AtlasParams(min_duration=2 * DAY)).events
    assert long_only.column("start").to_pylist() == [0]


def test_min_letters_and_window_parameters() -> None:
    rows = day("few", 0, set(), letters=LETTERS[:3])
    assert detect_atlas(observations(rows)).events.num_rows == 0
    (event,) = detect_atlas(observations(rows), AtlasParams(min_letters=3)).events.to_pylist()
    assert event["kind"] == "island"
    hourly = detect_atlas(observations(rows), AtlasParams(min_letters=3, window=3600)).events
    assert hourly.column("duration").to_pylist() == [3600]
    with pytest.raises(InputError):
        AtlasParams(window=0)


def test_interval_spanning_windows_counts_in_each() -> None:
    rows = [("p", L, DAY - 100, DAY + 100, "down") for L in LETTERS]
    events = detect_atlas(observations(rows)).events.to_pylist()
    assert [(e["kind"], e["start"], e["end"]) for e in events] == [("island", 0, 2 * DAY)]


def test_other_destinations_are_not_letters_unless_asked() -> None:
    rows = day("p", 0, set(), letters=[f"192.0.2.{i}" for i in range(8)])
    assert detect_atlas(observations(rows)).events.num_rows == 0
    (event,) = detect_atlas(observations(rows), AtlasParams(roots_only=False)).events.to_pylist()
    assert event["kind"] == "island"


def test_address_families_are_separate() -> None:
    v4 = observations(day("p", 0, set(LETTERS)), af=4)
    v6 = observations(day("p", 0, set()), af=6)
    events = detect_atlas(pa.concat_tables([v4, v6]).unify_dictionaries()).events.to_pylist()
    assert [(e["kind"], e["af"]) for e in events] == [("island", 6)]
