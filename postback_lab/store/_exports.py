"""Where a log was exported: the Delta Lake tables ``log export`` appends it to, remembered
beside the log (``<db>.exports``, one table URI a line; the log itself is only read), and
which attempts each has taken, by attempt identity (run, dispatch, attempt number), which
no pruning shifts. ``log prune`` refuses to delete attempts a known export has not taken;
an export resumed after a prune takes what it lacks by the same identity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from .._errors import StoreError
from .._util import first_line
from ._delta import import_deltalake

#: the identity of an attempt in the log and in an exported table
IDENTITY = ("run_id", "dispatch_id", "attempt")


def exports_file(db: Path) -> Path:
    """The file beside ``db`` that lists the tables it was exported to."""
    return db.with_name(db.name + ".exports")


def remember_export(db: Path, uri: str) -> None:
    """Note that ``db`` is exported to the table ``uri`` (before its first commit, so an
    interrupted export is known too)."""
    if uri in known_exports(db):
        return
    try:
        with exports_file(db).open("a", encoding="utf-8") as f:
            f.write(uri + "\n")
    except OSError as exc:
        raise StoreError(
            f"{exports_file(db)}: cannot note the export to {uri} ({first_line(exc)})"
        ) from exc


def known_exports(db: Path) -> list[str]:
    """The tables ``db`` was exported to, in the order of their first export."""
    try:
        lines = exports_file(db).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StoreError(f"{exports_file(db)}: cannot read ({first_line(exc)})") from exc
    return list(dict.fromkeys(line.strip() for line in lines if line.strip()))


def exported_ids(
    uri: str, runs: list[str | None], storage_options: dict[str, str] | None = None
) -> pl.DataFrame | None:
    """The identities (``IDENTITY``) of the attempts of ``runs`` the Delta table ``uri``
    holds, or None when there is no table there (yet)."""
    dl = import_deltalake()
    if not dl.DeltaTable.is_deltatable(uri, storage_options=storage_options):
        return None
    import pyarrow.compute as pc

    named = [r for r in runs if r is not None]
    where = pc.field("run_id").isin(named) if named else None
    if None in runs:
        where = (
            pc.field("run_id").is_null() if where is None else where | pc.field("run_id").is_null()
        )
    try:
        dataset = dl.DeltaTable(uri, storage_options=storage_options).to_pyarrow_dataset()
        taken = dataset.to_table(columns=list(IDENTITY), filter=where)
    except (OSError, ValueError, dl.exceptions.DeltaError) as exc:
        raise StoreError(f"{uri}: cannot read the Delta log ({first_line(exc)})") from exc
    frame = pl.from_arrow(taken)
    assert isinstance(frame, pl.DataFrame)
    return frame.cast({"run_id": pl.String, "dispatch_id": pl.String, "attempt": pl.Int32})


def export_backlog(store: Any, where: str, params: list[Any]) -> list[tuple[str, int]]:
    """(table, attempts) for each known export of ``store`` that has not taken some of the
    log's attempts matching ``where`` (what a prune would delete)."""
    candidates: pl.DataFrame = store.sql(
        f"SELECT {', '.join(IDENTITY)} FROM postback_log WHERE {where}", params
    )
    if candidates.height == 0:
        return []
    runs = candidates["run_id"].unique().to_list()
    behind = []
    for uri in known_exports(store.path):
        taken = exported_ids(uri, runs)
        if taken is None:
            missing = candidates.height
        else:
            missing = candidates.join(taken, on=list(IDENTITY), how="anti", nulls_equal=True).height
        if missing:
            behind.append((uri, missing))
    return behind
