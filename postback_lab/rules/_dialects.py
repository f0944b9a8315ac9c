"""Macro dialects: a postback URL pasted from another platform, translated to our syntax.

Each platform writes its macros its own way (CAKE ``#s2#``, TUNE ``{aff_sub2}``, Keitaro
``{subid}``, ``{_raw}`` and ``{status:lead=0 sale=1}``, Affise ``{sum}``) and some reuse
our names with another meaning (Everflow's and TUNE's ``{transaction_id}`` is their click
id). ``translate`` rewrites a template into ours and explains every change; a macro the
platform has but we cannot fill is an error naming the closest column, never a silent
empty value. ``foreign_hint`` tells, for a rule without a dialect, which platform a
strange-looking macro comes from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["DIALECTS", "Translation", "foreign_hint", "translate"]

_ISO = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class Translation:
    """A template in our syntax, what was changed and why, and what could not be mapped."""

    dialect: str
    original: str
    text: str
    notes: tuple[str, ...]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        lines = [f"{self.dialect}: {self.original}", f"  -> {self.text}"]
        lines += [f"  {n}" for n in self.notes]
        lines += [f"  error: {p}" for p in self.problems]
        return "\n".join(lines)


def _fmt(fmt: str) -> str:
    return "{occurred_at|format:" + fmt + "}"


@dataclass(frozen=True)
class _Dialect:
    name: str
    title: str
    docs: str
    #: token regex; group 1 is the token's inside
    pattern: re.Pattern[str]
    #: their macro (lower case) -> (our macro text, why)
    macros: dict[str, tuple[str, str]]
    #: a custom rewrite for tokens with parameters (Keitaro), or None
    special: Callable[[str], tuple[str, str] | None] | None = None


def _subs(fmt: str, n: int = 5) -> dict[str, tuple[str, str]]:
    return {fmt.format(i=i): (f"{{sub{i}}}", f"sub id {i}") for i in range(1, n + 1)}


CAKE = _Dialect(
    "cake",
    "CAKE",
    "https://support.getcake.com/support/solutions/articles/5000545788",
    re.compile(r"#([A-Za-z0-9_]+)#"),
    {
        "leadid": ("{transaction_id}", "CAKE's conversion id"),
        "affid": ("{publisher_id}", "affiliate id"),
        "oid": ("{offer_id}", "offer id"),
        "tid": ("{external_transaction_id}", "the advertiser's transaction id (t=)"),
        "price": ("{payout}", "CAKE calls the payout 'price'"),
        **_subs("s{i}"),
        "utcunixtime": (_fmt("%s"), "conversion time as Unix seconds"),
        "sourcetime": (_fmt("%Y-%m-%dT%H:%M:%S"), "conversion timestamp"),
    },
)

TUNE = _Dialect(
    "tune",
    "TUNE (HasOffers)",
    "https://help.tune.com/hasoffers/passing-values-to-an-offer-url/",
    re.compile(r"\{([A-Za-z0-9_]+)\}"),
    {
        "transaction_id": ("{click_id}", "TUNE's transaction_id is its click id"),
        "aff_sub": ("{sub1}", "affiliate sub id 1"),
        **{f"aff_sub{i}": (f"{{sub{i}}}", f"affiliate sub id {i}") for i in range(2, 6)},
        "affiliate_id": ("{publisher_id}", "affiliate id"),
        "aff_id": ("{publisher_id}", "affiliate id"),
        "offer_id": ("{offer_id}", "offer id"),
        "payout": ("{payout}", "payout"),
        "sale_amount": ("{revenue}", "sale amount"),
        "currency": ("{currency}", "currency"),
        "goal_id": ("{goal}", "goal"),
        "datetime": (_fmt(_ISO), "conversion date and time"),
        "date": (_fmt("%Y-%m-%d"), "conversion date"),
    },
)

EVERFLOW = _Dialect(
    "everflow",
    "Everflow",
    "https://developers.everflow.io/api-reference/get-networksreportingeventspertransaction",
    re.compile(r"\{([A-Za-z0-9_]+)\}"),
    {
        "transaction_id": ("{click_id}", "Everflow's transaction_id is its click id"),
        "conversion_id": ("{transaction_id}", "Everflow's conversion id"),
        **_subs("sub{i}"),
        "affiliate_id": ("{publisher_id}", "partner id"),
        "offer_id": ("{offer_id}", "offer id"),
        "payout": ("{payout}", "payout"),
        "payout_amount": ("{payout}", "payout"),
        "sale_amount": ("{revenue}", "sale amount"),
        "revenue": ("{revenue}", "revenue"),
        "currency": ("{currency}", "currency"),
        "event_name": ("{goal}", "event name"),
        "event": ("{goal}", "event name"),
    },
)

AFFISE = _Dialect(
    "affise",
    "Affise",
    "https://help-center.affise.com/en/articles/6483741-affiliate-postback-url-macros",
    re.compile(r"\{([A-Za-z0-9_]+)\}"),
    {
        "sum": ("{payout}", "Affise calls the payout 'sum'"),
        "offerid": ("{offer_id}", "offer id"),
        "transactionid": ("{external_transaction_id}", "the advertiser's conversion id"),
        "status": (
            "{status|map:approved=1,pending=2,rejected=3}",
            "Affise sends statuses as numbers (1 approved, 2 pending, 3 declined)",
        ),
        "goal": ("{goal}", "goal"),
        "currency": ("{currency}", "currency"),
        **_subs("sub{i}"),
        "date": (_fmt(_ISO), "conversion date and time"),
        "date_only": (_fmt("%Y-%m-%d"), "conversion date"),
        "time": (_fmt("%H:%M:%S"), "conversion time"),
        "timestamp": (_fmt("%s"), "conversion time as Unix seconds"),
    },
)


# PHP date() letters Keitaro uses -> strftime
_PHP = {
    "Y": "%Y", "y": "%y", "m": "%m", "n": "%-m", "d": "%d", "j": "%-d", "H": "%H",
    "G": "%-H", "i": "%M", "s": "%S", "U": "%s", "D": "%a", "M": "%b", "F": "%B",
    "A": "%p", "a": "%P", "h": "%I", "g": "%-I", "u": "%6f", "v": "%3f", "e": "%Z",
    "T": "%Z", "P": "%:z", "O": "%z", "c": "%Y-%m-%dT%H:%M:%S%:z", "N": "%u", "w": "%w",
}  # fmt: skip
_KEITARO_STATUS = {"lead": "pending", "sale": "approved", "rejected": "rejected"}


_KEITARO_MACROS: dict[str, tuple[str, str]] = {
    "subid": ("{click_id}", "Keitaro's subid is its click id"),
    "external_id": ("{external_transaction_id}", "the traffic source's click id"),
    "tid": ("{transaction_id}", "transaction id"),
    "revenue": ("{payout}", "conversion revenue passed on as the payout"),
    "status": (
        "{status|map:pending=lead,approved=sale,rejected=rejected}",
        "Keitaro status names lead/sale/rejected",
    ),
    **_subs("sub_id_{i}"),
}


def _php_to_strftime(fmt: str) -> str:
    out, escape = [], False
    for ch in fmt:
        if escape:
            out.append("%%" if ch == "%" else ch)
            escape = False
        elif ch == "\\":
            escape = True
        else:
            out.append(_PHP.get(ch, "%%" if ch == "%" else ch))
    return "".join(out)


def _keitaro_special(inside: str) -> tuple[str, str] | None:
    raw = inside.startswith("_")
    body = inside[1:] if raw else inside
    name, sep, params = body.partition(":")
    prefix = "raw:" if raw else ""
    if name == "status" and sep:
        pairs = []
        for item in params.split():
            k, eq, v = item.partition("=")
            if not eq:
                continue
            ours = _KEITARO_STATUS.get(k.strip().lower())
            if ours is not None:
                pairs.append(f"{ours}={v.strip()}")
        return (
            "{" + prefix + "status|map:" + ",".join(pairs) + "}",
            "Keitaro status names lead/sale/rejected are our pending/approved/rejected",
        )
    if name == "date":
        fmt, _, tz = params.partition(",")
        text = _php_to_strftime(fmt.strip() or "Y-m-d H:i:s")
        tail = f"|tz:{tz.strip()}" if tz.strip() else ""
        return (
            "{" + prefix + "occurred_at|format:" + text + tail + "}",
            "Keitaro's {date} is the click date; postback_lab uses the conversion time",
        )
    if raw and not sep:
        hit = _KEITARO_MACROS.get(body.lower())
        if hit is not None:
            return "{raw:" + hit[0][1:], hit[1] + " (raw, not encoded)"
        return "{raw:" + body + "}", "raw value (not encoded)"
    return None


KEITARO = _Dialect(
    "keitaro",
    "Keitaro",
    "https://docs.keitaro.io/en/campaigns-and-streams/s2s-postback-placeholders.html",
    re.compile(r"\{([^{}]+)\}"),
    _KEITARO_MACROS,
    _keitaro_special,
)

_TRACKER = {
    "externalid": ("{external_transaction_id}", "the traffic source's click id"),
    "external_id": ("{external_transaction_id}", "the traffic source's click id"),
    "clickid": ("{click_id}", "the tracker's click id"),
    "payout": ("{payout}", "payout"),
    "revenue": ("{payout}", "conversion revenue passed on as the payout"),
    "txid": ("{transaction_id}", "transaction id"),
    "transaction_id": ("{transaction_id}", "transaction id"),
    "currency": ("{currency}", "currency"),
}
VOLUUM = _Dialect(
    "voluum",
    "Voluum",
    "https://doc.voluum.com/en/traffic_source_postback_url.html",
    re.compile(r"\{([A-Za-z0-9_.]+)\}"),
    _TRACKER,
)
BINOM = _Dialect(
    "binom",
    "Binom",
    "https://docs.binom.org/conv-to-source-v2.php",
    re.compile(r"\{([A-Za-z0-9_.]+)\}"),
    {
        **_TRACKER,
        "cnv_status": ("{status}", "conversion status"),
        "cnv_currency": ("{currency}", "currency of the conversion"),
    },
)

DIALECTS: dict[str, _Dialect] = {
    d.name: d for d in (CAKE, TUNE, EVERFLOW, AFFISE, KEITARO, VOLUUM, BINOM)
}
#: integr8's macros are ours (its columns are the events contract's)
IDENTITY = ("integr8", "postback_lab")


def _closest(name: str, columns: Iterable[str]) -> str | None:
    import difflib

    match = difflib.get_close_matches(name, list(columns), n=1, cutoff=0.5)
    return match[0] if match else None


def _norm(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def translate(text: str, dialect: str, *, columns: Iterable[str] | None = None) -> Translation:
    """``text`` (a URL, header or body written for ``dialect``) in our macro syntax.

    A platform macro we know is rewritten (and noted); one we do not know is kept when the
    events have a column of that name (``columns``), else reported in ``problems`` with
    the closest column."""
    key = dialect.strip().lower()
    if key in IDENTITY:
        return Translation(key, text, text, (), ())
    if key not in DIALECTS:
        valid = ", ".join([*DIALECTS, *IDENTITY])
        raise KeyError(f"unknown dialect {dialect!r}; valid: {valid}")
    d = DIALECTS[key]
    cols = list(columns) if columns is not None else None
    by_norm = {_norm(c): c for c in cols} if cols is not None else {}
    notes: list[str] = []
    problems: list[str] = []

    def sub(m: re.Match[str]) -> str:
        token, inside = m.group(0), m.group(1)
        if d.special is not None and (hit := d.special(inside)) is not None:
            ours, why = hit
        elif (known := d.macros.get(inside.strip().lower())) is not None:
            ours, why = known
        elif cols is not None and _norm(inside) in by_norm:
            ours, why = "{" + by_norm[_norm(inside)] + "}", "the events column of that name"
        else:
            near = _closest(inside, cols if cols is not None else _OURS)
            hint = f"; closest column: {{{near}}}" if near else ""
            problems.append(
                f"{d.title} macro {token} has no postback_lab column{hint} "
                "(map a column with that name when reading the events, or rewrite it)"
            )
            return token
        if ours != token:
            notes.append(f"{token} -> {ours}: {why}")
        return ours

    out = d.pattern.sub(sub, text)
    return Translation(key, text, out, tuple(dict.fromkeys(notes)), tuple(problems))


_OURS = (
    "transaction_id", "event_type", "status", "rejection_reason", "goal", "occurred_at",
    "click_id", "external_transaction_id", "offer_id", "publisher_id", "payout", "revenue",
    "currency", "sub1", "sub2", "sub3", "sub4", "sub5",
)  # fmt: skip

#: macro names that only make sense on one platform -> that platform
_FOREIGN = {
    **{m: "tune" for m in ("aff_sub", "aff_sub2", "aff_sub3", "aff_sub4", "aff_sub5")},
    **{m: "affise" for m in ("sum", "offerid", "transactionid")},
    **{m: "keitaro" for m in ("subid", "external_id", "tid", "sub_id_1", "sub_id_2")},
    **{m: "voluum" for m in ("externalid", "clickid", "txid")},
}


def foreign_hint(template: str) -> str | None:
    """For a rule without a dialect: a sentence naming the platform whose syntax a macro
    of ``template`` looks like, or None when nothing looks foreign."""
    cake = re.search(r"#([A-Za-z0-9_]+)#", template)
    if cake:
        return (
            f"#{cake.group(1)}# is CAKE token syntax (everything after '#' would be a URL "
            "fragment, never sent): add 'dialect: cake' to translate it"
        )
    for inside in re.findall(r"\{([^{}]+)\}", template):
        if inside.startswith("_") or re.match(r"(status|date):", inside):
            return f"{{{inside}}} is Keitaro syntax: add 'dialect: keitaro' to translate it"
        name = inside.split("|", 1)[0].strip().lower()
        if name in _FOREIGN:
            p = _FOREIGN[name]
            return (
                f"{{{inside}}} is a {DIALECTS[p].title} macro: add 'dialect: {p}' to translate it"
            )
    return None
