"""The canonical events columns and the aliases mapped onto them."""

from __future__ import annotations

import re

import polars as pl

EVENT_TYPES = ("impression", "click", "conversion", "event")
STATUSES = ("approved", "rejected", "pending")

#: canonical column -> Polars dtype of the events frame
SCHEMA: dict[str, pl.DataType] = {
    "transaction_id": pl.String(),
    "event_type": pl.String(),
    "status": pl.String(),
    "rejection_reason": pl.String(),
    "goal": pl.String(),
    "occurred_at": pl.Datetime("us", "UTC"),
    "click_id": pl.String(),
    "external_transaction_id": pl.String(),
    "offer_id": pl.String(),
    "publisher_id": pl.String(),
    "payout": pl.Float64(),
    "revenue": pl.Float64(),
    "currency": pl.String(),
    "sub1": pl.String(),
    "sub2": pl.String(),
    "sub3": pl.String(),
    "sub4": pl.String(),
    "sub5": pl.String(),
}
CANONICAL = tuple(SCHEMA)
REQUIRED = ("transaction_id", "occurred_at")

#: header aliases, normalised (lower case, ``_`` for spaces and dashes); first present wins
ALIASES: dict[str, tuple[str, ...]] = {
    "transaction_id": (
        "transaction_id",
        "txn_id",
        "tx_id",
        "tid",
        "transactionid",
        "transaction",
        "trans_id",
        "conversion_id",
        "conv_id",
    ),
    "event_type": ("event_type", "type", "record_type", "kind", "eventtype"),
    "status": ("status", "conversion_status", "state", "conv_status"),
    "rejection_reason": (
        "rejection_reason",
        "reject_reason",
        "decline_reason",
        "status_reason",
        "reason",
    ),
    "goal": ("goal", "goal_name", "event_name", "goal_id", "goal_value"),
    "occurred_at": (
        "occurred_at",
        "timestamp",
        "datetime",
        "event_time",
        "conversion_time",
        "status_time",
        "updated_at",
        "created_at",
        "time",
        "date",
        "ts",
    ),
    "click_id": ("click_id", "clickid", "our_click_id", "click"),
    "external_transaction_id": (
        "external_transaction_id",
        "aff_click_id",
        "affiliate_click_id",
        "partner_click_id",
        "ext_click_id",
        "external_click_id",
        "aff_clickid",
        "external_id",
    ),
    "offer_id": ("offer_id", "offer", "offerid", "campaign_id", "campaign"),
    "publisher_id": (
        "publisher_id",
        "publisher",
        "affiliate_id",
        "affiliate",
        "aff_id",
        "partner_id",
        "pub_id",
        "source_id",
        "publisherid",
        "affiliateid",
    ),
    "payout": ("payout", "sum", "amount", "commission", "payout_amount"),
    "revenue": ("revenue", "rev", "sale_amount", "order_value", "income"),
    "currency": ("currency", "currency_code", "cur"),
    **{
        f"sub{n}": tuple(
            a
            for a in (
                f"sub{n}",
                f"sub_{n}",
                f"subid{n}",
                f"sub_id{n}",
                f"sub_id_{n}",
                f"aff_sub{n}",
                "aff_sub" if n == 1 else "",
            )
            if a
        )
        for n in range(1, 6)
    },
}

STATUS_ALIASES: dict[str, str] = {
    **{s: s for s in STATUSES},
    "approve": "approved",
    "confirmed": "approved",
    "accepted": "approved",
    "success": "approved",
    "valid": "approved",
    "paid": "approved",
    "completed": "approved",
    "declined": "rejected",
    "decline": "rejected",
    "denied": "rejected",
    "reject": "rejected",
    "invalid": "rejected",
    "fraud": "rejected",
    "refused": "rejected",
    "cancelled": "rejected",
    "canceled": "rejected",
    "reversed": "rejected",
    "hold": "pending",
    "on_hold": "pending",
    "on hold": "pending",
    "waiting": "pending",
    "new": "pending",
    "in_progress": "pending",
    "processing": "pending",
}

EVENT_TYPE_ALIASES: dict[str, str] = {
    **{t: t for t in EVENT_TYPES},
    "impressions": "impression",
    "view": "impression",
    "imp": "impression",
    "clicks": "click",
    "conversions": "conversion",
    "conv": "conversion",
    "sale": "conversion",
    "lead": "conversion",
    "events": "event",
    "post_conversion": "event",
    "postconversion": "event",
    "goal": "event",
}


def normalise_header(name: str) -> str:
    """``'Aff Click-ID '`` -> ``'aff_click_id'``: the form aliases are written in."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())
