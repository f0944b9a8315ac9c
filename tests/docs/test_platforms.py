"""The platforms page says exactly what the presets and dialects do."""

from __future__ import annotations

from ._platforms_page import PATH, render


def test_the_platforms_page_is_written_from_the_presets() -> None:
    assert PATH.read_text(encoding="utf-8") == render(), (
        "docs/platforms.md is out of date: run python -m tests.docs._platforms_page"
    )


def test_the_page_names_every_platform_and_its_sources() -> None:
    from postback_lab.events._presets import PRESETS

    page = render()
    for name, p in PRESETS.items():
        assert f"## {p.title}" in page and f"`{name}`" in page
        assert all(url in page for url in p.docs), name
