"""Charts need no network: the renderer inlines the scripts, leaves a renderer the user
chose alone, and the failure-rate line breaks over empty buckets instead of bridging them."""

from __future__ import annotations

from datetime import datetime

import altair as alt
import polars as pl
import pytest

from postback_lab.auditing._charts import audit_chart, with_gaps
from postback_lab.auditing._vega import RENDERER, chart_html, use_offline_charts


def _timeline(days):
    return pl.DataFrame(
        {
            "rule": ["a"] * len(days),
            "period": [datetime(2026, 3, d) for d in days],
            "attempts": [10] * len(days),
            "failed_attempts": [1] * len(days),
            "attempt_failure_rate": [0.1] * len(days),
        }
    )


def test_empty_buckets_become_nulls_that_break_the_line():
    filled = with_gaps(_timeline([1, 2, 5]), "rule", 86_400)
    assert filled["period"].dt.day().to_list() == [1, 2, 3, 4, 5]
    assert filled["attempts"].to_list() == [10, 10, None, None, 10]
    codes = pl.DataFrame({"rule": ["a"], "status_code": [200], "attempts": [30]})
    spec = audit_chart(_timeline([1, 2, 5]), codes, ("rule",), 86_400).to_dict()
    assert spec["vconcat"][0]["mark"]["invalid"] == "break-paths-filter-domains"


def test_html_carries_its_scripts_and_a_users_renderer_is_kept():
    page = chart_html({"mark": "point", "data": {"values": [{"x": 1}]}}, full_page=True)
    assert page.startswith("<!DOCTYPE html>")
    assert "window.vegaEmbed" in page and "<script src" not in page and "cdn." not in page
    before = alt.renderers.active
    try:
        alt.renderers.enable("json")
        assert use_offline_charts() is False and alt.renderers.active == "json"
        alt.renderers.enable("default")
        assert use_offline_charts() is True and alt.renderers.active == RENDERER
    finally:
        alt.renderers.enable(before)


def test_the_scripts_ship_in_the_package_for_the_vega_lite_altair_draws_with(monkeypatch):
    import importlib.resources
    import sys

    from altair.vegalite.v6.display import VEGALITE_VERSION

    from postback_lab.auditing import _vega

    monkeypatch.setitem(sys.modules, "vl_convert", None)  # import vl_convert now fails
    _vega.bundle.cache_clear()
    script = _vega.bundle()
    assert script.endswith("window.vegaEmbed=$t6;window.vega=__default;window.vegaLite=__default1;")
    major_minor = ".".join(VEGALITE_VERSION.split(".")[:2])
    assert f'"{major_minor}.' in script  # vega-lite's own version string
    folder = importlib.resources.files("postback_lab.auditing").joinpath("_js")
    licence = folder.joinpath("LICENSE.txt").read_text(encoding="utf-8")
    assert "BSD 3-Clause" in licence and "University of Washington" in licence


def test_a_png_without_vl_convert_names_the_extra(monkeypatch, tmp_path):
    import importlib.util

    import pytest

    from postback_lab import InputError
    from postback_lab.auditing._report import AuditReport

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "vl_convert" else real(name, *a),
    )
    report = AuditReport.__new__(AuditReport)
    monkeypatch.setattr(
        AuditReport, "chart", lambda self: alt.Chart(pl.DataFrame({"x": [1]})).mark_point()
    )
    with pytest.raises(InputError, match=r"postback-lab\[png\]"):
        report.save_chart(tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()


def _sample_log(path):
    from datetime import UTC, timedelta

    import postback_lab as pbl

    t0 = datetime(2026, 3, 2, tzinfo=UTC)
    rows = [
        {
            "dispatch_id": f"d{i}",
            "run_id": "r",
            "attempt": 1,
            "rule": "sales" if i % 3 else "leads",
            "transaction_id": f"t{i}",
            "publisher_id": str(i % 2),
            "host": "p.example",
            "fired_at": t0 + timedelta(hours=5 * i),
            "status_code": 500 if i % 4 == 0 else 200,
            "outcome": "failed" if i % 4 == 0 else "delivered",
        }
        for i in range(24)
    ]
    with pbl.LogStore(path) as log:
        log.append(rows)
    return path


@pytest.mark.parametrize(
    "by",
    [["publisher_id", "day"], ["rule", "day"], ["day"], ["status_code"], ["rule"], []],
    ids=lambda b: ",".join(b) or "all",
)
def test_every_grouping_draws(tmp_path, by):
    import vl_convert

    import postback_lab as pbl

    report = pbl.audit(_sample_log(tmp_path / "log.duckdb"), by=by)
    svg = vl_convert.vegalite_to_svg(report.chart().to_dict())
    assert svg.startswith("<svg") and "Failure rate over time" in svg
    group = next((b for b in by if b not in ("day", "hour", "week")), None)
    if group == "publisher_id":  # one line and one bar per publisher, none per day
        assert sorted(report.timeline["publisher_id"].unique()) == ["0", "1"]


def test_save_chart_by_rule_and_day_writes_png_and_svg(tmp_path):
    import postback_lab as pbl
    from postback_lab import InputError

    report = pbl.audit(_sample_log(tmp_path / "log.duckdb"), by=["rule", "day"])
    png = tmp_path / "chart.png"
    report.save_chart(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report.save_chart(tmp_path / "chart.svg")
    assert (tmp_path / "chart.svg").read_text(encoding="utf-8").startswith("<svg")
    with pytest.raises(InputError, match=r"chart\.pdf: save_chart writes .html, .htm, .png, .svg"):
        report.save_chart(tmp_path / "chart.pdf")


def test_daily_chart_draws():
    import vl_convert

    from postback_lab.auditing._charts import daily_chart

    daily = pl.DataFrame(
        {
            "day": [datetime(2026, 3, d) for d in (1, 2, 3)],
            "attempts": [10, 20, 5],
            "failed": [1, 0, 5],
        }
    ).with_columns(pl.col("day").dt.replace_time_zone("UTC"))
    svg = vl_convert.vegalite_to_svg(daily_chart(daily).to_dict())
    assert "Attempt failure rate per day" in svg and "Mar 02" in svg
