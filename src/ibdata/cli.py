"""The ``ibdata`` command line.

``ibdata sim`` runs the gateway simulator until interrupted; ``ibdata demo`` starts one in
the same process and prints bars and contract details fetched from it with
:class:`ibdata.Client`, so a fresh install shows real data flowing with no IB account.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from ibdata._version import __version__


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


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ibdata", description="Historical bars and contract data from Interactive Brokers."
    )
    p.add_argument("--version", action="version", version=f"ibdata {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = p.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("sim", help="run the TWS / IB Gateway simulator until interrupted")
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    sim.add_argument("--port", type=_port, default=7497, help="TCP port (7497; 0 = any free)")
    sim.add_argument(
        "--server-version",
        type=int,
        default=178,
        metavar="N",
        help="highest server version offered, 157..178 (178)",
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

    sub.add_parser("demo", help="start a simulator in-process and print data fetched from it")

    cache = sub.add_parser("cache", help="inspect or clear the history engine's bar cache")
    cache_sub = cache.add_subparsers(dest="cache_command", required=True)
    for name, text in (("info", "show what the cache holds"), ("clear", "delete every bar")):
        c = cache_sub.add_parser(name, help=text)
        c.add_argument(
            "--path",
            default=None,
            help="the cache file (default: $IBDATA_CACHE, else ~/.cache/ibdata/bars.sqlite)",
        )
    return p


def default_cache_path() -> Path:
    """The cache file the CLI uses: ``$IBDATA_CACHE``, else ``$XDG_CACHE_HOME/ibdata`` or
    ``~/.cache/ibdata``, file ``bars.sqlite``."""
    env = os.environ.get("IBDATA_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ibdata" / "bars.sqlite"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "sim":
        return _run_sim(args)
    if args.command == "cache":
        return _run_cache(args)
    if not args.verbose:
        # The demo prints its own output; ibapi logs every message at INFO.
        for name in ("ibapi", "ibdata"):
            logging.getLogger(name).setLevel(logging.WARNING)
    return _run_demo()


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
            pacing=None if args.no_pacing else PacingRules(),
            accounts=args.account or ("DU1234567",),
            no_permission=args.no_permission,
            login_tz=args.login_tz,
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
    from ibdata.cache import BarCache

    path = Path(args.path).expanduser() if args.path else default_cache_path()
    if not path.exists():
        print(f"no cache at {path}")
        return 0 if args.cache_command == "clear" else 1
    with BarCache(path) as cache:
        if args.cache_command == "clear":
            cache.clear()
            print(f"cleared {path}")
            return 0
        info = cache.info()
    print(f"cache:    {info.path}")
    print(f"size:     {info.size_bytes:,} bytes")
    print(f"schema:   version {info.schema_version}")
    print(f"series:   {info.series:,}")
    print(f"bars:     {info.bars:,}")
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
        (june,) = ib.get_contract_details("EURBBLM25")
        c = june.contract
        print(
            f"EURBBLM25: {c.local_symbol} (conId {c.con_id}), last trade {c.last_trade_date}, "
            f"{june.long_name}, {june.time_zone_id}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
