"""Bars as pandas, Arrow and Polars frames: one column layout, integer counts and volumes,
nulls where IB sends no value, and metadata saying what the bars are."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ibdata import Bars, BarSize, Client, Contract, WhatToShow
from ibdata.sim import Simulator

UTC = dt.timezone.utc
END = dt.datetime(2025, 3, 12, 15, tzinfo=UTC)
VALUES = ["open", "high", "low", "close", "volume", "wap", "count"]


@pytest.fixture
def ib(sim: Simulator) -> Iterator[Client]:
    """A client of the simulator (server version 200: volumes in shares)."""
    with Client(sim.host, sim.port, timeout=20) as client:
        yield client


def made(
    volume: list[float | None],
    *,
    count: list[int | None] | None = None,
    wap: list[float | None] | None = None,
    sec_type: str = "STK",
    bar_size: str = "1 min",
) -> Bars:
    """Bars built from columns: one per volume given, a minute (or a day) apart."""
    n = len(volume)
    intraday = BarSize(bar_size).intraday
    first = END.timestamp() if intraday else float(dt.date(2025, 3, 10).toordinal())
    step = 60.0 if intraday else 1.0
    contract = Contract(
        con_id=1, symbol="X", sec_type=sec_type, exchange="SMART", currency="USD",
        local_symbol="X", trading_class="X", primary_exchange="", last_trade_date="",
        multiplier="",
    )  # fmt: skip
    return Bars.from_columns(
        [first + step * i for i in range(n)],
        [10.0] * n,
        [11.0] * n,
        [9.0] * n,
        [10.5] * n,
        volume,
        wap if wap is not None else [10.25] * n,
        count if count is not None else [5] * n,
        contract=contract,
        bar_size=bar_size,
        what_to_show=WhatToShow.TRADES,
        use_rth=False,
        time_zone="US/Eastern",
    )


# --------------------------------------------------------------------------- types
def test_trades_have_integer_counts_and_volumes_in_every_library(ib: Client) -> None:
    """TRADES bars give ``count`` and ``volume`` as integers in pandas, Arrow and Polars."""
    bars = ib.get_historical_bars("AAPL", duration="1 D", bar_size="1 hour", end=END)
    df = bars.to_pandas()
    assert {name: str(df[name].dtype) for name in VALUES} == {
        "open": "float64", "high": "float64", "low": "float64", "close": "float64",
        "volume": "Int64", "wap": "float64", "count": "Int64",
    }  # fmt: skip
    assert str(df.index.dtype) == "datetime64[us, UTC]"
    table = bars.to_arrow()
    assert table.schema.field("volume").type == pa.int64()
    assert table.schema.field("count").type == pa.int64()
    assert table.schema.field("time").type == pa.timestamp("us", tz="UTC")
    frame = bars.to_polars()
    assert frame.schema["volume"] == pl.Int64
    assert frame.schema["count"] == pl.Int64
    assert frame.schema["time"] == pl.Datetime("us", "UTC")


def test_intraday_frames_have_one_schema_in_all_three_libraries(ib: Client) -> None:
    """The pandas frame (its index as a column) converts to exactly the Arrow schema, and
    Arrow to exactly the Polars frame."""
    bars = ib.get_historical_bars("AAPL", duration="1 D", bar_size="15 mins", end=END)
    table = bars.to_arrow()
    from_pandas = pa.Table.from_pandas(bars.to_pandas().reset_index(), preserve_index=False)
    assert from_pandas.schema.remove_metadata() == table.schema.remove_metadata()
    assert from_pandas.equals(table.replace_schema_metadata(from_pandas.schema.metadata))
    assert pl.from_arrow(table).equals(bars.to_polars())


def test_daily_frames_use_dates_in_arrow_and_polars(ib: Client) -> None:
    """Daily bars are dated (``date32``, ``Date``) in Arrow and Polars, midnight UTC of the
    session date in pandas' index; the other columns agree in type and value."""
    bars = ib.get_historical_bars("AAPL", duration="1 W", bar_size="1 day", end=END)
    table, frame, df = bars.to_arrow(), bars.to_polars(), bars.to_pandas()
    assert table.schema.field("time").type == pa.date32()
    assert frame.schema["time"] == pl.Date
    dates = [bar.time for bar in bars]
    assert table.column("time").to_pylist() == dates
    assert frame["time"].to_list() == dates
    assert list(df.index.date) == dates
    assert all(t == pd.Timestamp(d, tz="UTC") for t, d in zip(df.index, dates, strict=True))
    values = pa.Table.from_pandas(df[VALUES], preserve_index=False)
    assert values.schema.remove_metadata() == table.select(VALUES).schema.remove_metadata()
    assert pl.from_arrow(table).equals(frame)


def test_values_agree_with_the_bars(ib: Client) -> None:
    """Each frame holds exactly the values of :meth:`Bars.to_dicts`, None as null."""
    bars = ib.get_historical_bars("AAPL", duration="1 D", bar_size="1 hour", end=END)
    expected = bars.to_dicts()
    assert bars.to_arrow().to_pylist() == expected
    assert bars.to_polars().to_dicts() == expected
    df = bars.to_pandas()
    assert df["count"].tolist() == [row["count"] for row in expected]
    assert df["volume"].tolist() == [row["volume"] for row in expected]


def test_quote_bars_have_null_volume_wap_and_count(ib: Client) -> None:
    """MIDPOINT bars carry no volume, WAP or count: ``<NA>``/NaN in pandas, null elsewhere,
    in the same integer and float columns as trades."""
    bars = ib.get_historical_bars(
        "AAPL", duration="3600 S", bar_size="15 mins", what_to_show="MIDPOINT", end=END
    )
    df = bars.to_pandas()
    assert str(df["count"].dtype) == "Int64"
    assert str(df["volume"].dtype) == "Int64"
    assert df["count"].isna().all()
    assert df["volume"].isna().all()
    assert df["wap"].isna().all()
    table = bars.to_arrow()
    assert [table.column(c).null_count for c in ("volume", "wap", "count")] == [len(bars)] * 3
    frame = bars.to_polars()
    assert frame.select(pl.col("volume", "wap", "count").null_count()).row(0) == (len(bars),) * 3


def test_ib_sentinels_become_null() -> None:
    """IB's -1 volume and count and a NaN WAP are null; a WAP of -1 is kept when the bar has
    a volume (a real average price may be -1) and null when it has none."""
    bars = made([-1.0, 100.0, None], count=[-1, 3, None], wap=[-1.0, -1.0, float("nan")])
    expected = [(None, None, None), (100, -1.0, 3), (None, None, None)]
    table = bars.to_arrow().select(["volume", "wap", "count"])
    assert [tuple(row.values()) for row in table.to_pylist()] == expected
    assert bars.to_polars().select("volume", "wap", "count").rows() == expected
    df = bars.to_pandas()
    got = [
        (None if pd.isna(v) else v, None if pd.isna(w) else w, None if pd.isna(c) else c)
        for v, w, c in zip(df["volume"], df["wap"], df["count"], strict=True)
    ]
    assert got == expected


@pytest.mark.parametrize(
    ("volume", "sec_type"),
    [([1.5, 2.0], "STK"), ([1.0, 2.0], "CRYPTO"), ([2.0**60, 1.0], "STK")],
    ids=["fractional", "crypto", "beyond-exact-floats"],
)
def test_volume_is_a_float_column_when_it_is_not_whole(
    volume: list[float | None], sec_type: str
) -> None:
    """A fractional volume, a crypto contract or a volume a float holds inexactly makes the
    volume column float in all three libraries, so that nothing is rounded."""
    bars = made(volume, sec_type=sec_type)
    assert str(bars.to_pandas()["volume"].dtype) == "float64"
    assert bars.to_arrow().schema.field("volume").type == pa.float64()
    assert bars.to_polars().schema["volume"] == pl.Float64
    assert bars.to_arrow().column("volume").to_pylist() == volume


def test_empty_bars_keep_the_schema() -> None:
    """Empty bars give empty frames with the same columns and types."""
    bars = made([])
    assert bars.to_arrow().num_rows == 0
    assert (
        bars.to_arrow().schema.remove_metadata() == made([1.0]).to_arrow().schema.remove_metadata()
    )
    assert bars.to_polars().schema == made([1.0]).to_polars().schema
    df = bars.to_pandas()
    assert len(df) == 0
    assert dict(df.dtypes) == dict(made([1.0]).to_pandas().dtypes)


# --------------------------------------------------------------------------- metadata
def test_arrow_metadata_and_pandas_attrs_say_what_the_bars_are(ib: Client) -> None:
    """The Arrow schema metadata and ``DataFrame.attrs`` hold the contract, bar size, what
    to show, RTH, the zone and the window."""
    bars = ib.get_historical_bars("EURBBLM25", duration="2 D", bar_size="1 day", end=END)
    meta = {k.decode(): v.decode() for k, v in bars.to_arrow().schema.metadata.items()}
    assert meta == bars.to_pandas().attrs
    assert json.loads(meta["ibdata.contract"])["con_id"] == bars.contract.con_id  # type: ignore[union-attr]
    assert meta["ibdata.bar_size"] == "1 day"
    assert meta["ibdata.what_to_show"] == "TRADES"
    assert meta["ibdata.use_rth"] == "false"
    assert meta["ibdata.time_zone"] == "MET"
    assert meta["ibdata.end"] == "2025-03-12T15:00:00Z"


def test_parquet_written_from_arrow_reads_back_equal(ib: Client, tmp_path: Path) -> None:
    """A Parquet file written from :meth:`Bars.to_arrow` keeps values, types and metadata."""
    bars = ib.get_historical_bars("SPY", duration="3600 S", bar_size="1 min", end=END)
    path = tmp_path / "spy.parquet"
    pq.write_table(bars.to_arrow(), path)
    back = pq.read_table(path)
    assert back.equals(bars.to_arrow())
    assert back.schema.metadata == bars.to_arrow().schema.metadata
    assert pl.read_parquet(path).equals(bars.to_polars())


# --------------------------------------------------------------------------- extras
@pytest.mark.parametrize(
    ("module", "method", "extra"),
    [("pyarrow", "to_arrow", "arrow"), ("polars", "to_polars", "polars")],
)
def test_a_missing_library_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, module: str, method: str, extra: str
) -> None:
    """Without pyarrow or polars the method raises ImportError naming the extra to install."""
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=rf"pip install 'ibdata\[{extra}\]'"):
        getattr(made([1.0]), method)()


def test_polars_frames_need_no_pyarrow(monkeypatch: pytest.MonkeyPatch) -> None:
    """``to_polars`` builds its frame without pyarrow."""
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    assert made([1.0, None]).to_polars()["volume"].to_list() == [1, None]
