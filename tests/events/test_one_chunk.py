"""one_chunk: the events frame in one chunk per column, made a column at a time."""

from __future__ import annotations

import polars as pl

from postback_lab.events import one_chunk


def test_one_chunk_keeps_every_value_and_takes_the_columns():
    parts = [
        pl.DataFrame({"t": [f"T{i}" for i in range(j, j + 3)], "n": [j, j + 1, None]})
        for j in (0, 3, 6)
    ]
    frame = pl.concat(parts, rechunk=False)
    assert frame.n_chunks() == 3
    columns = frame.get_columns()
    out = one_chunk(columns)
    assert columns == []  # handed over: no reference to the read batches is left
    assert out.n_chunks() == 1
    assert out.equals(frame)
    assert out["t"].to_list() == [f"T{i}" for i in range(9)]
