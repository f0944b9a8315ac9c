"""Platform presets: how each affiliate platform writes its conversion and postback-log
exports, so a file downloaded from it reads with no hand mapping.

A preset names the platform's column headers (mapped onto ours), its status spellings, its
date layouts and CSV conventions, the columns of its postback-log export, and where each
fact comes from. ``auto`` picks the preset whose characteristic headers a file has.

Where a platform's own documentation could be read, its page is cited; where it could not
(Voluum, Binom), the mapping follows the platform's usual export and says so. Unknown
columns are never dropped: they stay in the frame and are usable as macros.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["PRESETS", "Preset", "detect", "get_preset", "preset_names"]


def _norm(name: str) -> str:
    """``'Sub ID 1 '`` -> ``'sub_id_1'``: the form preset headers are written in."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


@dataclass(frozen=True)
class Preset:
    """One platform's export conventions. Header keys are normalised (lower case, ``_``
    for anything but letters and digits); values are our column names."""

    name: str
    title: str
    docs: tuple[str, ...]
    #: export header -> canonical events column; several headers may feed one column
    #: (first present wins) and one header may feed several columns
    columns: Mapping[str, tuple[str, ...]]
    #: the platform's status values (lower case) -> approved | rejected | pending
    statuses: Mapping[str, str] = field(default_factory=dict)
    #: status of every row when the export has no status column (trackers like Voluum)
    default_status: str | None = None
    #: chrono layouts tried first for the time columns, in order
    date_formats: tuple[str, ...] = ()
    #: CSV separator when the platform always uses one (None: sniffed from the header)
    separator: str | None = None
    #: numbers written with a decimal comma ("1.250,00")
    decimal_comma: bool = False
    #: postback-log export header -> our log column
    log_columns: Mapping[str, str] = field(default_factory=dict)
    #: headers that only this platform's exports have (for ``auto``)
    signature: tuple[str, ...] = ()
    note: str = ""
    #: where the platform numbers conversions within a click (Keitaro's TID): the click
    #: header and the number header, whose pair is the conversion's ``transaction_id``
    #: (``click:number``; the click alone when the number is blank)
    transaction_pair: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    #: a header whose true values (``true``, ``1``, ``yes``) mark a row as an ``event``
    #: (a post-conversion event, its name the goal) rather than a ``conversion``
    event_flag: str | None = None
    #: canonical columns whose cells read ``(101) Crypto App Install``: the id in
    #: parentheses is the value (the name after it is only a label)
    labelled_ids: tuple[str, ...] = ()

    def pair_headers(self, headers: Iterable[str]) -> tuple[str, str] | None:
        """The file's (click, number) headers of ``transaction_pair`` when it has both."""
        if self.transaction_pair is None:
            return None
        by_norm: dict[str, str] = {}
        for h in headers:
            by_norm.setdefault(_norm(h), h)
        click, number = (
            next((by_norm[k] for k in keys if k in by_norm), None) for keys in self.transaction_pair
        )
        return (click, number) if click is not None and number is not None else None

    def header(self, key: str, headers: Iterable[str]) -> str | None:
        """The file's header that normalises to ``key`` (None: it has none)."""
        return next((h for h in headers if _norm(h) == key), None)

    def column_map(self, headers: Iterable[str]) -> dict[str, list[str]]:
        """For the headers a file has: source header -> the canonical columns it feeds
        (each canonical column from the first header that has it)."""
        out: dict[str, list[str]] = {}
        for target, srcs in self.sources(headers).items():
            out.setdefault(srcs[0], []).append(target)
        return out

    def sources(self, headers: Iterable[str]) -> dict[str, list[str]]:
        """For the headers a file has: canonical column -> the headers that can fill it,
        in order (a row empty in the first is filled from the next, e.g. Voluum's optional
        transaction id falls back to the click id)."""
        by_norm: dict[str, str] = {}
        for h in headers:
            by_norm.setdefault(_norm(h), h)
        out: dict[str, list[str]] = {}
        for key, targets in self.columns.items():
            src = by_norm.get(key)
            if src is None:
                continue
            for t in targets:
                if src not in out.setdefault(t, []):
                    out[t].append(src)
        return out

    def log_map(self, headers: Iterable[str]) -> dict[str, str]:
        """For a postback-log export: log column -> source header."""
        by_norm: dict[str, str] = {}
        for h in headers:
            by_norm.setdefault(_norm(h), h)
        out: dict[str, str] = {}
        for key, target in self.log_columns.items():
            src = by_norm.get(key)
            if src is not None and target not in out:
                out[target] = src
        return out

    def status_of(self, value: str | None) -> str | None:
        """The canonical status of one of the platform's values (None if unknown)."""
        if value is None:
            return None
        return self.statuses.get(value.strip().lower())


def _subs(prefix: str, n: int = 5, start: int = 1) -> dict[str, tuple[str, ...]]:
    return {f"{prefix}{i}": (f"sub{i}",) for i in range(start, start + n)}


_COMMON_STATUSES = {
    "approved": "approved",
    "confirmed": "approved",
    "pending": "pending",
    "on hold": "pending",
    "hold": "pending",
    "rejected": "rejected",
    "declined": "rejected",
    "invalid": "rejected",
}
_ISO = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M")
_US = ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M")


EVERFLOW = Preset(
    name="everflow",
    title="Everflow",
    docs=(
        "https://developers.everflow.io/api-reference/get-networksreportingeventspertransaction",
        "https://developers.everflow.io/webhooks/conversion-webhooks",
        "https://helpdesk.everflow.io/collaborator/understanding-reports-analytics-for-partners",
    ),
    columns={
        # Everflow's "transaction id" is its click id; the conversion has its own id
        "conversion_id": ("transaction_id",),
        "transaction_id": ("click_id",),
        "conversion_date": ("occurred_at",),
        "conversion_unix_timestamp": ("occurred_at",),
        "date": ("occurred_at",),
        "conversion_status": ("status",),
        "status": ("status",),
        "offer_id": ("offer_id",),
        "network_offer_id": ("offer_id",),
        "partner_id": ("publisher_id",),
        "affiliate_id": ("publisher_id",),
        "network_affiliate_id": ("publisher_id",),
        "event": ("goal",),
        "event_name": ("goal",),
        "payout": ("payout",),
        "revenue": ("revenue",),
        "currency": ("currency",),
        "currency_id": ("currency",),
        "error_message": ("rejection_reason",),
        **_subs("sub_id_"),
        **_subs("sub"),
    },
    statuses={**_COMMON_STATUSES},
    date_formats=_ISO + _US,
    event_flag="is_event",
    log_columns={
        "date": "fired_at",
        "fired_at": "fired_at",
        # the Partner Postback Report names the conversion and Everflow's click
        "conversion_id": "transaction_id",
        "transaction_id": "click_id",
        "response_code": "status_code",
        "http_status": "status_code",
        "url": "url",
        "postback_url": "url",
        "response": "response_body",
        "error": "error",
        "offer_id": "offer_id",
        "partner_id": "publisher_id",
        "affiliate_id": "publisher_id",
    },
    signature=("conversion_id", "sub_id_1", "partner_id", "conversion_unix_timestamp"),
    note="Transaction ID is Everflow's click id: it becomes click_id, and the conversion id "
    "becomes transaction_id (dispatch ids then follow conversions, not clicks); rows with "
    "is_event=true are events, their event name the goal.",
)

TUNE = Preset(
    name="tune",
    title="TUNE (HasOffers)",
    docs=(
        "https://developers.tune.com/network-models/conversionreport/",
        "https://help.tune.com/hasoffers/passing-values-to-an-offer-url/",
    ),
    columns={
        "tune_event_id": ("transaction_id",),
        "conversion_id": ("transaction_id",),
        "stat_id": ("transaction_id",),
        "stat_tune_event_id": ("transaction_id",),
        "transaction_id": ("click_id",),
        "stat_transaction_id": ("click_id",),
        "stat_ad_id": ("click_id",),
        "affiliate_click_id": ("external_transaction_id",),
        "stat_affiliate_click_id": ("external_transaction_id",),
        "date_time": ("occurred_at",),
        "datetime": ("occurred_at",),
        "stat_datetime": ("occurred_at",),
        "status": ("status",),
        "stat_status": ("status",),
        "offer_id": ("offer_id",),
        "stat_offer_id": ("offer_id",),
        "affiliate_id": ("publisher_id",),
        "stat_affiliate_id": ("publisher_id",),
        "goal_name": ("goal",),
        "goal_id": ("goal",),
        "payout": ("payout",),
        "stat_payout": ("payout",),
        "revenue": ("revenue",),
        "stat_revenue": ("revenue",),
        "sale_amount": ("revenue",),
        "currency": ("currency",),
        "stat_currency": ("currency",),
        "status_code": ("rejection_reason",),
        "stat_status_code": ("rejection_reason",),
        "aff_sub": ("sub1",),
        "affiliate_sub_id": ("sub1",),
        "aff_sub_id": ("sub1",),
        **{f"aff_sub_{i}": (f"sub{i}",) for i in range(1, 6)},
        **{f"aff_sub{i}": (f"sub{i}",) for i in range(2, 6)},
        **{f"stat_affiliate_info{i}": (f"sub{i}",) for i in range(1, 6)},
    },
    statuses={**_COMMON_STATUSES},
    date_formats=_ISO,
    log_columns={
        "date": "fired_at",
        "datetime": "fired_at",
        "tune_event_id": "transaction_id",
        "conversion_id": "transaction_id",
        "stat_tune_event_id": "transaction_id",
        "transaction_id": "click_id",
        "stat_transaction_id": "click_id",
        "http_status": "status_code",
        "response_code": "status_code",
        "url": "url",
        "response": "response_body",
        "offer_id": "offer_id",
        "affiliate_id": "publisher_id",
    },
    signature=("aff_sub", "aff_sub_2", "tune_event_id", "stat_affiliate_info1", "stat_ad_id"),
    note="TUNE's transaction_id is its click/session id: it becomes click_id; the conversion "
    "(tune_event_id) becomes transaction_id.",
)

CAKE = Preset(
    name="cake",
    title="CAKE",
    docs=("https://support.getcake.com/support/solutions/articles/5000545788",),
    columns={
        "conversion_id": ("transaction_id",),
        "lead_id": ("transaction_id",),
        "transaction_id": ("external_transaction_id",),
        "request_session_id": ("click_id",),
        "conversion_date": ("occurred_at",),
        "last_updated": ("occurred_at",),
        "disposition": ("status",),
        "conversion_status": ("status",),
        "status": ("status",),
        "disposition_reason": ("rejection_reason",),
        "offer_id": ("offer_id",),
        "affiliate_id": ("publisher_id",),
        "price": ("payout",),
        "paid": ("payout",),
        "received": ("revenue",),
        "currency": ("currency",),
        "event_name": ("goal",),
        **_subs("sub_id_"),
        **{f"s{i}": (f"sub{i}",) for i in range(1, 6)},
    },
    statuses={**_COMMON_STATUSES, "returned": "rejected", "scrubbed": "rejected"},
    date_formats=_US + _ISO,
    log_columns={
        "date": "fired_at",
        "pixel_date": "fired_at",
        "conversion_id": "transaction_id",
        "lead_id": "transaction_id",
        "request_session_id": "click_id",
        "response_code": "status_code",
        "url": "url",
        "pixel_url": "url",
        "response": "response_body",
        "offer_id": "offer_id",
        "affiliate_id": "publisher_id",
    },
    signature=("disposition", "request_session_id", "received", "price"),
    note="CAKE writes dates month first (11/3/2026 2:25:10 PM), money with its symbol "
    "($1,018.50) and calls the payout 'price'; a blank Disposition falls back to the "
    "Conversion Status column.",
)

KEITARO = Preset(
    name="keitaro",
    title="Keitaro",
    docs=("https://docs.keitaro.io/en/campaigns-and-streams/s2s-postback-placeholders.html",),
    columns={
        # the subid is Keitaro's click id; with the tid (the conversion's number within
        # the click) it is the conversion's key, alone when there is no tid
        "subid": ("click_id", "transaction_id"),
        "sub_id": ("click_id", "transaction_id"),
        "external_id": ("external_transaction_id",),
        "postback_datetime": ("occurred_at",),
        "conversion_datetime": ("occurred_at",),
        "datetime": ("occurred_at",),
        "status": ("status",),
        "offer_id": ("offer_id",),
        "offer": ("offer_id",),
        # the traffic source receives the tracker's postbacks: it is the publisher; the
        # affiliate network stands in when the export has no traffic source
        "traffic_source_id": ("publisher_id",),
        "traffic_source": ("publisher_id",),
        "ts_id": ("publisher_id",),
        "ts": ("publisher_id",),
        "source": ("publisher_id",),
        "affiliate_network_id": ("publisher_id",),
        "affiliate_network": ("publisher_id",),
        "revenue": ("payout",),
        "currency": ("currency",),
        **{f"sub_id_{i}": (f"sub{i}",) for i in range(1, 6)},
    },
    statuses={
        "lead": "pending",
        "sale": "approved",
        "rejected": "rejected",
        "rebill": "approved",
        "trash": "rejected",
        **_COMMON_STATUSES,
    },
    date_formats=_ISO,
    log_columns={
        "datetime": "fired_at",
        "date": "fired_at",
        "subid": "click_id",
        "sub_id": "click_id",
        "status": "status",
        "postback_url": "url",
        "url": "url",
        "response_code": "status_code",
        "http_code": "status_code",
        "response": "response_body",
    },
    signature=("subid", "postback_datetime", "original_status", "sub_id_1"),
    transaction_pair=(("subid", "sub_id"), ("tid", "transaction_id")),
    note="Keitaro statuses: lead -> pending, sale -> approved, rejected (trash) -> rejected. "
    "TID numbers conversions within one click (Subid): a conversion is the pair "
    "'subid:tid' (the subid alone without a tid); the traffic source or affiliate network "
    "is the publisher.",
)

AFFISE = Preset(
    name="affise",
    title="Affise",
    docs=(
        "https://help-center.affise.com/en/articles/6483741-affiliate-postback-url-macros",
        "https://help-center.affise.com/en/articles/6476530-affiliate-postbacks-in-statistics",
    ),
    columns={
        "conversion_id": ("transaction_id",),
        "id": ("transaction_id",),
        "action_id": ("transaction_id",),
        "click_id": ("click_id",),
        "clickid": ("click_id",),
        "transaction_id": ("external_transaction_id",),
        "transactionid": ("external_transaction_id",),
        "created_at": ("occurred_at",),
        "date": ("occurred_at",),
        "updated_at": ("occurred_at",),
        "status": ("status",),
        "offer_id": ("offer_id",),
        "offerid": ("offer_id",),
        "offer": ("offer_id",),
        "partner_id": ("publisher_id",),
        "affiliate_id": ("publisher_id",),
        "pid": ("publisher_id",),
        "partner": ("publisher_id",),
        "goal": ("goal",),
        "goal_value": ("goal",),
        "payouts": ("payout",),
        "payout": ("payout",),
        "sum": ("payout",),
        "revenue": ("revenue",),
        "income": ("revenue",),
        "currency": ("currency",),
        "comment": ("rejection_reason",),
        **_subs("sub"),
    },
    statuses={
        "1": "approved",
        "2": "pending",
        "3": "rejected",
        "5": "pending",  # "approved and put on hold": not yet payable
        "confirmed": "approved",
        "not_found": "rejected",
        **_COMMON_STATUSES,
    },
    date_formats=_ISO,
    log_columns={
        "date": "fired_at",
        "created_at": "fired_at",
        "conversion_id": "transaction_id",
        "action_id": "transaction_id",
        "click_id": "click_id",
        "clickid": "click_id",
        "offer": "offer_id",
        "partner": "publisher_id",
        "http_code": "status_code",
        "url": "url",
        "postback_url": "url",
        "response": "response_body",
        "offer_id": "offer_id",
        "partner_id": "publisher_id",
        "affiliate_id": "publisher_id",
        "status": "status",
    },
    signature=("payouts", "partner_id", "goal_value", "action_id"),
    labelled_ids=("offer_id", "publisher_id"),
    note="Affise numeric statuses: 1 approved, 2 pending, 3 declined, 5 hold (pending); "
    "cells like '(101) Crypto App Install' hold the id 101.",
)

VOLUUM = Preset(
    name="voluum",
    title="Voluum",
    docs=(
        "https://doc.voluum.com/en/submitting_postback_url.html",
        "https://doc.voluum.com/en/traffic_source_postback_url.html",
    ),
    columns={
        "transaction_id": ("transaction_id",),
        "txid": ("transaction_id",),  # the postback's transaction id parameter
        "click_id": ("click_id", "transaction_id"),
        "cid": ("click_id", "transaction_id"),  # the postback's click id parameter
        "external_id": ("external_transaction_id",),
        "postback_timestamp": ("occurred_at",),
        "conversion_timestamp": ("occurred_at",),
        "offer_id": ("offer_id",),
        "traffic_source_id": ("publisher_id",),
        "traffic_source": ("publisher_id",),
        "conversion_type": ("goal",),
        "payout": ("payout",),
        "revenue": ("payout",),
        "currency": ("currency",),
        **{f"custom_variable_{i}": (f"sub{i}",) for i in range(1, 6)},
        **{f"v{i}": (f"sub{i}",) for i in range(1, 6)},
    },
    statuses={**_COMMON_STATUSES},
    default_status="approved",
    date_formats=_ISO,
    log_columns={
        "timestamp": "fired_at",
        "transaction_id": "transaction_id",
        "click_id": "click_id",
        "url": "url",
        "response_status": "status_code",
        "status_code": "status_code",
        "response": "response_body",
    },
    signature=("postback_timestamp", "visit_timestamp", "traffic_source_id"),
    note="Columns follow Voluum's usual conversion export, not checked header by header "
    "against its documentation (read the notes when a file loads); a conversion without a "
    "status column counts as approved.",
)

BINOM = Preset(
    name="binom",
    title="Binom",
    docs=(
        "https://docs.binom.org/postback-url.php",
        "https://docs.binom.org/conv-to-source-v2.php",
    ),
    columns={
        "transaction_id": ("transaction_id",),
        "txid": ("transaction_id",),
        "clickid": ("click_id", "transaction_id"),
        "click_id": ("click_id", "transaction_id"),
        "cnv_id": ("click_id", "transaction_id"),  # the postback's click id parameter
        "externalid": ("external_transaction_id",),
        "external_id": ("external_transaction_id",),
        "conversion_time": ("occurred_at",),
        "time": ("occurred_at",),
        "date": ("occurred_at",),
        "status": ("status",),
        "cnv_status": ("status",),  # the postback's status parameter
        "offer_id": ("offer_id",),
        "offer": ("offer_id",),
        "ts_id": ("publisher_id",),
        "traffic_source": ("publisher_id",),
        "payout": ("payout",),
        "currency": ("currency",),
        "cnv_currency": ("currency",),
        **{f"token_{i}": (f"sub{i}",) for i in range(1, 6)},
        **{f"t{i}": (f"sub{i}",) for i in range(1, 6)},
    },
    statuses={"lead": "pending", "sale": "approved", **_COMMON_STATUSES},
    default_status="approved",
    date_formats=_ISO,
    log_columns={
        "time": "fired_at",
        "date": "fired_at",
        "transaction_id": "transaction_id",
        "clickid": "click_id",
        "click_id": "click_id",
        "url": "url",
        "code": "status_code",
        "response": "response_body",
    },
    signature=("clickid", "externalid", "token_1"),
    note="Columns follow Binom's usual conversion export, not checked header by header "
    "against its documentation (read the notes when a file loads).",
)

INTEGR8 = Preset(
    name="integr8",
    title="integr8",
    docs=(
        "https://bunny.integr8.co/docs/postbacks/postback-logs/",
        "https://integr8.co/?p=4122",
    ),
    columns={
        "transaction_id": ("transaction_id",),
        "external_transaction_id": ("external_transaction_id",),
        "click_id": ("click_id",),
        "conversion_date": ("occurred_at",),
        "status_date": ("occurred_at",),
        "date": ("occurred_at",),
        "status": ("status",),
        "fraud_status": ("status",),
        "rejection_reason": ("rejection_reason",),
        "offer_id": ("offer_id",),
        "publisher_id": ("publisher_id",),
        "event_name": ("goal",),
        "goal": ("goal",),
        "payout": ("payout",),
        "revenue": ("revenue",),
        "currency": ("currency",),
        **_subs("sub"),
    },
    statuses={**_COMMON_STATUSES},
    date_formats=_ISO,
    log_columns={
        "firing_time": "fired_at",
        "date": "fired_at",
        "transaction_id": "transaction_id",
        "response_code": "status_code",
        "error": "error",
        "error_response": "error",
        "server_response": "response_body",
        "postback_name": "rule",
        "click_id": "click_id",
        "url": "url",
        "offer_id": "offer_id",
        "publisher_id": "publisher_id",
    },
    signature=("external_transaction_id", "publisher_id", "postback_name", "fraud_status"),
    note="integr8's response code 0 means the partner was unreachable; it does not retry.",
)

PRESETS: dict[str, Preset] = {
    p.name: p for p in (EVERFLOW, AFFISE, CAKE, KEITARO, TUNE, VOLUUM, BINOM, INTEGR8)
}


def preset_names() -> list[str]:
    """Every preset name, plus ``auto``."""
    return [*PRESETS, "auto"]


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (case-insensitive); KeyError naming the valid ones."""
    key = name.strip().lower()
    if key not in PRESETS:
        raise KeyError(f"unknown source {name!r}; valid: {', '.join(preset_names())}")
    return PRESETS[key]


def detect(headers: Iterable[str]) -> tuple[Preset | None, int]:
    """The preset whose signature headers the file has most of (ties: the one mapping
    more of the headers), with the number of signature headers found; (None, 0) when
    no preset has any."""
    norm = {_norm(h) for h in headers}
    best: tuple[int, int, Preset] | None = None
    for p in PRESETS.values():
        hits = sum(1 for s in p.signature if s in norm)
        mapped = sum(1 for k in p.columns if k in norm)
        if hits and (best is None or (hits, mapped) > best[:2]):
            best = (hits, mapped, p)
    return (best[2], best[0]) if best else (None, 0)
