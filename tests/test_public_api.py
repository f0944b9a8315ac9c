import subprocess
import sys

import pytest

import postback_lab as pbl
from postback_lab.cli import main

EXPECTED = set(
    [
        "AuditReport",
        "BackfillResult",
        "DeliveryError",
        "Events",
        "RulesSource",
        "PlanSource",
        "LogSource",
        "EventsSource",
        "EventsError",
        "Explanation",
        "ImportResult",
        "InputError",
        "LogImportError",
        "LogStore",
        "Plan",
        "PlanDiff",
        "PlanError",
        "PostbackLabError",
        "Receiver",
        "Reconciliation",
        "Breaker",
        "Replay",
        "Retry",
        "Rule",
        "RuleSet",
        "RuleValidationError",
        "SendOptions",
        "SendResult",
        "StoreError",
        "StoreLockedError",
        "TransactionExplanation",
        "__version__",
        "audit",
        "backfill",
        "backfill_sync",
        "build_plan",
        "explore",
        "import_log",
        "read_events",
        "read_plan",
        "sink_plan",
        "read_rules",
        "reconcile",
        "send",
        "send_sync",
        "test_rule",
        "test_rule_sync",
    ]
)


def test_all_is_exactly_the_public_api():
    assert set(pbl.__all__) == EXPECTED
    assert pbl.__all__ == sorted(pbl.__all__)
    for name in pbl.__all__:
        assert getattr(pbl, name) is not None


def test_errors_share_one_root():
    for name in pbl.__all__:
        obj = getattr(pbl, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, pbl.PostbackLabError)


HEAVY = ("polars", "duckdb", "httpx", "aiohttp", "pyarrow", "numpy", "altair", "deltalake")


def _loaded_after(code: str) -> list[str]:
    """The heavy libraries a fresh interpreter has loaded after running ``code``."""
    probe = f"{code}\nimport sys; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    return eval(out.stdout.strip().splitlines()[-1])


def test_importing_the_package_loads_no_dataframe_database_or_http_library():
    assert _loaded_after("import postback_lab") == []
    # the public names load on first use, and are the stages' own objects
    assert "polars" in _loaded_after("import postback_lab as p; p.read_events")


def test_help_and_version_load_no_dataframe_database_or_http_library():
    for args in (["--help"], ["--version"], ["plan", "--help"], ["log", "show", "--help"]):
        code = (
            "import contextlib, io\nfrom postback_lab.cli import main\n"
            f"with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            f"    main({args!r})"
        )
        assert _loaded_after(code) == [], args


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out == f"postback-lab {pbl.__version__}\n"


def test_dir_lists_the_public_names_before_and_after_they_load():
    before = set(dir(pbl))
    assert set(pbl.__all__) <= before
    pbl.Plan  # noqa: B018  (loads the plan stage)
    assert set(dir(pbl)) >= before
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        pbl.nope  # noqa: B018


def test_public_names_starting_with_test_are_not_collected_by_pytest():
    """A test module that imports them would otherwise run them as tests."""
    import postback_lab.sending as sending

    names = [n for n in (*pbl.__all__, *sending.__all__) if n.startswith(("test", "Test"))]
    assert sorted(set(names)) == [
        "TestFire",
        "test_fire",
        "test_fire_sync",
        "test_rule",
        "test_rule_sync",
    ]
    for name in names:
        obj = getattr(pbl, name, None) or getattr(sending, name)
        assert obj.__test__ is False, name
