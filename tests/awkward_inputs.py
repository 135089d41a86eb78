"""A frame with a column of every kind a user's Parquet file may hold, shared by the data-plane
and pipeline input tests (pytest puts this folder on sys.path through tests/conftest.py)."""

from __future__ import annotations

import datetime as dt
import decimal

import polars as pl


def all_types() -> pl.DataFrame:
    """One column of every kind a user's Parquet file may hold."""
    return pl.DataFrame(
        {
            "topic": ["cats", "dogs", "ünï \"q\""],
            "tags": [["x", "y"], [], None],
            "meta": [{"a": 1, "b": "q"}, None, {"a": 2, "b": None}],
            "nested": [[{"k": [1, 2]}], None, []],
            "fixed": [[1.5, 2.0], [0.0, -1.0], None],
            "ts_berlin": [dt.datetime(2024, 3, 31, 1, 30), dt.datetime(2024, 10, 27, 2, 30), None],
            "ts_naive_ns": [dt.datetime(1900, 1, 1), dt.datetime(2262, 4, 1), None],
            "day": [dt.date(1, 1, 1), dt.date(9999, 12, 31), None],
            "clock": [dt.time(23, 59, 59, 999999), dt.time(0), None],
            "span": [dt.timedelta(days=-1), dt.timedelta(microseconds=1), None],
            "money": [decimal.Decimal("12345678901234.56"), decimal.Decimal("-0.01"), None],
            "blob": [b"\x00\xff\xfe", b"", None],
            "blobs": [[b"\x00"], None, []],
            "nothing": [None, None, None],
            "flag": [True, False, None],
            "big": [2**63 - 1, -(2**63), None],
            "small": [1, -1, None],
            "real": [float("inf"), float("nan"), -0.0],
            "cat": ["a", "b", "a"],
            "json_text": ['{"x": [1, {"y": null}]}', "[]", None],
        },
        schema_overrides={
            "ts_berlin": pl.Datetime("us", "Europe/Berlin"), "ts_naive_ns": pl.Datetime("ns"),
            "money": pl.Decimal(16, 2), "fixed": pl.Array(pl.Float64, 2), "small": pl.Int8,
            "cat": pl.Categorical, "nothing": pl.Null,
        },
    )
