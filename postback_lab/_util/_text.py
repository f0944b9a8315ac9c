"""Small text helpers shared by every layer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # polars loads with the first frame, not with the CLI's parser
    import polars as pl

#: ``scheme://user:password@`` in a URL: the password is masked wherever a URL is written
USERINFO = r"(?i)(https?://[^\s/?#@:]*:)[^\s/?#@]*@"


#: how a spreadsheet recognises a formula: a cell starting with one of these (OWASP's
#: CSV-injection guidance), neutralised by a leading single quote
FORMULA_START = r"^[=+\-@\t\r]"


def csv_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` for a CSV file a spreadsheet may open: every text cell that starts like a
    formula (``=``, ``+``, ``-``, ``@``, tab, carriage return) gets a leading ``'``, so
    imported rule names, errors and partners' answers are shown, never run."""
    import polars as pl

    text = [c for c, dt in frame.schema.items() if dt == pl.String]
    return frame.with_columns(
        pl.when(pl.col(c).str.contains(FORMULA_START))
        .then(pl.lit("'") + pl.col(c))
        .otherwise(pl.col(c))
        .alias(c)
        for c in text
    )


def masked_userinfo(text: pl.Expr) -> pl.Expr:
    """``text`` (URLs, errors, answers) with the password of any ``user:password@`` in a
    URL replaced by ``***``, as the log keeps it (vectorised; most texts have none)."""
    return text.str.replace_all(USERINFO, "${1}***@")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its class name when it has none): what
    a one-sentence error shows of a dependency's multi-line message."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def quote_ident(name: str) -> str:
    """A (possibly dotted) SQL identifier, each part double-quoted."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


def counted(n: int, word: str) -> str:
    """``n`` with thousands separators and ``word`` in the singular or plural ("1 host",
    "1,352 postbacks"): what every summary line says of its counts."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def plan_line(postbacks: int, rules: int, hosts: int, first_due: Any, last_due: Any) -> str:
    """The one-line summary every plan (in memory, streamed, partitioned) starts with."""
    if postbacks == 0:
        return "empty plan: no postback to fire"
    return (
        f"{counted(postbacks, 'postback')} to fire from {counted(rules, 'rule')} to "
        f"{counted(hosts, 'host')}, due {first_due:%Y-%m-%d %H:%M} to {last_due:%Y-%m-%d %H:%M} UTC"
    )
