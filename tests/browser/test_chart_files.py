"""The audit chart saved as HTML (what ``postback-lab demo`` writes) opens in Chromium with
no network and draws its SVG."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import postback_lab as pbl

from ._lab import wait_for

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def _log(path):
    rows = [
        {
            "dispatch_id": f"d{i}",
            "run_id": "r",
            "attempt": 1,
            "rule": "sales" if i % 3 else "leads",
            "transaction_id": f"t{i}",
            "host": "p.example",
            "fired_at": T0 + timedelta(hours=5 * i),
            "status_code": 500 if i % 4 == 0 else 200,
            "outcome": "failed" if i % 4 == 0 else "delivered",
        }
        for i in range(24)
    ]
    with pbl.LogStore(path) as log:
        log.append(rows)
    return path


def test_saved_chart_draws_offline(tmp_path, browser, shots):
    report = pbl.audit(_log(tmp_path / "log.duckdb"), by=["rule"])
    page = tmp_path / "audit_chart.html"
    report.save_chart(page)
    text = page.read_text(encoding="utf-8")
    assert "<script src" not in text and "cdn.jsdelivr" not in text
    browser.get(page.as_uri())
    drawn = wait_for(
        browser,
        "return document.querySelectorAll('.pbl-chart svg.marks').length",
        timeout=60,
    )
    assert drawn == 1
    assert "chart error" not in browser.execute_script("return document.body.innerText")
    browser.save_screenshot(str(shots / "audit_chart_html.png"))
