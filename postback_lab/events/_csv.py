"""The careful readers: Python's csv and json modules for files the fast parsers reject,
quarantining the rows they cannot read with their line instead of failing the file."""

from __future__ import annotations

import csv
import io
import json

import polars as pl

from .._errors import EventsError
from ._events import QUARANTINE_SCHEMA
from ._sources import LINE, Source


def careful_csv(src: Source, encoding: str) -> Source:
    """Re-read a CSV the fast parser rejected (ragged rows, stray quotes, another encoding)
    with Python's csv module: rows with the wrong number of fields are quarantined with
    their line, the rest go on as text."""
    assert src.path is not None
    try:
        text = src.path.read_bytes().decode(encoding)
    except UnicodeDecodeError as exc:
        line = src.path.read_bytes()[: exc.start].count(b"\n") + 1
        raise EventsError(
            f"{src.label}: line {line} is not valid {encoding} "
            f"(byte 0x{exc.object[exc.start]:02x});"
            " pass the file's encoding, e.g. encoding='latin-1' (CLI: --encoding latin-1)"
        ) from None
    except LookupError:
        raise EventsError(f"{src.label}: unknown encoding {encoding!r}") from None
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), delimiter=src.sep)
    try:
        header = next(reader)
    except StopIteration:
        raise EventsError(f"{src.label}: the file is empty") from None
    good: list[list[str]] = []
    lines: list[int] = []
    bad: list[tuple[int, str, str]] = []
    start = reader.line_num + 1
    for record in reader:
        if record and len(record) != len(header):
            bad.append(
                (
                    start,
                    f"ragged row: {len(record)} fields, the header has {len(header)}",
                    json.dumps(record, ensure_ascii=False),
                )
            )
        elif record:
            good.append(record)
            lines.append(start)
        start = reader.line_num + 1
    frame = pl.DataFrame(good, schema=dict.fromkeys(header, pl.String()), orient="row")
    frame = frame.with_columns(pl.Series(LINE, lines, dtype=pl.UInt32)).select(LINE, *header)
    rejected = pl.DataFrame(
        [(src.label, line, why, raw) for line, why, raw in bad],
        schema=QUARANTINE_SCHEMA,
        orient="row",
    )
    return Source(src.label, frame.lazy(), None, src.sep, rejected)


def careful_ndjson(src: Source) -> Source:
    """Re-read an NDJSON file the fast parser rejected, line by line: lines that are not a
    JSON object are quarantined with their line number, the rest go on."""
    assert src.ndjson is not None
    good: list[dict[str, object]] = []
    lines: list[int] = []
    bad: list[tuple[str, int, str, str]] = []
    with src.ndjson.open(encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                bad.append(
                    (
                        src.label,
                        n,
                        f"not JSON: {exc.msg} at character {exc.pos + 1}",
                        line.rstrip()[:500],
                    )
                )
                continue
            if not isinstance(record, dict):
                bad.append((src.label, n, "not a JSON object", line.rstrip()[:500]))
                continue
            good.append(record)
            lines.append(n)
    frame = pl.DataFrame(good, infer_schema_length=None) if good else pl.DataFrame()
    frame = frame.with_columns(pl.Series(LINE, lines, dtype=pl.UInt32)).select(
        LINE, pl.exclude(LINE)
    )
    rejected = pl.DataFrame(bad, schema=QUARANTINE_SCHEMA, orient="row")
    return Source(src.label, frame.lazy(), None, src.sep, rejected)
