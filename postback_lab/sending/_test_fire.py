"""Test-fire: render one postback of one rule from real or sample data, fire it once (or
not, with ``dry_run``), show the exact request and response, and log the attempt with the
outcome ``test`` — never counted as delivered, so the real send still happens.

A test carries its own ids: its ``Idempotency-Key`` and signed ``webhook-id`` are
``test:<dispatch id>:<run id>``, never the dispatch id the real send uses, so a partner
that de-duplicates by key never takes the test for the real postback (and drops the real
one). Firing a real transaction of the events (not a made-up sample) reaches the partner
with real values, which a partner that credits by transaction could count: it needs
``real_transaction=True`` (``--real-transaction``), else it is refused naming the
transaction."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
import polars as pl

from .._errors import InputError
from .._util import blocking, render
from ..events import EventsSource
from ..plan import Plan, build_plan
from ..rules import Rule, RuleSet
from ..store import LogSource, LogStore, log_writer, open_log
from ._guard import basic_credentials, mask, masked_urls
from ._http import Engine, fetch, make_transport
from ._request import check_env, prepare, settle
from ._writer import FIELDS, ROW_SCHEMA, Item

#: the log outcome of a test-fire attempt
TEST = "test"


@dataclass(frozen=True)
class TestFire:
    """One test-fired postback: the request as sent (secrets masked) and the answer."""

    __test__: ClassVar[bool] = False  # not a pytest test class where a test imports it

    rule: str
    dispatch_id: str
    transaction_id: str
    method: str
    url: str
    headers: dict[str, str]
    body: str | None
    fired: bool
    status_code: int | None = None
    latency_ms: float | None = None
    error: str | None = None
    response_body: str | None = None
    result: str = "not fired (dry run)"
    accepted: bool = False

    @property
    def ok(self) -> bool:
        """The partner accepted it (a dry run is never ok)."""
        return self.fired and self.accepted

    def __str__(self) -> str:
        lines = [
            f"test-fire of rule {self.rule!r} for transaction {self.transaction_id} "
            f"(dispatch {self.dispatch_id}): {self.result}",
            f"> {self.method} {self.url}",
            *(f"> {k}: {v}" for k, v in self.headers.items()),
        ]
        if self.body is not None:
            lines += ["> ", *(f"> {b}" for b in self.body.splitlines())]
        if self.fired:
            code = self.status_code if self.status_code is not None else "no response"
            took = f" in {self.latency_ms:.0f} ms" if self.latency_ms is not None else ""
            lines.append(f"< {code}{took}" + (f" ({self.error})" if self.error else ""))
            if self.response_body:
                lines += [f"< {b}" for b in self.response_body.splitlines()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        request = pl.DataFrame(
            {
                "part": ["method", "url", *self.headers, "body"],
                "value": [self.method, self.url, *self.headers.values(), self.body or ""],
            }
        )
        answer = pl.DataFrame(
            {
                "part": ["status code", "latency ms", "error", "response (first KiB)"],
                "value": [
                    "" if self.status_code is None else str(self.status_code),
                    "" if self.latency_ms is None else f"{self.latency_ms:.0f}",
                    self.error or "",
                    self.response_body or "",
                ],
            }
        )
        tables = [("Request", request)] + ([("Response", answer)] if self.fired else [])
        return render(f"Test-fire: {self.rule}", self.result, tables)


def test_key(dispatch_id: str, run_id: str) -> str:
    """The ``Idempotency-Key`` and ``webhook-id`` of a test-fire: never the dispatch id."""
    return f"test:{dispatch_id}:{run_id}"


async def test_fire(
    plan: Plan | pl.DataFrame,
    log: LogSource = None,
    *,
    dry_run: bool = False,
    real_transaction: bool = False,
    environ: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    engine: Engine = "aiohttp",
) -> TestFire:
    """Fire the first postback of ``plan`` once, now, whatever its due time, with its own
    test ids, and log the attempt as ``test`` (``dry_run``: show the request, send and
    log nothing). The plan's row is a real transaction: firing it needs
    ``real_transaction=True`` (see the module docstring)."""
    frame = plan.frame if isinstance(plan, Plan) else plan
    if frame.height == 0:
        raise InputError("nothing to test-fire: the plan has no postback")
    if not (dry_run or real_transaction):
        values = frame.row(0, named=True)
        raise InputError(
            f"transaction {values['transaction_id']!r} is a real conversion: a test-fire "
            f"would reach {values['host']} with its real values, and the real send fires it "
            "again. Test with a made-up event (--sample), look with --dry-run, or add "
            "--real-transaction (real_transaction=True) to fire it with test ids"
        )
    return await _fire(plan, log, dry_run, environ, transport, engine)


async def _fire(
    plan: Plan | pl.DataFrame,
    log: LogSource,
    dry_run: bool,
    environ: Mapping[str, str] | None,
    transport: httpx.AsyncBaseTransport | None,
    engine: Engine,
) -> TestFire:
    frame = plan.frame if isinstance(plan, Plan) else plan
    if frame.height == 0:
        raise InputError("nothing to test-fire: the plan has no postback")
    row = frame.head(1).with_columns(masked_urls(pl.col("url")).alias("log_url"))
    secrets = check_env(row, environ) if not dry_run else {}
    values = row.row(0, named=True)
    item = Item(tuple(values[f] for f in FIELDS), 1, 1, datetime.now(UTC))
    show_secrets = dict(secrets)
    store: LogStore | None = None
    owned = False
    run_id = "dry-run"
    if not dry_run:
        store, owned = open_log(log)
        run_id = log_writer(store).start_run(TEST, 1, 0)
    try:
        method, url, headers, body = (
            prepare(item, secrets, test_key(values["dispatch_id"], run_id))
            if not dry_run
            else _unfilled(item, test_key(values["dispatch_id"], run_id))
        )
    except (KeyError, ValueError) as exc:
        if store is not None:
            log_writer(store).finish_run(run_id, "failed", 0, 0, 0)
            if owned:
                store.close()
        raise InputError(f"cannot fill in a secret of rule {values['rule']!r}: {exc}") from exc
    if values["log_url"] != values["url"]:  # user:password@ went out as Basic auth: hide it
        headers_shown = {k: "Basic ***" if k == "Authorization" else v for k, v in headers.items()}
    else:
        headers_shown = headers
    shown = TestFire(
        rule=values["rule"],
        dispatch_id=values["dispatch_id"],
        transaction_id=values["transaction_id"],
        method=method,
        url=_masked(url, show_secrets),
        headers={k: _masked(v, show_secrets) for k, v in headers_shown.items()},
        body=None if body is None else _masked(body, show_secrets),
        fired=False,
    )
    if store is None:
        return shown
    try:
        last = store.last_attempts(row["dispatch_id"]).get(values["dispatch_id"], 0)
        item = Item(item.row, last + 1, 1, item.due)
        pool = make_transport(1, engine, transport)
        fired_at = datetime.now(UTC)
        try:
            o = await fetch(pool, method, url, headers, body, values["timeout_s"])
            o = settle(o, values.get("success"), secrets, basic_credentials(headers))
        finally:
            await pool.aclose()
        error, response = o.error, o.response_body
        logged = pl.DataFrame(
            [
                {
                    "dispatch_id": values["dispatch_id"],
                    "run_id": run_id,
                    "attempt": item.attempt,
                    "rule": values["rule"],
                    "transaction_id": values["transaction_id"],
                    "offer_id": values["offer_id"],
                    "publisher_id": values["publisher_id"],
                    "method": method,
                    "url": values["log_url"],
                    "host": values["host"],
                    "status": values["status"],
                    "due_at": values["due_at"],
                    "fired_at": fired_at,
                    "latency_ms": o.latency_ms,
                    "status_code": o.status_code,
                    "outcome": TEST,
                    "error": error,
                    "response_body": response,
                    "source": "sent",
                    "response_headers": o.response_headers,
                }
            ],
            schema=ROW_SCHEMA,
        )
        store.append(logged, check_attempts=False)
        accepted = o.outcome == "delivered"
        log_writer(store).finish_run(run_id, "completed", 1, 0, 0 if accepted else 1)
    finally:
        if owned:
            store.close()
    verdict = (
        "accepted by the partner (logged as a test: the real send will still happen)"
        if accepted
        else f"not accepted: {error or o.outcome} (logged as a test)"
    )
    return TestFire(
        **{
            **shown.__dict__,
            "fired": True,
            "status_code": o.status_code,
            "latency_ms": o.latency_ms,
            "error": error,
            "response_body": response,
            "result": verdict,
            "accepted": accepted,
        }
    )


test_fire_sync = blocking(
    test_fire,
    """``test_fire`` for scripts; also works inside a running notebook loop.""",
)
# names starting with "test" are not pytest tests where a test module imports them
test_key.__test__ = test_fire.__test__ = test_fire_sync.__test__ = False  # type: ignore[attr-defined]


def sample_events(rule: Rule) -> pl.DataFrame:
    """One made-up event that fires ``rule``: its type, status, first goal, rejection
    reason, offer and publisher, and a value for every column its macros name."""
    status = "approved" if rule.fire_on == "all" else rule.fire_on
    row: dict[str, Any] = {
        "transaction_id": f"test-{rule.name.lower().replace(' ', '-')}",
        "event_type": rule.type,
        "status": status,
        "rejection_reason": _first(rule.rejection_reasons) if status == "rejected" else None,
        "goal": _first(rule.goals),
        "occurred_at": datetime.now(UTC).replace(microsecond=0),
        "click_id": "test-click-id",
        "external_transaction_id": "test-partner-click-id",
        "offer_id": _first(rule.offers) or "1",
        "publisher_id": _first(rule.publishers) or "1",
        "payout": 1.0,
        "revenue": 2.0,
        "currency": "USD",
        **{f"sub{n}": f"test-sub{n}" for n in range(1, 6)},
    }
    for col in rule.columns:
        row.setdefault(col, "test")
    return pl.DataFrame([row])


async def test_rule(
    rule: Rule,
    events: EventsSource | None = None,
    *,
    transaction_id: str | None = None,
    log: LogSource = None,
    dry_run: bool = False,
    real_transaction: bool = False,
    environ: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    engine: Engine = "aiohttp",
) -> TestFire:
    """Test-fire ``rule`` once, now, with its own test ids (``Idempotency-Key`` and
    ``webhook-id`` ``test:<dispatch id>:<run id>``), and log the attempt with the outcome
    ``test`` (never delivered: the real send still happens). Without events: for a
    made-up event that fires it. With ``events``: for ``transaction_id``, a real
    conversion, which needs ``real_transaction=True`` (else refused; ``dry_run`` shows
    the request without sending). When the transaction does not fire the rule the error
    says why, rule by rule condition. ``postback-lab test`` runs this."""
    rules = RuleSet((rule,), rule.source)
    if events is None:
        if transaction_id is not None:
            raise InputError("a transaction id needs the events it comes from (--events)")
        plan = build_plan(sample_events(rule), rules)
        return await _fire(plan, log, dry_run, environ, transport, engine)  # made up: no flag
    else:
        plan = build_plan(events, rules)
        if transaction_id is None:
            raise InputError("say which transaction to test-fire (--transaction-id), or --sample")
        plan = replace(plan, frame=plan.frame.filter(pl.col("transaction_id") == transaction_id))
        if len(plan) == 0:
            why = plan.why(transaction_id)
            raise InputError(
                f"transaction {transaction_id!r} does not fire rule {rule.name!r}: "
                + "; ".join(dict.fromkeys(why.frame["verdict"].to_list()) or ["no such events"])
            )
    return await test_fire(
        plan,
        log,
        dry_run=dry_run,
        real_transaction=real_transaction,
        environ=environ,
        transport=transport,
        engine=engine,
    )


test_rule_sync = blocking(
    test_rule,
    """``test_rule`` for scripts; also works inside a running notebook loop.""",
)
test_rule.__test__ = test_rule_sync.__test__ = False  # type: ignore[attr-defined]


def _unfilled(item: Item, key: str) -> tuple[str, str, dict[str, str], str | None]:
    """The request of a dry run: secrets stay as their {env:NAME} placeholders."""
    headers: dict[str, str] = json.loads(item.get("headers") or "{}")
    headers["Idempotency-Key"] = key
    return item.get("method"), item.get("url"), headers, item.get("body")


def _masked(text: str, secrets: Mapping[str, str]) -> str:
    out = mask(text, secrets)
    return text if out is None else out


def _first(values: Any) -> Any:
    return values[0] if values else None
