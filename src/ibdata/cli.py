"""The ``ibdata`` command line.

Commands::

    ibdata bars SYMBOL [--duration D | --start T [--end T]] [--bar-size S] [--what-to-show W]
                       [--rth] [--sec-type T] [--exchange X] [--currency C]
                       [--format table|csv|json|parquet] [-o FILE] [--cache STORE | --no-cache]
                       [--progress | --no-progress] [--max-requests N] [--dry-run]
    ibdata stream SYMBOL --bar-size S [--what-to-show W] [--rth] [--start T | --lookback SECONDS]
                         [--partial] [--format table|csv|jsonl] [--stall-after SECONDS]
                         [--sec-type T] [--exchange X] [--currency C]
    ibdata contract SYMBOL [--sec-type T] [--exchange X] [--currency C] [--include-expired]
                           [--format table|json] [-o FILE]
    ibdata products [--format table|csv|json] [-o FILE]
    ibdata health [--format table|json]
    ibdata serve ...              the REST API (``ibdata._serve``; extra ``http``)
    ibdata sim [...]              the TWS / IB Gateway simulator, until interrupted
    ibdata demo                   a simulator in-process, and data fetched from it
    ibdata cache info|clear [--cache STORE]
    ibdata cache copy SRC DST     every bar and head timestamp of one store into another
    ibdata export DIR [--cache STORE] [--con-id N] [--bar-size S] [--what-to-show W]
                      [--start T] [--end T]
                                  what a store holds, as a hive-partitioned Parquet dataset

``bars``, ``stream``, ``contract`` and ``health`` talk to TWS / IB Gateway and take ``--host``,
``--port``, ``--client-id`` (defaults: ``$IB_HOST``, ``$IB_PORT``, ``$IB_CLIENT_ID``, else
127.0.0.1, 7497 and a random id), ``--timeout`` (seconds per request, 60) and
``--connect-timeout`` (10). ``$IBDATA_PRODUCTS`` names a file of extra product codes.
``$IBDATA_LOGIN`` names the TWS login in a shared pacing ledger (default ``host:port``);
``$IBDATA_PACING_SCALE`` runs IB's pacing windows that many times faster, to match a
simulator started with ``ibdata sim --pacing-scale``.

A STORE is a path (a SQLite file) or a ``postgresql://`` URL (extra ``postgres``);
``$IBDATA_CACHE`` may be either. Every process using one store shares its bars and, per TWS
login, IB's pacing budget (see the "Sharing" guide).

Decisions, also stated in ``--help``:

- ``--start``/``--end`` are ISO 8601: ``2025-03-12``, ``2025-03-12T15:00Z``,
  ``2025-03-12T10:00-05:00``. A date alone is 00:00 UTC; a time without ``Z`` or an offset
  is refused, as in Python and REST (ibdata never guesses a zone). ``--end`` defaults to
  now.
- ``--duration`` (default ``1 D``) is one request to IB, back from ``--end`` (default: now).
  ``--start`` is a range download: split, paced, and cached in ``--cache STORE`` (default
  :func:`default_cache`; ``--no-cache`` keeps none). Only ranges use the cache.
- A range that needs more than ``--max-requests`` requests to IB (default 400, the REST
  adapter's limit; 0 for none) is refused before any bars are requested: one line saying
  how many requests and how long IB's pacing rules need for them, exit status 1 like
  other bad values. ``--dry-run`` prints the plan (:meth:`ibdata.Client.plan`) instead of
  downloading: it looks the contract up and requests no bars; ``--format`` applies to it.
- A progress bar (tqdm, on stderr) is shown for ranges when stderr is a terminal;
  ``--progress`` / ``--no-progress`` force it on or off.
- Bar times are ISO 8601 UTC with ``Z`` for intraday bars and ``YYYY-MM-DD`` session dates
  for daily and longer bars. CSV has the header ``time,open,high,low,close,volume,wap,count``
  and empty fields for missing values; JSON is a list of objects with ``null`` for them. A
  whole volume is written as an integer (``602170``), as the REST adapter does.
- ``--format parquet`` writes :meth:`ibdata.Bars.to_arrow` to ``-o FILE`` (required: a
  usage error without it); ``export`` writes a store's bars as a hive-partitioned Parquet
  dataset (``ibdata._frames.export_parquet``) and never contacts TWS.
- ``stream`` (:meth:`ibdata.Client.stream_bars`) prints each bar as it ends, flushed line by
  line, until Ctrl-C (exit 130, the stream cancelled at IB) or an error that ends the
  stream (exit 1). ``table`` and ``csv`` print their header once; ``jsonl`` is one object
  per line, as ``bars --format json`` writes each bar. ``--partial`` also prints the bar
  still forming after every update, with a ``final`` column (``jsonl``: key). What happens
  to the stream (a resubscription, a gap backfilled ...) is one line ``# kind: detail``
  on stderr with ``-v`` only.
- ``ibdata cache`` without a subcommand prints its help and exits 0.
- ``health`` connects and prints the session's state (``disconnected`` when it cannot
  connect); it exits 0 when the state is ``healthy``, 1 otherwise, with the reason on stderr.
- Errors (:class:`ibdata.IBDataError`, ``ValueError``, ``TypeError``, ``OSError``) are one
  line ``ibdata: <message>`` on stderr with exit status 1; ``--debug`` (before or after the
  command) adds the traceback. Bad option values are usage errors, checked before
  connecting: exit status 2 with argparse's message. An interrupt exits 130.
- One-shot commands log only warnings (``-v``: debug); ``sim`` and ``serve`` log at INFO.

The command line only parses, makes one :class:`ibdata.Client` call and serializes; the
arguments are checked by the same helpers as the client's, before anything is sent.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import enum
import importlib
import io
import json
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import attrs

from ibdata import _validate as v
from ibdata._client import Client
from ibdata._frames import number_text
from ibdata._ibapi import release as ibapi_release
from ibdata._progress import tqdm_progress
from ibdata._serve import DEFAULT_MAX_RANGE_REQUESTS
from ibdata._stream import LIVE_WHAT_TO_SHOW, PartialBar, StreamEvent
from ibdata._version import __version__
from ibdata.exceptions import IBDataError, RangeTooLargeError, SessionError
from ibdata.models import (
    Bar,
    Bars,
    BarSize,
    ContractDetails,
    DownloadPlan,
    Health,
    WhatToShow,
)
from ibdata.registry import ProductRegistry
from ibdata.store import is_url

T = TypeVar("T")

UTC = dt.timezone.utc

#: The columns of ``bars`` output, in order.
BAR_COLUMNS = ("time", "open", "high", "low", "close", "volume", "wap", "count")

#: The default of ``bars --max-requests``: the REST adapter's limit for one range.
DEFAULT_MAX_REQUESTS = DEFAULT_MAX_RANGE_REQUESTS

#: Exit status of a failed command (an IB error, a bad value, a file problem).
EXIT_ERROR = 1
#: Exit status after Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130

_EPILOG = """\
connection (bars, stream, contract, health):
  --host      $IB_HOST, else 127.0.0.1
  --port      $IB_PORT, else 7497 (TWS paper; live 7496, IB Gateway 4002 / 4001)
  --client-id $IB_CLIENT_ID, else a random id
  $IBDATA_PRODUCTS may name a TOML or JSON file of extra product codes.

exit status:
  0 success; 1 an error, shown as one line "ibdata: <message>" on stderr (--debug adds
  the traceback), or an unhealthy session for "health"; 2 a usage error; 130 interrupted.
"""


# ---------------------------------------------------------------------- argument types
def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, got {value}")
    return value


def _checked(check: Callable[[Any], T], parse: Callable[[str], Any] = str) -> Callable[[str], T]:
    """An argparse ``type=`` running one of the client's own argument checks."""

    def convert(text: str) -> T:
        try:
            return check(parse(text))
        except (ValueError, TypeError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"not an integer: {text!r}") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"not a number: {text!r}") from None


def _con_id(value: int) -> int:
    if value <= 0:
        raise ValueError(f"a conId is a positive integer, got {value}")
    return value


def _request_limit(value: int) -> int:
    if value < 0:
        raise ValueError(f"must be 0 (no limit) or more, got {value}")
    return value


def _live_bar_size(value: object) -> BarSize:
    size = v.bar_size(value)
    if size.seconds < 5:
        raise ValueError(f"live bars are 5 secs or longer (IB's rule); got {size.value!r}")
    return size


def _live_what_to_show(value: object) -> WhatToShow:
    show = v.what_to_show(value)
    if show not in LIVE_WHAT_TO_SHOW:
        names = ", ".join(w.value for w in LIVE_WHAT_TO_SHOW)
        raise ValueError(f"live bars are one of {names} (IB's rule); got {show.value!r}")
    return show


def _when(text: str) -> dt.datetime:
    """An ISO 8601 date (00:00 UTC) or a date-time with ``Z`` or an offset: the rule of
    every face of ibdata (``ibdata._validate.when``)."""
    try:
        return v.when(text, "the time")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("the time ")) from None


# ---------------------------------------------------------------------- the parser
def _options_parent() -> argparse.ArgumentParser:
    """``-v`` and ``--debug``, accepted after the subcommand too."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log debug messages"
    )
    p.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the traceback of an error",
    )
    return p


def _connection_parent() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("connection")
    g.add_argument("--host", default=None, help="TWS / IB Gateway host ($IB_HOST, else 127.0.0.1)")
    g.add_argument(
        "--port",
        type=_checked(v.port, _integer),
        default=None,
        help="its API port ($IB_PORT, else 7497)",
    )
    g.add_argument(
        "--client-id",
        type=_checked(v.client_id, _integer),
        default=None,
        metavar="N",
        help="API client id ($IB_CLIENT_ID, else a random free one)",
    )
    g.add_argument(
        "--timeout",
        type=_checked(lambda x: v.seconds(x, "--timeout"), _number),
        default=60.0,
        metavar="SECONDS",
        help="seconds to wait for each request to IB (60)",
    )
    g.add_argument(
        "--connect-timeout",
        type=_checked(lambda x: v.seconds(x, "--connect-timeout"), _number),
        default=10.0,
        metavar="SECONDS",
        help="seconds to wait for the session to be ready (10)",
    )
    return p


def _contract_parent() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("instrument")
    g.add_argument(
        "--sec-type",
        type=_checked(v.sec_type),
        default=None,
        metavar="TYPE",
        help="security type: STK, FUT, CONTFUT, CASH, IND, ... (STK for a plain symbol)",
    )
    g.add_argument(
        "--exchange",
        type=_checked(lambda x: v.text(x, "exchange")),
        default=None,
        help="exchange (SMART for a plain symbol)",
    )
    g.add_argument(
        "--currency",
        type=_checked(lambda x: v.text(x, "currency")),
        default=None,
        help="currency (USD for a plain symbol)",
    )
    return p


def _output_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o", "--output", metavar="FILE", default=None, help="write to FILE instead of stdout"
    )


def _format_argument(p: argparse.ArgumentParser, *choices: str) -> None:
    p.add_argument(
        "--format",
        choices=choices,
        default=choices[0],
        help=f"output format ({choices[0]})",
    )


class _VersionAction(argparse.Action):
    """``--version``: ibdata's version and the ``ibapi`` release, looked up only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        found = ibapi_release()
        print(f"ibdata {__version__}")
        print(found.describe())
        parser.exit(1 if found.mixed else 0)


def _parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ibdata",
        description="Historical bars and contract data from Interactive Brokers.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--version",
        action=_VersionAction,
        help="print ibdata's version and the ibapi release it runs on, then exit",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    options = _options_parent()
    connection = _connection_parent()
    instrument = _contract_parent()

    bars = sub.add_parser(
        "bars",
        parents=[options, connection, instrument],
        help="historical bars for a symbol or product code",
        description=(
            "Historical bars: --duration back from --end (one request to IB), or the range "
            "[--start, --end) (split, paced and cached). Times are ISO 8601: a date alone "
            "is 00:00 UTC, and a time needs Z or an offset. Bar times are printed in "
            "UTC with Z for intraday bars and as YYYY-MM-DD session dates for daily and "
            "longer bars."
        ),
    )
    bars.add_argument("symbol", help="a stock symbol (AAPL) or a product code (EURBBL, EURBBLM25)")
    when = bars.add_mutually_exclusive_group()
    when.add_argument(
        "--duration",
        type=_checked(v.duration),
        default=None,
        help="IB duration back from --end: '3600 S', '1 D', '2 W', '6 M', '1 Y' (1 D)",
    )
    when.add_argument(
        "--start",
        type=_when,
        default=None,
        metavar="TIME",
        help="download the range from TIME (ISO 8601) to --end",
    )
    bars.add_argument(
        "--end", type=_when, default=None, metavar="TIME", help="end time, ISO 8601 (now)"
    )
    bars.add_argument(
        "--bar-size",
        type=_checked(v.bar_size),
        default="1 hour",
        metavar="SIZE",
        help="'1 secs' .. '30 mins', '1 hour' .. '8 hours', '1 day', '1 week', '1 month' (1 hour)",
    )
    bars.add_argument(
        "--what-to-show",
        type=_checked(v.what_to_show),
        default="TRADES",
        metavar="WHAT",
        help="TRADES, MIDPOINT, BID, ASK, BID_ASK, ADJUSTED_LAST, ... (TRADES)",
    )
    bars.add_argument("--rth", action="store_true", help="only regular trading hours")
    _format_argument(bars, "table", "csv", "json", "parquet")
    _output_argument(bars)
    cache_opts = bars.add_mutually_exclusive_group()
    cache_opts.add_argument(
        "--cache",
        metavar="STORE",
        default=None,
        help="bar store for --start ranges, a path or a postgresql:// URL "
        "($IBDATA_CACHE, else ~/.cache/ibdata/bars.sqlite)",
    )
    cache_opts.add_argument("--no-cache", action="store_true", help="keep no cache for ranges")
    bars.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr for --start ranges (default: when stderr is a terminal)",
    )
    bars.add_argument(
        "--max-requests",
        type=_checked(_request_limit, _integer),
        default=DEFAULT_MAX_REQUESTS,
        metavar="N",
        help="refuse a --start range that needs more than N requests to IB, before "
        f"requesting any bars ({DEFAULT_MAX_REQUESTS}; 0 = no limit)",
    )
    bars.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan of a --start range (requests, their windows, the least time "
        "IB's pacing rules allow) and request no bars",
    )
    bars.set_defaults(run=_run_bars, usage_error=bars.error)

    stream = sub.add_parser(
        "stream",
        parents=[options, connection, instrument],
        help="live bars, printed as each one ends, until Ctrl-C",
        description=(
            "Live bars (IB's keepUpToDate): each bar is printed when it ends, until Ctrl-C; "
            "with --start or --lookback the history from there first, with no gap and no "
            "duplicate between the two, and none across lost sessions and resubscriptions. "
            "Times are as for 'ibdata bars'. -v prints what happens to the stream on "
            "stderr, one line '# kind: detail' each."
        ),
    )
    stream.add_argument(
        "symbol", help="a stock symbol (AAPL) or a product code (EURBBL, EURBBLM25)"
    )
    stream.add_argument(
        "--bar-size",
        type=_checked(_live_bar_size),
        required=True,
        metavar="SIZE",
        help="'5 secs' .. '30 mins', '1 hour' .. '8 hours', '1 day', '1 week', '1 month'",
    )
    stream.add_argument(
        "--what-to-show",
        type=_checked(_live_what_to_show),
        default="TRADES",
        metavar="WHAT",
        help="TRADES, MIDPOINT, BID or ASK (TRADES)",
    )
    stream.add_argument("--rth", action="store_true", help="only regular trading hours")
    since = stream.add_mutually_exclusive_group()
    since.add_argument(
        "--start",
        type=_when,
        default=None,
        metavar="TIME",
        help="first print the bars from TIME (ISO 8601), then the live ones (default: only "
        "bars that end from now on)",
    )
    since.add_argument(
        "--lookback",
        type=_checked(lambda x: v.seconds(x, "--lookback"), _number),
        default=None,
        metavar="SECONDS",
        help="instead of --start: first print the bars of the last SECONDS",
    )
    stream.add_argument(
        "--partial",
        action="store_true",
        help="also print the bar still forming after every update, with a 'final' column",
    )
    stream.add_argument(
        "--stall-after",
        type=_checked(lambda x: v.seconds(x, "--stall-after"), _number),
        default=None,
        metavar="SECONDS",
        help="subscribe again after SECONDS without an update (the bar size, at most 60, plus 30)",
    )
    _format_argument(stream, "table", "csv", "jsonl")
    stream.set_defaults(run=_run_stream)

    contract = sub.add_parser(
        "contract",
        parents=[options, connection, instrument],
        help="contract details of a symbol or product code",
        description="Every contract IB lists for SYMBOL (a futures product code without a "
        "month: its continuous contract).",
    )
    contract.add_argument("symbol", help="a stock symbol (AAPL) or a product code (EURBBLM25)")
    contract.add_argument(
        "--include-expired", action="store_true", help="find expired futures contracts too"
    )
    _format_argument(contract, "table", "json")
    _output_argument(contract)
    contract.set_defaults(run=_run_contract)

    products = sub.add_parser(
        "products",
        parents=[options],
        help="the product codes ibdata knows",
        description="The product codes of the registry: the built-in ones and those of the "
        "file $IBDATA_PRODUCTS names.",
    )
    _format_argument(products, "table", "csv", "json")
    _output_argument(products)
    products.set_defaults(run=_run_products)

    health = sub.add_parser(
        "health",
        parents=[options, connection],
        help="connect and print the session's health",
        description="Connect, print the session's state, and exit 0 when it is healthy, "
        "1 otherwise (the reason on stderr).",
    )
    _format_argument(health, "table", "json")
    health.set_defaults(run=_run_health)

    # ================================================================= serve
    # ``ibdata serve`` lives in ibdata._serve: ``add_arguments(parser)`` and
    # ``run(args) -> int``. It is imported only when "serve" is on the command line, so
    # the other commands never load (or depend on) the REST stack.
    _add_serve(sub, options, "serve" in argv)
    # ================================================================= end of serve

    sim = sub.add_parser(
        "sim",
        parents=[options],
        help="run the TWS / IB Gateway simulator until interrupted",
        description="Run the TWS / IB Gateway simulator until Ctrl-C or SIGTERM: a fake TWS "
        "that speaks the real socket protocol, with generated bars and contracts for a "
        "catalogue of instruments. Point ibdata, ibapi or any other TWS client at --host "
        "and --port.",
    )
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    sim.add_argument("--port", type=_port, default=7497, help="TCP port (7497; 0 = any free)")
    sim.add_argument(
        "--server-version",
        type=int,
        default=200,
        metavar="N",
        help="highest server version offered, 157..200 (200)",
    )
    sim.add_argument(
        "--latency",
        type=_positive_float,
        default=0.0,
        metavar="SECONDS",
        help="delay added before every response (0)",
    )
    sim.add_argument(
        "--gateway", action="store_true", help="send IB Gateway's start-up notices, not TWS's"
    )
    sim.add_argument(
        "--no-pacing", action="store_true", help="do not enforce IB's historical pacing rules"
    )
    sim.add_argument(
        "--pacing-scale",
        type=_positive_float,
        default=1.0,
        metavar="N",
        help="run the pacing windows N times faster (1); clients set $IBDATA_PACING_SCALE=N",
    )
    sim.add_argument(
        "--account",
        action="append",
        metavar="CODE",
        help="account code for managedAccounts (repeatable; DU1234567)",
    )
    sim.add_argument(
        "--no-permission",
        action="append",
        default=[],
        metavar="SYMBOL",
        help="refuse historical data for this symbol or conId (repeatable)",
    )
    sim.add_argument(
        "--login-tz",
        default="UTC",
        metavar="ZONE",
        help="TWS login time zone, an IANA name (UTC)",
    )
    sim.add_argument(
        "--login-tz-names",
        choices=("short", "long"),
        default="short",
        help="name the login zone in the connection time by its abbreviation (GMT, BST) "
        "or by Java's long name (Greenwich Mean Time, British Summer Time) (short)",
    )
    sim.add_argument(
        "--window-semantics",
        choices=("real", "sessions"),
        default="real",
        help="how a duration becomes bars: as real TWS (trading time, overlapping bars "
        "included) or counted in whole sessions, the simulator's earlier model (real)",
    )
    sim.add_argument(
        "--price-format",
        choices=("tick", "four", "short"),
        default="tick",
        help="prices padded to the tick (254.20), to four decimals (254.2000) or short "
        "(254.2) (tick)",
    )
    sim.add_argument(
        "--volume-units",
        choices=("auto", "shares"),
        default="auto",
        help="US stock volumes in lots below server version 175, as TWS sends them, or "
        "always in shares (auto)",
    )
    sim.add_argument(
        "--api-time-zone",
        choices=("instrument", "operator", "utc"),
        default="instrument",
        help="TWS's 'send instrument-specific attributes in' setting for date-times from "
        "server version 174 (instrument)",
    )
    sim.set_defaults(run=_run_sim)

    demo = sub.add_parser(
        "demo",
        parents=[options],
        help="start a simulator in-process and print data from it",
        description="Start a simulator in this process, connect to it, print a week of daily "
        "AAPL bars, a day of hourly Euro-Bund bars and the next quarterly Euro-Bund "
        "contract, and stop. Needs no TWS and no configuration.",
    )
    demo.set_defaults(run=lambda args: _run_demo())

    cache = sub.add_parser(
        "cache",
        parents=[options],
        help="inspect, clear or copy the history engine's bar store",
        description="Inspect, clear or copy the history engine's bar store: a SQLite file or "
        "a postgresql:// URL ($IBDATA_CACHE, else ~/.cache/ibdata/bars.sqlite).",
    )
    cache_sub = cache.add_subparsers(dest="cache_command", metavar="SUBCOMMAND")
    for name, text in (
        ("info", "show where the store is, its size, series, bars and pacing ledger"),
        ("clear", "delete every bar, covered interval and head timestamp (not the ledger)"),
    ):
        c = cache_sub.add_parser(
            name, parents=[options], help=text, description=f"{text[0].upper()}{text[1:]}."
        )
        c.add_argument(
            "--cache",
            "--path",
            dest="path",
            metavar="STORE",
            default=None,
            help="the store, a path or a postgresql:// URL "
            "(default: $IBDATA_CACHE, else ~/.cache/ibdata/bars.sqlite)",
        )
    copy = cache_sub.add_parser(
        "copy",
        parents=[options],
        help="copy every bar, covered interval and head timestamp of SRC into DST",
        description="Copy every bar, covered interval and head timestamp of one store into "
        "another (SQLite to PostgreSQL or back); what DST holds for the same intervals is "
        "replaced, the rest of it kept. Each interval is one transaction in DST.",
    )
    copy.add_argument("source", metavar="SRC", help="the store to read, a path or a URL")
    copy.add_argument("target", metavar="DST", help="the store to write, a path or a URL")
    cache.set_defaults(run=_run_cache, print_help=cache.print_help)

    export = sub.add_parser(
        "export",
        parents=[options],
        help="write the bars a store holds as a hive-partitioned Parquet dataset",
        description="Write the bars the store holds, one file per series and year, under "
        "DIR/bar_size=.../con_id=.../what_to_show=.../hours=all|rth/year=YYYY/part-0.parquet, "
        "which DuckDB and Polars read directly. Reads the store only: it never contacts TWS "
        "(download with 'ibdata bars --start' first). Each year written replaces that "
        "partition's file, so an export can be repeated or extended.",
    )
    export.add_argument("directory", metavar="DIR", help="the dataset's directory")
    export.add_argument(
        "--cache",
        dest="path",
        metavar="STORE",
        default=None,
        help="the store, a path or a postgresql:// URL "
        "(default: $IBDATA_CACHE, else ~/.cache/ibdata/bars.sqlite)",
    )
    export.add_argument(
        "--con-id",
        type=_checked(_con_id, _integer),
        action="append",
        default=[],
        metavar="N",
        help="only this contract (IB's conId, as 'ibdata contract' shows it; repeatable)",
    )
    export.add_argument(
        "--bar-size",
        type=_checked(v.bar_size),
        action="append",
        default=[],
        metavar="SIZE",
        help="only this bar size (repeatable)",
    )
    export.add_argument(
        "--what-to-show",
        type=_checked(v.what_to_show),
        action="append",
        default=[],
        metavar="WHAT",
        help="only bars of this kind: TRADES, MIDPOINT, ... (repeatable)",
    )
    export.add_argument(
        "--start",
        type=_when,
        default=None,
        metavar="TIME",
        help="only the years from TIME's on (ISO 8601); each is written whole",
    )
    export.add_argument(
        "--end",
        type=_when,
        default=None,
        metavar="TIME",
        help="only the years up to the one holding the last instant before TIME",
    )
    export.set_defaults(run=_run_export)
    return p


def _add_serve(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    options: argparse.ArgumentParser,
    wanted: bool,
) -> None:
    """Register ``serve``; its arguments come from ``ibdata._serve`` when it is wanted."""
    text = "run the REST API server (needs the extra: pip install 'ibdata[http]')"
    p = sub.add_parser("serve", parents=[options], help=text, description=text)
    if not wanted:
        return
    try:
        serve = importlib.import_module("ibdata._serve")
    except ImportError as exc:
        reason = f"ibdata serve is not available: {exc}"
        p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        p.set_defaults(run=lambda args: _unavailable(reason))
        return
    serve.add_arguments(p)
    p.set_defaults(run=_run_serve)


def _unavailable(reason: str) -> int:
    print(f"ibdata: {reason}", file=sys.stderr)
    return EXIT_ERROR


def _run_serve(args: argparse.Namespace) -> int:
    serve = importlib.import_module("ibdata._serve")
    return int(serve.run(args))


def default_cache_path() -> Path:
    """The SQLite file the CLI uses when ``$IBDATA_CACHE`` names none:
    ``$XDG_CACHE_HOME/ibdata`` or ``~/.cache/ibdata``, file ``bars.sqlite``
    (``$IBDATA_CACHE`` itself when it is a path)."""
    env = os.environ.get("IBDATA_CACHE")
    if env and not is_url(env):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ibdata" / "bars.sqlite"


def default_cache() -> str | Path:
    """The store the CLI uses: ``$IBDATA_CACHE`` (a path or a ``postgresql://`` URL), else
    :func:`default_cache_path`."""
    env = os.environ.get("IBDATA_CACHE", "").strip()
    return env if is_url(env) else default_cache_path()


def _store_target(given: str | None) -> str | Path:
    """A store the user named (a URL as given, a path expanded), else the default."""
    if not given:
        return default_cache()
    return given if is_url(given) else Path(given).expanduser()


# ---------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status.

    Errors ibdata raises (:class:`~ibdata.exceptions.IBDataError`), bad values
    (``ValueError``, ``TypeError``) and file problems (``OSError``) are printed as one line
    ``ibdata: <message>`` on stderr and give status 1; ``--debug`` prints the traceback
    first. Usage errors give status 2, an interrupt 130.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = _parser(arguments).parse_args(arguments)
    verbose = getattr(args, "verbose", False)
    debug = getattr(args, "debug", False)
    # Servers log what they do; one-shot commands only warnings (ibapi logs every message
    # at INFO), so that stderr holds little but the error line.
    server = args.command in ("sim", "serve")
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO if server else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print("ibdata: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (| head): not worth a message
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR
    except (IBDataError, ValueError, TypeError, OSError, ImportError) as exc:
        if debug:
            traceback.print_exc()
        message = str(exc) or type(exc).__name__
        print(f"ibdata: {' '.join(message.split())}", file=sys.stderr)
        return EXIT_ERROR


# ---------------------------------------------------------------------- data commands
def _client(args: argparse.Namespace, *, cache: str | Path | None = None) -> Client:
    """A client from the environment, overridden by the connection options given."""
    options: dict[str, Any] = {
        "timeout": args.timeout,
        "connect_timeout": args.connect_timeout,
        "cache": cache,
    }
    for name in ("host", "port", "client_id"):
        value = getattr(args, name)
        if value is not None:
            options[name] = value
    return Client.from_env(**options)


def _emit(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    with open(output, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def _run_bars(args: argparse.Namespace) -> int:
    ranged = args.start is not None
    if args.dry_run and not ranged:
        args.usage_error("--dry-run plans a --start range; --duration is always one request")
    if args.format == "parquet":
        if args.dry_run:
            args.usage_error("--format parquet writes bars; --dry-run prints a plan")
        if args.output is None:
            args.usage_error("--format parquet needs -o FILE: Parquet is not written to a terminal")
        _parquet_writer()  # before connecting: a missing pyarrow costs no download
    cache = None
    if ranged and not args.no_cache:
        cache = _store_target(args.cache)
    show_progress = args.progress if args.progress is not None else sys.stderr.isatty()
    progress = None
    if ranged and show_progress:
        progress = tqdm_progress(file=sys.stderr, desc=args.symbol, leave=False)
    instrument = {
        "bar_size": args.bar_size,
        "what_to_show": args.what_to_show,
        "use_rth": args.rth,
        "sec_type": args.sec_type,
        "exchange": args.exchange,
        "currency": args.currency,
    }
    with _client(args, cache=cache) as ib:
        if args.dry_run:
            plan = ib.plan(args.symbol, start=args.start, end=args.end, **instrument)
            _emit(_render_plan(plan, args.format), args.output)
            return 0
        try:
            bars = ib.get_historical_bars(
                args.symbol,
                duration=args.duration,
                start=args.start,
                end=args.end,
                progress=progress,
                max_requests=(args.max_requests or None) if ranged else None,
                **instrument,
            )
        except RangeTooLargeError as exc:
            raise ValueError(
                f"the range needs {exc.plan.describe()}, more than --max-requests "
                f"{exc.max_requests} allows; shorten --start/--end, use a larger --bar-size, "
                "or raise --max-requests (0: no limit). --dry-run shows the plan"
            ) from exc
    if args.format == "parquet":
        _parquet_writer()(bars.to_arrow(), args.output)
        return 0
    _emit(_render_bars(bars, args.format), args.output)
    return 0


def _run_stream(args: argparse.Namespace) -> int:
    if not getattr(args, "verbose", False):  # its events are shown with -v only
        logging.getLogger("ibdata.stream").setLevel(logging.ERROR)
    on_event = _print_event if getattr(args, "verbose", False) else None
    write = _bar_writer(args.format, args.bar_size, partial=args.partial)
    with _client(args) as ib:
        stream = ib.stream_bars(
            args.symbol,
            bar_size=args.bar_size,
            what_to_show=args.what_to_show,
            use_rth=args.rth,
            start=args.start,
            lookback=args.lookback,
            include_partial=args.partial,
            stall_after=args.stall_after,
            on_event=on_event,
            sec_type=args.sec_type,
            exchange=args.exchange,
            currency=args.currency,
        )
        with stream:
            write(None)  # the header, before the first bar
            for bar in stream:
                write(bar)
    return 0


def _print_event(event: StreamEvent) -> None:
    print(f"# {event.kind}: {' '.join(event.detail.split())}", file=sys.stderr, flush=True)


def _bar_writer(form: str, size: BarSize, *, partial: bool) -> Callable[[Bar | None], None]:
    """A function printing one bar per line as ``form`` (the header for None), flushed."""
    columns = (*BAR_COLUMNS, "final") if partial else BAR_COLUMNS
    out = sys.stdout

    def row(bar: Bar) -> dict[str, Any]:
        values: dict[str, Any] = {c: getattr(bar, c) for c in BAR_COLUMNS}
        values["time"] = _iso(bar.time)
        values["volume"] = _whole(bar.volume)
        if partial:
            values["final"] = not isinstance(bar, PartialBar)
        return values

    if form == "jsonl":

        def jsonl(bar: Bar | None) -> None:
            if bar is not None:
                out.write(json.dumps(row(bar)) + "\n")
                out.flush()

        return jsonl
    if form == "csv":
        writer = csv.writer(out, lineterminator="\n")

        def csv_row(bar: Bar | None) -> None:
            if bar is None:
                writer.writerow(columns)
            else:
                values = row(bar)
                writer.writerow([_cell(values[c]) for c in columns])
            out.flush()

        return csv_row
    # table: fixed widths, since the rows to come are unknown
    widths = [20 if size.intraday else 10, *(max(len(c), 10) for c in columns[1:])]

    def table(bar: Bar | None) -> None:
        if bar is None:
            cells = list(columns)
        else:
            values = row(bar)
            cells = [values["time"], *(_cell(values[c]) for c in columns[1:])]
        line = "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        )
        out.write(line.rstrip() + "\n")
        out.flush()

    return table


def _cell(value: object) -> str:
    """A value in CSV or a table: numbers as :func:`number_text`, ``true``/``false``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, (int, float)):
        return number_text(value)
    return str(value)


def _parquet_writer() -> Callable[[Any, str], None]:
    """``pyarrow.parquet.write_table``; ImportError naming the extra when pyarrow is missing."""
    try:
        import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise ImportError(
            "--format parquet needs pyarrow, an optional dependency of ibdata; "
            "install it with: pip install 'ibdata[arrow]'"
        ) from None
    write: Callable[[Any, str], None] = pq.write_table
    return write


def _run_contract(args: argparse.Namespace) -> int:
    with _client(args) as ib:
        details = ib.get_contract_details(
            args.symbol,
            sec_type=args.sec_type,
            exchange=args.exchange,
            currency=args.currency,
            include_expired=args.include_expired,
        )
    _emit(_render_contracts(details, args.format), args.output)
    return 0


def _run_products(args: argparse.Namespace) -> int:
    registry = ProductRegistry.from_env()
    header = (
        *("code", "name", "symbol", "sec_type", "exchange", "currency"),
        *("trading_class", "multiplier", "months"),
    )
    rows = [
        {"code": code, **product.to_dict()} for code, product in sorted(registry.products.items())
    ]
    if args.format == "json":
        text = _json_lines(rows)
    else:
        cells = [[str(row[name]) for name in header] for row in rows]
        text = _csv(header, cells) if args.format == "csv" else _table(header, cells)
    _emit(text, args.output)
    return 0


def _run_health(args: argparse.Namespace) -> int:
    failure: SessionError | None = None
    client = _client(args)
    try:
        try:
            client.connect()
        except SessionError as exc:
            failure = exc
        health = client.health()
    finally:
        client.close()
    _emit(_render_health(health, args.format), None)
    if failure is not None:
        raise failure
    return 0 if health.status == "healthy" else EXIT_ERROR


# ---------------------------------------------------------------------- serializing
def _iso(value: dt.datetime | dt.date) -> str:
    """A bar or record time: ``YYYY-MM-DDTHH:MM:SSZ`` in UTC, or a date ``YYYY-MM-DD``."""
    if isinstance(value, dt.datetime):
        text = value.astimezone(UTC).replace(tzinfo=None).isoformat()
        return text + "Z"
    return value.isoformat()


def _json_default(value: object) -> object:
    """JSON for the records ibdata returns: attrs classes, mappings, times and enums."""
    if isinstance(value, (dt.datetime, dt.date)):
        return _iso(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return dict(value)
    if attrs.has(type(value)):
        return attrs.asdict(value, recurse=False)  # type: ignore[arg-type]
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _json_lines(rows: Sequence[object]) -> str:
    """A JSON list with one element per line."""
    if not rows:
        return "[]\n"
    items = ",\n".join("  " + json.dumps(row, default=_json_default) for row in rows)
    return f"[\n{items}\n]\n"


def _csv(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: int = 0) -> str:
    """Columns padded to their widest cell; the last ``right`` columns right-aligned."""
    widths = [len(name) for name in header]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    first_right = len(header) - right
    lines = []
    for row in (header, *rows):
        cells = [
            cell.rjust(w) if i >= first_right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def _whole(value: float | None) -> float | int | None:
    """A volume as an int when it is whole (``602170``, not ``602170.0``), as REST writes it."""
    return int(value) if value is not None and value.is_integer() else value


def _render_bars(bars: Bars, form: str) -> str:
    rows = bars.to_dicts()
    for row in rows:
        row["time"] = _iso(row["time"])
        row["volume"] = _whole(row["volume"])
    if form == "json":
        return _json_lines(rows)
    if form == "csv":
        return _csv(
            BAR_COLUMNS, [["" if r[c] is None else r[c] for c in BAR_COLUMNS] for r in rows]
        )
    cells = [[r["time"]] + [number_text(r[c]) for c in BAR_COLUMNS[1:]] for r in rows]
    return _table(BAR_COLUMNS, cells, right=len(BAR_COLUMNS) - 1)


def _render_plan(plan: DownloadPlan, form: str) -> str:
    """A plan as JSON, its chunks as CSV, or a summary above a table of its chunks."""
    if form == "json":
        return json.dumps(plan.to_dict(), indent=2) + "\n"
    chunks = [[_iso(start), _iso(end)] for start, end in plan.chunks]
    if form == "csv":
        return _csv(("start", "end"), chunks)
    if plan.head_timestamp is not None:
        head = _iso(plan.head_timestamp)
    else:
        head = "unknown: not asked, so the range is not clipped to it; the download asks first"
    hours = "regular trading hours" if plan.use_rth else "all hours"
    summary = [
        ("contract", f"{plan.contract.describe()} (con_id {plan.contract.con_id})"),
        ("bars", f"{plan.bar_size.value} {plan.what_to_show.value}, {hours}"),
        ("range", f"{_iso(plan.start)} .. {_iso(plan.end)}"),
        ("head timestamp", head),
        ("requests", plan.describe()),
    ]
    text = "".join(f"{key + ':':<16}{value}\n" for key, value in summary)
    if chunks:
        text += "\n" + _table(("start", "end"), chunks)
    return text


def _render_contracts(details: Sequence[ContractDetails], form: str) -> str:
    if form == "json":
        return _json_lines(details)
    header = (
        *("con_id", "symbol", "sec_type", "local_symbol", "exchange", "currency"),
        *("last_trade_date", "multiplier", "time_zone", "name"),
    )
    rows = [
        [
            str(d.contract.con_id),
            d.contract.symbol,
            d.contract.sec_type,
            d.contract.local_symbol,
            d.contract.exchange,
            d.contract.currency,
            d.contract.last_trade_date,
            d.contract.multiplier,
            d.time_zone_id,
            d.long_name,
        ]
        for d in details
    ]
    return _table(header, rows)


def _render_health(health: Health, form: str) -> str:
    record = health.to_dict()
    if form == "json":
        return json.dumps(record, indent=2) + "\n"
    lines = []
    for key, value in record.items():
        if isinstance(value, dict):
            text = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
        elif isinstance(value, list):
            text = ", ".join(str(x) for x in value) or "-"
        else:
            text = "-" if value is None else str(value)
        lines.append(f"{key + ':':<24} {text}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- sim, cache, demo
def _run_sim(args: argparse.Namespace) -> int:
    from ibdata.pacing import PacingRules
    from ibdata.sim import Simulator

    try:
        sim = Simulator(
            args.host,
            args.port,
            server_version=args.server_version,
            gateway=args.gateway,
            latency=args.latency,
            pacing=None if args.no_pacing else PacingRules(time_scale=args.pacing_scale),
            accounts=args.account or ("DU1234567",),
            no_permission=args.no_permission,
            login_tz=args.login_tz,
            login_tz_names=args.login_tz_names,
            window_semantics=args.window_semantics,
            price_format=args.price_format,
            volume_units=args.volume_units,
            api_time_zone=args.api_time_zone,
        )
        sim.start()
    except (ValueError, OSError) as exc:
        print(f"ibdata sim: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    flavour = "IB Gateway" if args.gateway else "TWS"
    print(
        f"ibdata simulator ({flavour}, server version {args.server_version}) "
        f"listening on {sim.host}:{sim.port}",
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
    print("simulator stopped", flush=True)
    return 0


def _run_cache(args: argparse.Namespace) -> int:
    from ibdata.store import open_store

    if args.cache_command is None:  # a bare "ibdata cache": what can be done with it
        args.print_help()
        return 0
    if args.cache_command == "copy":
        return _run_cache_copy(args.source, args.target)
    target = _store_target(args.path)
    if isinstance(target, Path) and not target.exists():
        print(f"no cache at {target}")
        return 0 if args.cache_command == "clear" else 1
    with open_store(target) as cache:
        if args.cache_command == "clear":
            cache.clear()
            print(f"cleared {cache.location}")
            return 0
        info = cache.info()
    print(f"cache:    {info.location}")
    print(f"backend:  {info.backend}")
    print(f"size:     {info.size_bytes:,} bytes")
    print(f"schema:   version {info.schema_version}")
    print(f"series:   {info.series:,}")
    print(f"bars:     {info.bars:,}")
    print(f"logins:   {info.logins:,} in the pacing ledger, {info.leases:,} live leases")
    return 0


def _run_cache_copy(source: str, target: str) -> int:
    from ibdata.store import copy_store, open_store

    src_target, dst_target = _store_target(source), _store_target(target)
    if isinstance(src_target, Path) and not src_target.exists():
        raise FileNotFoundError(f"no cache at {src_target}")
    with open_store(src_target) as src, open_store(dst_target) as dst:
        if src.location == dst.location:
            raise ValueError(f"SRC and DST are the same store ({src.location})")
        copied = copy_store(src, dst)
        print(
            f"copied {copied.series:,} series, {copied.bars:,} bars and "
            f"{copied.heads:,} head timestamps from {src.location} to {dst.location}"
        )
    return 0


def _run_export(args: argparse.Namespace) -> int:
    from ibdata._frames import export_parquet
    from ibdata.store import open_store

    if args.start is not None and args.end is not None and args.end <= args.start:
        raise ValueError(f"--end ({args.end}) must be after --start ({args.start})")
    target = _store_target(args.path)
    if isinstance(target, Path) and not target.exists():
        raise FileNotFoundError(f"no cache at {target}")
    directory = Path(args.directory).expanduser()
    with open_store(target) as store:
        done = export_parquet(
            store,
            directory,
            con_ids=set(args.con_id),
            bar_sizes={size.value for size in args.bar_size},
            what_to_show={what.value for what in args.what_to_show},
            start=args.start,
            end=args.end,
        )
        if not done:
            held = len(store.series_keys())
            raise ValueError(
                f"no bars to export: {store.location} holds {held} series, none with bars "
                "that --con-id, --bar-size, --what-to-show, --start and --end select"
            )
    for series in done:
        key = series.key
        hours = "regular trading hours" if key.use_rth else "all hours"
        years = sorted(int(path.parent.name.removeprefix("year=")) for path in series.files)
        span = f"{years[0]}" if len(years) == 1 else f"{years[0]}-{years[-1]}"
        noun = "file" if len(series.files) == 1 else "files"
        print(
            f"con_id {key.con_id}, {key.bar_size} {key.what_to_show}, {hours}: "
            f"{series.bars:,} bars in {len(series.files)} {noun} ({span})"
        )
    files = sum(len(series.files) for series in done)
    print(f"wrote {files} Parquet {'file' if files == 1 else 'files'} under {directory}")
    return 0


def _run_demo() -> int:
    import ibdata
    from ibdata.sim import Simulator

    with Simulator() as sim, ibdata.Client(sim.host, sim.port, timeout=30) as ib:
        health = ib.health()
        print(
            f"simulator on {sim.host}:{sim.port}: client {health.client_id}, "
            f"server version {health.server_version}, accounts {', '.join(health.accounts)}"
        )
        bars = ib.get_historical_bars("AAPL", duration="1 W", bar_size="1 day")
        print(f"\nAAPL daily bars ({len(bars)}), times are session dates")
        print(f"{'date':<10} {'open':>9} {'high':>9} {'low':>9} {'close':>9} {'volume':>10}")
        for b in bars:
            print(
                f"{b.time!s:<10} {b.open:>9.2f} {b.high:>9.2f} {b.low:>9.2f} "
                f"{b.close:>9.2f} {b.volume or 0:>10.0f}"
            )
        hourly = ib.get_historical_bars("EURBBL", duration="1 D", bar_size="1 hour")
        last = hourly[-1]
        print(
            f"\nEuro-Bund (EURBBL, continuous): {len(hourly)} hourly bars, last at "
            f"{last.time:%Y-%m-%d %H:%M} UTC, close {last.close:.2f}"
        )
        code = _next_quarter_code("EURBBL", sim.clock.now().date())
        (details,) = ib.get_contract_details(code)
        c = details.contract
        print(
            f"{code}: {c.local_symbol} (conId {c.con_id}), last trade {c.last_trade_date}, "
            f"{details.long_name}, {details.time_zone_id}"
        )
    return 0


def _next_quarter_code(product: str, today: dt.date) -> str:
    """The product code with the month suffix of the first quarterly month after today's."""
    month = (today.month // 3 + 1) * 3
    year = today.year + (month > 12)
    month = month - 12 if month > 12 else month
    return f"{product}{'HMUZ'[month // 3 - 1]}{year % 100:02d}"


if __name__ == "__main__":
    sys.exit(main())
