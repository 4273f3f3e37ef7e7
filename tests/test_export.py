"""Parquet out of the command line: ``ibdata bars --format parquet`` and ``ibdata export``,
read back by pyarrow, Polars and DuckDB; and whole volumes printed as integers."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest

from ibdata import Bars, Client
from ibdata.sim import Simulator
from ibdata.store import open_store
from tests.conftest import run_ibdata

UTC = dt.timezone.utc
END = "2025-03-12T15:00:00Z"
#: A range across a new year, so that the dataset has two year partitions.
START, STOP = dt.datetime(2024, 12, 23, tzinfo=UTC), dt.datetime(2025, 1, 8, tzinfo=UTC)
PARTITIONS = ["bar_size", "con_id", "what_to_show", "hours", "year"]
AAPL = 265598

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def sim(sim_factory: Callable[..., Simulator]) -> Simulator:
    """A simulator without pacing."""
    return sim_factory(pacing=None)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """Where the tests' bar store lives."""
    return tmp_path / "bars.sqlite"


@pytest.fixture
def ibdata(store: Path) -> Run:
    """Run ``python -m ibdata ARGS`` with the store as ``$IBDATA_CACHE`` and no IB_* variables."""
    return functools.partial(run_ibdata, cache=store)


@pytest.fixture
def ib(sim: Simulator, store: Path) -> Iterator[Client]:
    """A client of the simulator that keeps its ranges in the store."""
    with Client(sim.host, sim.port, timeout=20, cache=store) as client:
        yield client


def at(sim: Simulator) -> list[str]:
    """The connection options for ``sim``."""
    return ["--host", "127.0.0.1", "--port", str(sim.port)]


def duck(query: str, *params: object) -> pl.DataFrame:
    """A DuckDB query's result as a polars frame, times in UTC."""
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.sql(query, params=list(params)).pl()


# --------------------------------------------------------------------------- bars
def test_bars_csv_and_json_write_whole_volumes_as_integers(sim: Simulator, ibdata: Run) -> None:
    """CSV and JSON print a whole volume as ``1170900``, not ``1170900.0``, as REST does."""
    args = ("bars", "AAPL", *at(sim), "--duration", "1 W", "--bar-size", "1 day", "--end", END)
    rows = list(csv.DictReader(io.StringIO(ibdata(*args, "--format", "csv").stdout)))
    assert rows
    assert all(row["volume"].isdigit() for row in rows)
    as_json = json.loads(ibdata(*args, "--format", "json").stdout)
    assert all(type(bar["volume"]) is int for bar in as_json)
    assert [int(row["volume"]) for row in rows] == [bar["volume"] for bar in as_json]


def test_bars_parquet_is_the_arrow_table_of_the_bars(
    sim: Simulator, ibdata: Run, tmp_path: Path
) -> None:
    """``--format parquet -o FILE`` writes :meth:`Bars.to_arrow`: values, types, metadata."""
    target = tmp_path / "aapl.parquet"
    args = ("--duration", "1 D", "--bar-size", "15 mins", "--end", END)
    out = ibdata("bars", "AAPL", *at(sim), *args, "--format", "parquet", "-o", str(target))
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    with Client(sim.host, sim.port, timeout=20) as ib:
        end = dt.datetime(2025, 3, 12, 15, tzinfo=UTC)
        bars = ib.get_historical_bars("AAPL", duration="1 D", bar_size="15 mins", end=end)
    table = pq.read_table(target)
    assert table.equals(bars.to_arrow())
    assert table.schema.metadata == bars.to_arrow().schema.metadata
    assert pl.read_parquet(target).equals(bars.to_polars())


@pytest.mark.parametrize(
    ("extra", "needle"),
    [((), "--format parquet needs -o FILE"), (("--dry-run",), "--dry-run prints a plan")],
)
def test_bars_parquet_needs_a_file_and_no_dry_run(
    ibdata: Run, extra: tuple[str, ...], needle: str
) -> None:
    """Parquet without ``-o``, or with ``--dry-run``, is a usage error before connecting."""
    args = ("--start", "2025-03-10", "--end", "2025-03-11", "--format", "parquet", *extra)
    if not extra:
        args = ("--format", "parquet")
    out = ibdata("bars", "AAPL", "--port", "1", *args)
    assert out.returncode == 2
    assert needle in out.stderr


# --------------------------------------------------------------------------- export
def download(ib: Client) -> dict[str, Bars]:
    """Hourly and daily AAPL bars over the new year, kept in the client's store."""
    return {
        size: ib.get_historical_bars("AAPL", start=START, end=STOP, bar_size=size)
        for size in ("1 hour", "1 day")
    }


def test_export_writes_a_hive_dataset_that_polars_and_duckdb_read_back(
    ib: Client, ibdata: Run, store: Path, tmp_path: Path
) -> None:
    """``ibdata export`` writes one file per series and year; Polars and DuckDB read the
    dataset directly, and the rows of the range equal the bars the client returned."""
    downloaded = download(ib)
    ib.close()
    root = tmp_path / "dataset"
    out = ibdata("export", str(root))
    assert out.returncode == 0, out.stderr
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*.parquet"))
    assert files == [
        f"bar_size=1%20{size}/con_id={AAPL}/what_to_show=TRADES/hours=all/year={year}/part-0.parquet"
        for size in ("day", "hour")
        for year in (2024, 2025)
    ]
    assert out.stdout.splitlines()[-1] == f"wrote 4 Parquet files under {root}"
    for size, bars in downloaded.items():
        expected = bars.to_polars()
        folder = root / f"bar_size={size.replace(' ', '%20')}"
        lo, hi = (START, STOP) if bars.intraday else (START.date(), STOP.date())
        frame = pl.read_parquet(folder, hive_partitioning=True)
        assert frame.columns == [*expected.columns, *PARTITIONS[1:]]
        assert frame.select(pl.col("con_id").unique()).to_series().to_list() == [AAPL]
        in_range = frame.filter((pl.col("time") >= lo) & (pl.col("time") < hi))
        assert in_range.select(expected.columns).sort("time").equals(expected)
        query = (
            "SELECT * EXCLUDE (bar_size, con_id, what_to_show, hours, year) FROM read_parquet(?, "
            "hive_partitioning = true) WHERE time >= ? AND time < ? ORDER BY time"
        )
        from_duck = duck(query, f"{folder}/**/*.parquet", lo, hi)
        assert from_duck.equals(expected)
        with open_store(store) as cache:
            (key,) = [k for k in cache.series_keys() if k.bar_size == size]
            held = len(cache.load(key, -1e11, 1e11))
        assert len(frame) == held  # the whole store, not only the range asked for


def test_export_metadata_names_the_series(ib: Client, ibdata: Run, tmp_path: Path) -> None:
    """Each file's schema metadata says the conId, bar size, what to show and hours."""
    download(ib)
    ib.close()
    assert ibdata("export", str(tmp_path / "d"), "--bar-size", "1 day").returncode == 0
    (first, *_) = sorted((tmp_path / "d").rglob("*.parquet"))
    meta = {k.decode(): v.decode() for k, v in pq.read_schema(first).metadata.items()}
    assert meta["ibdata.con_id"] == str(AAPL)
    assert meta["ibdata.bar_size"] == "1 day"
    assert meta["ibdata.what_to_show"] == "TRADES"
    assert meta["ibdata.use_rth"] == "false"


def test_export_again_replaces_partitions_without_duplicates(
    ib: Client, ibdata: Run, tmp_path: Path
) -> None:
    """Exporting twice, or one year again, leaves one file per partition and no row twice;
    ``--start`` writes only the years from its own on."""
    download(ib)
    ib.close()
    root = tmp_path / "dataset"
    assert ibdata("export", str(root)).returncode == 0
    first = pl.read_parquet(root / "bar_size=1%20hour", hive_partitioning=True)
    again = ibdata("export", str(root), "--start", "2025-01-01", "--bar-size", "1 hour")
    assert again.returncode == 0, again.stderr
    assert "1 file (2025)" in again.stdout
    after = pl.read_parquet(root / "bar_size=1%20hour", hive_partitioning=True)
    assert after.sort("time").equals(first.sort("time"))
    assert after["time"].is_unique().all()
    assert not list(root.rglob("*.tmp"))


def test_export_never_contacts_tws(ib: Client, ibdata: Run, sim: Simulator, tmp_path: Path) -> None:
    """Export reads the store alone: it works with the simulator stopped."""
    download(ib)
    ib.close()
    sim.stop()
    out = ibdata("export", str(tmp_path / "d"))
    assert out.returncode == 0, out.stderr
    assert len(list((tmp_path / "d").rglob("*.parquet"))) == 4


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--con-id", "1"), "none with bars that --con-id"),
        (("--start", "2030-01-01"), "none with bars"),
        (("--start", "2025-01-01", "--end", "2024-01-01"), "must be after --start"),
    ],
)
def test_export_of_nothing_is_an_error(
    ib: Client, ibdata: Run, tmp_path: Path, args: tuple[str, ...], needle: str
) -> None:
    """A selection without bars is one error line and exit status 1, and writes nothing."""
    download(ib)
    ib.close()
    out = ibdata("export", str(tmp_path / "d"), *args)
    assert out.returncode == 1
    assert needle in out.stderr
    assert not (tmp_path / "d").exists()


def test_export_without_a_store_is_an_error(ibdata: Run, tmp_path: Path) -> None:
    """Export from a store file that does not exist says so, exit status 1."""
    out = ibdata("export", str(tmp_path / "d"), "--cache", str(tmp_path / "none.sqlite"))
    assert out.returncode == 1
    assert "no cache at" in out.stderr
    assert not (tmp_path / "none.sqlite").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [(("--con-id", "0"), "conId"), (("--bar-size", "1 sec"), "bar_size")],
)
def test_bad_export_options_are_usage_errors(
    ibdata: Run, tmp_path: Path, args: tuple[str, ...], needle: str
) -> None:
    """A bad selection is a usage error (exit 2) naming the problem."""
    out = ibdata("export", str(tmp_path / "d"), *args)
    assert out.returncode == 2
    assert needle in out.stderr
