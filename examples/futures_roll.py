"""A futures roll: daily bars of consecutive contract months stitched into one series.

Builds the codes of a registry product's contract months from its month codes
(``EURBBLZ25``, ``EURBBLH26``, ...), looks each contract's last trade date up, and holds
each contract until ``--roll-days`` business days before it, then rolls to the next one.
Prints where each roll happened and the price gap between the two contracts there. The
series is not back-adjusted.

Against the simulator, with ``ibdata sim`` running in another terminal::

    IB_PORT=7497 python examples/futures_roll.py EURBBL --days 365 --roll-days 5

Against TWS or IB Gateway with the API enabled, set ``IB_HOST`` / ``IB_PORT`` (TWS 7497
paper, 7496 live; IB Gateway 4002 paper, 4001 live) and run the same command. IB keeps
expired contracts for two years, so ``--days`` can reach about that far back.
"""

import argparse
import datetime as dt
import sys
from collections.abc import Iterator

import ibdata


def contract_months(product: ibdata.Product, first: dt.date) -> Iterator[ibdata.ContractMonth]:
    """The product's listed contract months from ``first``'s month on, oldest first."""
    year, month = first.year, first.month
    while True:
        if product.lists(month):
            yield ibdata.ContractMonth(year, month)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def business_days_before(day: dt.date, count: int) -> dt.date:
    """The date ``count`` weekdays before ``day`` (exchange holidays are not known here)."""
    while count > 0:
        day -= dt.timedelta(days=1)
        if day.weekday() < 5:
            count -= 1
    return day


def last_trade_date(ib: ibdata.Client, code: str) -> dt.date:
    """The contract's last trade date, from IB's contract details."""
    (details,) = ib.get_contract_details(code)
    return dt.datetime.strptime(details.contract.last_trade_date, "%Y%m%d").date()


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.timezone.utc)


def main() -> None:
    parser = argparse.ArgumentParser(description="Stitch contract months into one series.")
    parser.add_argument("product", nargs="?", default="EURBBL", help="a futures product code")
    parser.add_argument("--days", type=int, default=365, help="days of history (365)")
    parser.add_argument(
        "--roll-days", type=int, default=5, help="business days before the last trade date (5)"
    )
    args = parser.parse_args()

    today = dt.date.today()
    start = today - dt.timedelta(days=args.days)
    series: list[tuple[str, ibdata.Bar]] = []  # (contract code, daily bar), oldest first
    try:
        with ibdata.Client.from_env() as ib:
            product = ib.registry.get(args.product)
            if product is None or not product.has_contract_months:
                sys.exit(f"error: {args.product} is not a futures product of the registry")
            held_from = start  # each contract is held from the previous roll to its own
            rolled_out = None  # the previous contract: code, last trade date, close at roll
            for month in contract_months(product, start):
                code = f"{product.code}{month.letter}{month.year % 100:02d}"  # EURBBLH26
                last_trade = last_trade_date(ib, code)
                roll = business_days_before(last_trade, args.roll_days)
                if roll <= held_from:
                    continue  # rolled out of before the series starts
                # Up to and including the roll day: its close gives the spread at the roll.
                end = min(roll, today) + dt.timedelta(days=1)
                bars = ib.get_historical_bars(
                    code, start=midnight(held_from), end=midnight(end), bar_size="1 day"
                )
                held = [bar for bar in bars if bar.time < roll]  # daily bars carry dates
                if rolled_out and held:
                    old, old_last_trade, close = rolled_out
                    print(
                        f"roll on {held_from}: {old} -> {code} ({old} last trades "
                        f"{old_last_trade}); closes {close} -> {held[0].close}, "
                        f"spread {held[0].close - close:+.4g}"
                    )
                series.extend((code, bar) for bar in held)
                if roll > today:
                    break  # the contract held now
                rolled_out = (code, last_trade, bars[-1].close) if bars else None
                held_from = roll
    except ibdata.IBDataError as exc:
        sys.exit(f"error: {exc}")

    if not series:
        sys.exit(f"error: no bars of {args.product} since {start}")
    (first_code, first), (last_code, last) = series[0], series[-1]
    print(f"{len(series)} daily bars from {first.time} ({first_code}) to {last.time} ({last_code})")


if __name__ == "__main__":
    main()
