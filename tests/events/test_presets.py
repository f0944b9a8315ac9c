"""Platform presets: documented headers map onto our columns, ``auto`` finds the platform."""

import csv
from pathlib import Path

import pytest

from postback_lab.events._presets import PRESETS, detect, get_preset, preset_names

FIXTURES = Path(__file__).parent.parent / "fixtures" / "presets"


def _header(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    sep = ";" if text.splitlines()[0].count(";") > text.splitlines()[0].count(",") else ","
    return next(csv.reader([text.splitlines()[0]], delimiter=sep))


def test_names() -> None:
    assert preset_names() == [
        "everflow",
        "affise",
        "cake",
        "keitaro",
        "tune",
        "voluum",
        "binom",
        "integr8",
        "auto",
    ]


@pytest.mark.parametrize("name", list(PRESETS))
def test_each_fixture_is_detected_as_its_platform(name: str) -> None:
    found, hits = detect(_header(FIXTURES / f"{name}_conversions.csv"))
    assert found is not None and found.name == name
    assert hits >= 1


@pytest.mark.parametrize("name", list(PRESETS))
def test_each_fixture_maps_the_required_columns(name: str) -> None:
    mapping = get_preset(name).column_map(_header(FIXTURES / f"{name}_conversions.csv"))
    fed = {c for cols in mapping.values() for c in cols}
    assert {"transaction_id", "occurred_at", "offer_id"} <= fed
    assert "status" in fed or PRESETS[name].default_status is not None


@pytest.mark.parametrize("name", list(PRESETS))
def test_each_postback_log_maps_the_required_columns(name: str) -> None:
    headers = _header(FIXTURES / f"{name}_postback_log.csv")
    mapping = get_preset(name).log_map(headers)
    assert {"fired_at", "status_code"} <= set(mapping)
    # a log names the conversion, or the click (linked through the events' click ids)
    ids = {"transaction_id", "click_id"} & set(mapping)
    assert ids or get_preset(name).pair_headers(headers), mapping


def test_everflow_transaction_id_is_the_click() -> None:
    m = get_preset("everflow").column_map(["Conversion ID", "Transaction ID"])
    assert m == {"Conversion ID": ["transaction_id"], "Transaction ID": ["click_id"]}


def test_keitaro_subid_feeds_click_and_transaction() -> None:
    m = get_preset("keitaro").column_map(["Subid", "Status"])
    assert m == {"Subid": ["click_id", "transaction_id"], "Status": ["status"]}


def test_affise_numeric_statuses() -> None:
    p = get_preset("affise")
    assert [p.status_of(v) for v in ("1", "2", "3", "5", " Confirmed ", "x")] == [
        "approved",
        "pending",
        "rejected",
        "pending",
        "approved",
        None,
    ]


def test_every_preset_cites_its_pages() -> None:
    assert all(p.docs and all(d.startswith("https://") for d in p.docs) for p in PRESETS.values())


def test_unknown_preset() -> None:
    with pytest.raises(KeyError, match="unknown source 'evrflow'; valid: everflow"):
        get_preset("evrflow")


def test_detect_nothing() -> None:
    assert detect(["a", "b"]) == (None, 0)
