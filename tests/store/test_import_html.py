"""An import's result in a notebook: the summary and each note on lines of their own."""

from __future__ import annotations

import re

from postback_lab import ImportResult


def _paragraphs(html: str) -> list[str]:
    return [re.sub(r"\s+", " ", p).strip() for p in re.findall(r"<p[^>]*>(.*?)</p>", html, re.S)]


def test_summary_and_notes_are_separate_paragraphs():
    result = ImportResult(
        "log.csv",
        "run-1",
        rows=3,
        delivered=2,
        without_status=3,
        notes=("read as everflow (auto)",),
    )
    assert _paragraphs(result._repr_html_()) == [
        "log.csv: imported 3 attempts as run run-1 (2 delivered, 1 not)",
        "note: read as everflow (auto)",
        "note: 3 rows without a conversion status link by rule and transaction id",
    ]
