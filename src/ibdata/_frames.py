"""Bars as data frames (pandas, Arrow, Polars), as a notebook table and as a chart.

One column layout for every library, so that a frame made by one reads like a frame made by
another:

========  ==========================  ===========================  ======================
column    pandas                      Arrow                        Polars
========  ==========================  ===========================  ======================
time      the index: ``datetime64[us,  ``timestamp[us, tz=UTC]``    ``Datetime("us",
          UTC]`` (daily: midnight      (daily: ``date32``)          "UTC")`` (daily:
          UTC of the session date)                                  ``Date``)
open ...  ``float64``                 ``double``                   ``Float64``
volume    ``Int64`` or ``float64``    ``int64`` or ``double``      ``Int64`` or ``Float64``
wap       ``float64``                 ``double``                   ``Float64``
count     ``Int64``                   ``int64``                    ``Int64``
========  ==========================  ===========================  ======================

The volume is an integer column when every volume of the bars is a whole number (shares,
contracts: what IB sends for stocks, futures and indices, US-stock lots included once ibdata
has turned them into shares) and the contract is not a crypto currency, whose quantities
are fractional; otherwise it is a float column, so that nothing is ever rounded. Missing
values are ``<NA>`` in pandas' ``Int64`` columns and ``NaN`` in its float columns, null in
Arrow and Polars.

pandas, pyarrow, polars and matplotlib are imported when a function needs them, never when
this module is.
"""

from __future__ import annotations

import datetime as dt
import html
import itertools
import json
import os
from array import array
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

import attrs

from ibdata.models import BarSize, _duration_text

if TYPE_CHECKING:
    import pandas  # type: ignore[import-untyped,unused-ignore]
    import polars
    from matplotlib.figure import Figure

    from ibdata.models import Bars, ContractDetails
    from ibdata.store import BarStore, SeriesKey

UTC: Final = dt.timezone.utc
_EPOCH_ORDINAL: Final = dt.date(1970, 1, 1).toordinal()
#: Whole numbers a float holds exactly; a larger "whole" volume stays a float.
_EXACT: Final = 2.0**53
#: The columns besides ``time``, in order.
VALUE_COLUMNS: Final = ("open", "high", "low", "close", "volume", "wap", "count")
#: How many rows a notebook shows at each end of the bars.
HTML_ROWS: Final = 5


def _missing_extra(what: str, package: str, extra: str) -> ImportError:
    return ImportError(
        f"{what} needs {package}, an optional dependency of ibdata; "
        f"install it with: pip install 'ibdata[{extra}]'"
    )


# ---------------------------------------------------------------------- shared rules
def volume_is_integral(bars: Bars) -> bool:
    """True when the volume column is an integer one: no crypto contract, and every volume
    present is a whole number that a float holds exactly."""
    contract = bars.contract
    if contract is not None and contract.sec_type == "CRYPTO":
        return False
    # NaN and the -1 sentinel fail ``v >= 0``: they are missing, not fractional.
    return all(v.is_integer() and v < _EXACT for v in bars._volume if v >= 0)


def metadata(bars: Bars) -> dict[str, str]:
    """What the bars are, as text: the schema metadata of Arrow tables and Parquet files,
    and ``DataFrame.attrs`` of pandas frames.

    Keys: ``ibdata.contract`` (the contract as JSON, ``""`` when unknown),
    ``ibdata.bar_size``, ``ibdata.what_to_show``, ``ibdata.use_rth`` (``"true"`` or
    ``"false"``), ``ibdata.time_zone`` (IB's name of the exchange's zone, ``""`` when
    unknown), ``ibdata.start`` and ``ibdata.end`` (ISO 8601 UTC with ``Z``, ``""`` when
    unknown).
    """
    contract = bars.contract
    return {
        "ibdata.contract": "" if contract is None else json.dumps(attrs.asdict(contract)),
        "ibdata.bar_size": bars.bar_size.value,
        "ibdata.what_to_show": bars.what_to_show.value,
        "ibdata.use_rth": "true" if bars.use_rth else "false",
        "ibdata.time_zone": bars.time_zone,
        "ibdata.start": _instant_text(bars.start),
        "ibdata.end": _instant_text(bars.end),
    }


def _instant_text(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------- pandas
def to_pandas(bars: Bars) -> pandas.DataFrame:
    """The bars as a pandas DataFrame (see :meth:`ibdata.models.Bars.to_pandas`)."""
    try:
        import pandas as pd  # type: ignore[import-untyped,unused-ignore]
    except ImportError as exc:
        raise _missing_extra("Bars.to_pandas()", "pandas", "pandas") from exc
    import numpy as np

    f64 = np.float64
    times = np.array(bars._time, dtype=f64)
    if bars.intraday:
        micros = np.round(times * 1e6).astype(np.int64)
        index = pd.to_datetime(micros, unit="us", utc=True)
    else:
        days = times.astype(np.int64) - _EPOCH_ORDINAL
        index = pd.to_datetime(days, unit="D", utc=True)
    index = pd.DatetimeIndex(index, name="time").as_unit("us")
    volume = np.array(bars._volume, dtype=f64)
    vol_missing = np.isnan(volume) | (volume < 0)
    wap = np.array(bars._wap, dtype=f64)
    wap[(wap == -1.0) & vol_missing] = np.nan
    counts = np.array(bars._count, dtype=np.int64)
    count_missing = counts < 0
    counts[count_missing] = 0
    if volume_is_integral(bars):
        whole = np.where(vol_missing, 0.0, volume).astype(np.int64)
        volume_column: Any = pd.arrays.IntegerArray(whole, vol_missing)
    else:
        volume[vol_missing] = np.nan
        volume_column = volume
    frame = pd.DataFrame(
        {
            "open": np.array(bars._open, dtype=f64),
            "high": np.array(bars._high, dtype=f64),
            "low": np.array(bars._low, dtype=f64),
            "close": np.array(bars._close, dtype=f64),
            "volume": volume_column,
            "wap": wap,
            "count": pd.arrays.IntegerArray(counts, count_missing),
        },
        index=index,
    )
    frame.attrs.update(metadata(bars))
    return frame


# ---------------------------------------------------------------------- Arrow
def to_arrow(bars: Bars) -> Any:
    """The bars as a pyarrow Table (see :meth:`ibdata.models.Bars.to_arrow`)."""
    try:
        import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
        import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]
    except ImportError as exc:
        raise _missing_extra("Bars.to_arrow()", "pyarrow", "arrow") from exc

    n = len(bars)

    def column(values: array[Any], kind: Any) -> Any:
        # A copy of the column's bytes: Arrow arrays are immutable, the bars stay alone.
        return pa.Array.from_buffers(kind, n, [None, pa.py_buffer(values.tobytes())])

    def without(values: Any, missing: Any) -> Any:
        return pc.if_else(missing, pa.scalar(None, values.type), values)

    raw_time = column(bars._time, pa.float64())
    if bars.intraday:
        micros = pc.cast(pc.round(pc.multiply(raw_time, 1e6)), pa.int64())
        time = micros.view(pa.timestamp("us", tz="UTC"))
    else:
        days = pc.cast(pc.subtract(raw_time, float(_EPOCH_ORDINAL)), pa.int32())
        time = days.view(pa.date32())
    volume = column(bars._volume, pa.float64())
    vol_missing = pc.or_(pc.is_nan(volume), pc.less(volume, 0.0))
    volume = without(volume, vol_missing)
    if volume_is_integral(bars):
        volume = pc.cast(volume, pa.int64())
    wap = column(bars._wap, pa.float64())
    wap = without(wap, pc.or_(pc.is_nan(wap), pc.and_(pc.equal(wap, -1.0), vol_missing)))
    count = column(bars._count, pa.int64())
    count = without(count, pc.less(count, 0))
    columns = {
        "time": time,
        "open": column(bars._open, pa.float64()),
        "high": column(bars._high, pa.float64()),
        "low": column(bars._low, pa.float64()),
        "close": column(bars._close, pa.float64()),
        "volume": volume,
        "wap": wap,
        "count": count,
    }
    table = pa.table(columns)
    return table.replace_schema_metadata(metadata(bars))


# ---------------------------------------------------------------------- Polars
def to_polars(bars: Bars) -> polars.DataFrame:
    """The bars as a polars DataFrame (see :meth:`ibdata.models.Bars.to_polars`)."""
    try:
        import polars as pl
    except ImportError as exc:
        raise _missing_extra("Bars.to_polars()", "polars", "polars") from exc

    raw = pl.DataFrame(
        {
            "time": pl.Series(bars._time, dtype=pl.Float64),
            "open": pl.Series(bars._open, dtype=pl.Float64),
            "high": pl.Series(bars._high, dtype=pl.Float64),
            "low": pl.Series(bars._low, dtype=pl.Float64),
            "close": pl.Series(bars._close, dtype=pl.Float64),
            "volume": pl.Series(bars._volume, dtype=pl.Float64),
            "wap": pl.Series(bars._wap, dtype=pl.Float64),
            "count": pl.Series(bars._count, dtype=pl.Int64),
        }
    )
    t, volume, wap = pl.col("time"), pl.col("volume"), pl.col("wap")
    if bars.intraday:
        time = (t * 1e6).round().cast(pl.Int64).cast(pl.Datetime("us", "UTC"))
    else:
        time = (t - _EPOCH_ORDINAL).cast(pl.Int32).cast(pl.Date)
    vol_missing = volume.is_nan() | (volume < 0)
    volume_out = pl.when(vol_missing).then(None).otherwise(volume)
    if volume_is_integral(bars):
        volume_out = volume_out.cast(pl.Int64)
    wap_missing = wap.is_nan() | ((wap == -1.0) & vol_missing)
    return raw.select(
        time.alias("time"),
        "open",
        "high",
        "low",
        "close",
        volume_out.alias("volume"),
        pl.when(wap_missing).then(None).otherwise(wap).alias("wap"),
        pl.when(pl.col("count") < 0).then(None).otherwise(pl.col("count")).alias("count"),
    )


# ---------------------------------------------------------------------- text for people
def time_text(bars: Bars, value: float) -> str:
    """A stored time as ISO 8601: UTC with ``Z`` for intraday bars, else the date."""
    if bars.intraday:
        when = dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(seconds=value)
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return dt.date.fromordinal(int(value)).isoformat()


def number_text(value: float | int | None) -> str:
    """A price or volume as a short decimal: ``263.5``, ``111900``; ``""`` when missing."""
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < _EXACT:
        return str(int(value))
    return f"{value:.8f}".rstrip("0").rstrip(".")


#: Daily and longer bars: spacings (days) beyond which a week's or a month's bar is missing.
_LONG_GAP_DAYS: Final = {"1 week": 10, "1 month": 45}


def gaps(bars: Bars) -> str:
    """Where the bars have holes, in a few words.

    Intraday: how many holes there are between the end of one bar and the start of the
    next, and the longest with where it starts (nights and weekends count: ibdata knows no
    calendar here). Daily: how many weekdays
    between the first and the last bar have none (holidays, or missing sessions). Weekly and
    monthly: how many spacings exceed 10 or 45 days.
    """
    times = bars._time
    if len(times) < 2:
        return "none"
    pairs: Iterator[tuple[float, float]] = itertools.pairwise(times)
    if bars.intraday:
        step = bars.bar_size.seconds
        # a hole runs from the end of one bar to the start of the next
        found = [(b - a - step, a + step) for a, b in pairs if b - a > step + 1e-6]
        if not found:
            return "none"
        longest, after = max(found)
        span = _duration_text(dt.timedelta(seconds=longest))
        return f"{len(found):,} between bars (longest {span}, from {time_text(bars, after)})"
    if bars.bar_size.value in _LONG_GAP_DAYS:
        limit = _LONG_GAP_DAYS[bars.bar_size.value]
        missing = sum(1 for a, b in pairs if b - a > limit)
        return "none" if not missing else f"{missing:,} spacings over {limit} days"
    weekdays = 0
    for a, b in pairs:
        for ordinal in range(int(a) + 1, int(b)):
            weekdays += dt.date.fromordinal(ordinal).weekday() < 5
    if not weekdays:
        return "none"
    noun = "weekday" if weekdays == 1 else "weekdays"
    return f"{weekdays:,} {noun} without a bar (holidays or missing sessions)"


def span_text(bars: Bars) -> str:
    """``first .. last`` of the bars, or ``"-"`` without bars."""
    if not len(bars):
        return "-"
    return f"{time_text(bars, bars._time[0])} .. {time_text(bars, bars._time[-1])}"


# ---------------------------------------------------------------------- notebooks
def _html_rows(bars: Bars) -> list[list[str]]:
    n = len(bars)
    wanted = list(range(n)) if n <= 2 * HTML_ROWS else [*range(HTML_ROWS), -1]
    if n > 2 * HTML_ROWS:
        wanted += range(n - HTML_ROWS, n)
    rows = []
    for i in wanted:
        if i < 0:
            rows.append(["…"] * (len(VALUE_COLUMNS) + 1))
            continue
        bar = bars[i]
        values = (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.wap, bar.count)
        rows.append([time_text(bars, bars._time[i]), *map(number_text, values)])
    return rows


def _table_html(header: list[str], rows: list[list[str]], caption: list[tuple[str, str]]) -> str:
    esc = html.escape
    facts = "".join(
        f"<tr><th style='text-align:left'>{esc(k)}</th><td style='text-align:left'>{esc(v)}"
        "</td></tr>"
        for k, v in caption
    )
    head = "".join(f"<th>{esc(name)}</th>" for name in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>" if rows else ""
    return f"<div class='ibdata'><table>{facts}</table>{table}</div>"


def bars_html(bars: Bars) -> str:
    """A compact HTML view of the bars for notebooks (``Bars._repr_html_``)."""
    what = "?" if bars.contract is None else bars.contract.describe()
    kind = f"{bars.bar_size.value} {bars.what_to_show.value}"
    hours = "regular trading hours" if bars.use_rth else "all hours"
    caption = [
        ("Bars", what),
        ("kind", f"{kind}, {hours}"),
        ("count", f"{len(bars):,}"),
        ("span", span_text(bars)),
        ("times", "UTC (bar start)" if bars.intraday else "session dates"),
        ("zone", bars.time_zone or "unknown"),
        ("gaps", gaps(bars)),
    ]
    return _table_html(["time", *VALUE_COLUMNS], _html_rows(bars), caption)


def details_html(details: ContractDetails) -> str:
    """An HTML view of contract details for notebooks."""
    c = details.contract
    sessions = details.trading_hours
    if sessions:
        first = sessions[0]
        hours = (
            f"{len(sessions)} sessions; next {_instant_text(first.start)} .. "
            f"{_instant_text(first.end)}"
        )
    else:
        hours = "none published"
    rows = [
        ("ContractDetails", c.describe()),
        ("con_id", str(c.con_id)),
        ("name", details.long_name),
        ("local symbol", c.local_symbol),
        ("trading class", c.trading_class),
        ("primary exchange", c.primary_exchange),
        ("multiplier", c.multiplier),
        ("min tick", number_text(details.min_tick)),
        ("time zone", details.time_zone_id),
        ("trading hours", hours),
        ("liquid hours", f"{len(details.liquid_hours)} sessions"),
        ("sec ids", ", ".join(f"{k}={v}" for k, v in details.sec_ids.items())),
    ]
    return _table_html([], [], [(k, v) for k, v in rows if v])


# ---------------------------------------------------------------------- charts
#: Candle colours: rising (close >= open) and falling.
UP: Final = "#26a69a"
DOWN: Final = "#ef5350"


def plot(bars: Bars, *, volume: bool, title: str | None) -> Figure:
    """Candles with volume below (see :meth:`ibdata.models.Bars.plot`)."""
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter, MaxNLocator
    except ImportError as exc:
        raise _missing_extra("Bars.plot()", "matplotlib", "plot") from exc
    n = len(bars)
    if n == 0:
        raise ValueError("Bars.plot() needs at least one bar; these bars are empty")
    opens, highs, lows, closes = bars._open, bars._high, bars._low, bars._close
    x = range(n)
    colours = [UP if c >= o else DOWN for o, c in zip(opens, closes, strict=True)]
    volumes = [b.volume for b in bars] if volume else []
    show_volume = any(v is not None for v in volumes)
    fig = Figure(figsize=(10, 6 if show_volume else 4.5), layout="constrained")
    if show_volume:
        price, vol_ax = fig.subplots(
            2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.02}
        )
    else:
        price, vol_ax = fig.subplots(1, 1), None
    price.vlines(x, lows, highs, colors=colours, linewidth=0.8)
    bodies = [abs(c - o) for o, c in zip(opens, closes, strict=True)]
    bottoms = [min(o, c) for o, c in zip(opens, closes, strict=True)]
    price.bar(x, bodies, bottom=bottoms, width=0.6, color=colours, edgecolor=colours, linewidth=0.6)
    price.set_ylabel("price")
    price.grid(True, alpha=0.25)
    if title is None:
        what = "?" if bars.contract is None else bars.contract.describe()
        rth = ", RTH" if bars.use_rth else ""
        title = f"{what}: {bars.bar_size.value} {bars.what_to_show.value}{rth}"
    price.set_title(title, loc="left", fontsize=11)
    bottom = price
    if vol_ax is not None:
        heights = [0.0 if v is None else v for v in volumes]
        vol_ax.bar(x, heights, width=0.6, color=colours, alpha=0.7)
        vol_ax.set_ylabel("volume")
        vol_ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        vol_ax.grid(True, alpha=0.25)
        bottom = vol_ax

    labels = [time_text(bars, t) for t in bars._time]
    if bars.intraday:
        day = labels[0][:10]
        one_day = day == labels[-1][:10]
        labels = [s[11:16] if one_day else f"{s[5:10]} {s[11:16]}" for s in labels]
        bottom.set_xlabel(f"UTC, {day}" if one_day else "UTC")
    else:
        bottom.set_xlabel(f"session date ({bars.time_zone})" if bars.time_zone else "session date")

    def label(value: float, _position: int) -> str:
        i = round(value)
        return labels[i] if 0 <= i < n and abs(value - i) < 1e-6 else ""

    bottom.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
    bottom.xaxis.set_major_formatter(FuncFormatter(label))
    bottom.set_xlim(-0.8, n - 0.2)
    return fig


# ---------------------------------------------------------------------- Parquet datasets
#: Seconds since the epoch of 0001-01-01 and 10000-01-01: every time a store can hold.
_FIRST_YEAR: Final = -62135596800.0
_AFTER_LAST_YEAR: Final = 253402300800.0
#: The name of the one file of each partition.
PART_FILE: Final = "part-0.parquet"


@attrs.frozen
class Exported:
    """One series written by :func:`export_parquet`: its key, how many bars, which files."""

    key: SeriesKey
    bars: int
    files: tuple[Path, ...]


def partition_path(key: SeriesKey, year: int) -> Path:
    """The hive partition of one year of a series, relative to the dataset's directory:
    ``bar_size=1%20day/con_id=265598/what_to_show=TRADES/hours=all/year=2025``. Values are
    percent-encoded as Arrow writes them (the space of a bar size is ``%20``); DuckDB and
    Polars decode them."""
    return Path(
        f"bar_size={quote(key.bar_size, safe='')}",
        f"con_id={key.con_id}",
        f"what_to_show={key.what_to_show}",
        f"hours={'rth' if key.use_rth else 'all'}",
        f"year={year}",
    )


def _year_start(year: int) -> float:
    return dt.datetime(year, 1, 1, tzinfo=UTC).timestamp()


def export_parquet(
    store: BarStore,
    directory: Path,
    *,
    con_ids: Collection[int] = (),
    bar_sizes: Collection[str] = (),
    what_to_show: Collection[str] = (),
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> list[Exported]:
    """Write the bars a store holds as a hive-partitioned Parquet dataset, one file a year.

    Each series of the store (narrowed to ``con_ids``, ``bar_sizes`` and ``what_to_show``
    when given) is read whole for the years ``start`` and ``end`` touch (every year without
    them), turned into Arrow by :func:`to_arrow` (so its schema is that of
    :meth:`ibdata.models.Bars.to_arrow`, with ``ibdata.con_id`` in the metadata) and cut
    into years: the UTC year of intraday bars, the year of the session date of daily ones.
    Each year's bars replace the partition's one file, written to a temporary name first,
    so that a reader never sees half a file and an export can be repeated or extended
    without duplicate rows. Reads the store only: nothing is asked of TWS.

    Raises:
        OSError: The store cannot be read, or a file cannot be written.
        ImportError: pyarrow is not installed.
    """
    from ibdata.models import Bars

    try:
        import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]
        import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]
    except ImportError as exc:
        raise _missing_extra("A Parquet export", "pyarrow", "arrow") from exc
    lo = _FIRST_YEAR if start is None else _year_start(start.astimezone(UTC).year)
    if end is None:
        hi = _AFTER_LAST_YEAR
    else:
        last = end.astimezone(UTC) - dt.timedelta(microseconds=1)
        hi = _year_start(last.year + 1)
    done: list[Exported] = []
    for key in store.series_keys():
        if (
            (con_ids and key.con_id not in con_ids)
            or (bar_sizes and key.bar_size not in bar_sizes)
            or (what_to_show and key.what_to_show not in what_to_show)
        ):
            continue
        cached = store.load(key, lo, max(lo, hi))
        if not len(cached):
            continue
        size = BarSize(key.bar_size)
        times = cached.time
        if not size.intraday:
            times = array("d", (_EPOCH_ORDINAL + t // 86400 for t in times))
        bars = Bars.from_columns(
            times,
            cached.open,
            cached.high,
            cached.low,
            cached.close,
            cached.volume,
            cached.wap,
            cached.count,
            bar_size=size,
            what_to_show=key.what_to_show,
            use_rth=key.use_rth,
        )
        table = to_arrow(bars)
        meta = {**metadata(bars), "ibdata.con_id": str(key.con_id)}
        table = table.replace_schema_metadata(meta)
        years = pc.year(table.column("time"))
        files = []
        for year in sorted(set(years.to_pylist())):
            part = table.filter(pc.equal(years, year))
            folder = directory / partition_path(key, year)
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / PART_FILE
            temporary = folder / f".{PART_FILE}.{os.getpid()}.tmp"
            pq.write_table(part, temporary)
            os.replace(temporary, target)
            files.append(target)
        done.append(Exported(key, len(bars), tuple(files)))
    return done
