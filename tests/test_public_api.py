import postback_lab as pbl

EXPECTED = set(
    [
        "AuditReport",
        "BackfillResult",
        "DeliveryError",
        "Events",
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
        "write_plan",
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
