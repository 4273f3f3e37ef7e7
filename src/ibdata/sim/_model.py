"""The simulator's own records: contracts it knows and the trading sessions they follow.

The simulator never imports ``ibapi`` or the client's internals, so these types are separate
from :mod:`ibdata.models`; they describe what a fake TWS knows about an instrument.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

import attrs

from ibdata.sim._calendar import CALENDAR_NAMES, get_calendar

UTC = dt.timezone.utc


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """Return the :class:`~zoneinfo.ZoneInfo` for an IB time-zone name such as ``US/Eastern``."""
    return ZoneInfo(name)


def _hhmm(text: str) -> dt.time:
    if len(text) != 4 or not text.isdigit():
        raise ValueError(f"session time must be HHMM, got {text!r}")
    return dt.time(int(text[:2]), int(text[2:]))


@attrs.frozen
class SessionTemplate:
    """A weekly trading schedule in the instrument's time zone.

    A session is named by the calendar date on which it *closes* (IB dates a daily bar by the
    day its session closes). ``days`` are the weekdays (0 = Monday) on which a session closes.
    When ``open`` is not earlier than ``close`` the session opens on the previous calendar day
    (overnight futures and FX sessions). ``early_close`` (``HHMM``, optional) is the close on
    the days the exchange calendar marks as early closes (13:00 for US stocks' regular hours);
    without it those days close as usual.

    The methods take the name of an exchange calendar (``NYSE``, ``CME`` …): no session
    closes on one of its holidays, and early-close days end at ``early_close``.
    """

    open: str
    close: str
    days: tuple[int, ...] = (0, 1, 2, 3, 4)
    early_close: str = ""

    def __attrs_post_init__(self) -> None:
        _hhmm(self.open)
        _hhmm(self.close)
        if self.early_close:
            _hhmm(self.early_close)
            if not self.overnight and not self.open < self.early_close <= self.close:
                raise ValueError(
                    f"early_close must lie after the open and not after the close, "
                    f"got {self.early_close!r}"
                )
        if not self.days or any(d not in range(7) for d in self.days):
            raise ValueError(f"days must be weekdays 0..6, got {self.days!r}")

    @property
    def overnight(self) -> bool:
        """True when a session opens on the calendar day before it closes."""
        return self.open >= self.close

    def session_on(self, day: dt.date, tz: str, calendar: str = "") -> Session | None:
        """The session that closes on ``day``, or None if the market is closed that day.

        Raises:
            ValueError: ``calendar`` is not a known exchange calendar.
        """
        if day.weekday() not in self.days:
            return None
        cal = get_calendar(calendar)
        if cal.is_holiday(day):
            return None
        close = self.close
        if self.early_close and cal.is_early_close(day):
            close = self.early_close
        z = zone(tz)
        open_day = day - dt.timedelta(days=1) if self.overnight else day
        start = dt.datetime.combine(open_day, _hhmm(self.open), tzinfo=z)
        end = dt.datetime.combine(day, _hhmm(close), tzinfo=z)
        return Session(day, start.astimezone(UTC), end.astimezone(UTC))

    def sessions(
        self, tz: str, start: dt.datetime, end: dt.datetime, calendar: str = ""
    ) -> list[Session]:
        """Every session that overlaps ``[start, end)`` (aware datetimes), oldest first."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware")
        z = zone(tz)
        first = start.astimezone(z).date()
        last = end.astimezone(z).date() + dt.timedelta(days=1)
        out: list[Session] = []
        day = first
        while day <= last:
            s = self.session_on(day, tz, calendar)
            if s is not None and s.start < end and s.end > start:
                out.append(s)
            day += dt.timedelta(days=1)
        return out

    def hours(self, tz: str, first: dt.date, days: int, calendar: str = "") -> str:
        """IB's ``tradingHours``/``liquidHours`` text for ``days`` calendar days from ``first``.

        Entries are ``YYYYMMDD:HHMM-YYYYMMDD:HHMM`` in the instrument's zone, and
        ``YYYYMMDD:CLOSED`` for days without a session (weekends and the calendar's
        holidays), joined by ``;``.
        """
        parts: list[str] = []
        z = zone(tz)
        for i in range(days):
            day = first + dt.timedelta(days=i)
            s = self.session_on(day, tz, calendar)
            if s is None:
                parts.append(f"{day:%Y%m%d}:CLOSED")
                continue
            a = s.start.astimezone(z)
            b = s.end.astimezone(z)
            parts.append(f"{a:%Y%m%d}:{a:%H%M}-{b:%Y%m%d}:{b:%H%M}")
        return ";".join(parts)


@attrs.frozen
class Session:
    """One trading session: the date it is named by and its bounds in UTC."""

    date: dt.date
    start: dt.datetime
    end: dt.datetime


@attrs.frozen(kw_only=True)
class SimContract:
    """Everything the simulator knows about one instrument.

    The first group of fields is what TWS reports in contract details (names follow IB's
    ``ContractDetails``, snake-cased); the second group drives the simulator's bar generator.
    ``calendar`` names the exchange calendar whose holidays have no session and whose early
    closes end sessions early (``NYSE``, ``CME``, ``EUREX``, ``ICE_EUROPE``, ``IDEALPRO``;
    empty for none; the rules are listed in the simulator guide).
    """

    con_id: int
    symbol: str
    sec_type: str
    exchange: str
    currency: str
    local_symbol: str
    trading_class: str = ""
    primary_exchange: str = ""
    last_trade_date: str = ""  # YYYYMMDD for futures
    last_trade_time: str = ""  # HH:MM for futures, sent after the date
    contract_month: str = ""  # YYYYMM for futures
    multiplier: str = ""
    market_name: str = ""
    min_tick: float = 0.01
    order_types: str = "ACTIVETIM,AD,ADJUST,ALERT,ALLOC,AVGCOST,BASKET,DAY,GTC,LMT,MKT,STP,WHATIF"
    valid_exchanges: str = ""
    price_magnifier: int = 1
    under_con_id: int = 0
    long_name: str = ""
    industry: str = ""
    category: str = ""
    subcategory: str = ""
    time_zone_id: str = "US/Eastern"
    trading: SessionTemplate = SessionTemplate("0930", "1600")
    liquid: SessionTemplate = SessionTemplate("0930", "1600")
    calendar: str = attrs.field(default="", validator=attrs.validators.in_(CALENDAR_NAMES))
    sec_ids: tuple[tuple[str, str], ...] = ()
    agg_group: int = 1
    under_symbol: str = ""
    under_sec_type: str = ""
    market_rule_id: int = 26
    real_expiration_date: str = ""
    stock_type: str = ""
    md_size_multiplier: int = 1
    min_size: str = "1"
    size_increment: str = "1"
    suggested_size_increment: str = "1"
    # --- simulation data ---------------------------------------------------------------
    base_price: float = 100.0
    volatility: float = 0.25  # annualised, drives bar ranges
    head_timestamp: dt.datetime = dt.datetime(2000, 1, 3, tzinfo=UTC)
    what_to_show: frozenset[str] = frozenset(
        {"TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK", "ADJUSTED_LAST"}
    )
    farm_exchange: str = ""  # exchange named in "No market data permissions for <X> <SECTYPE>"

    @property
    def expired_on(self) -> dt.date | None:
        """The last trade date as a date, for contracts that expire."""
        if not self.last_trade_date:
            return None
        return dt.datetime.strptime(self.last_trade_date, "%Y%m%d").date()

    @property
    def market_rule_ids(self) -> str:
        """One market rule id per valid exchange, as TWS sends them."""
        n = len([e for e in self.valid_exchanges.split(",") if e]) or 1
        return ",".join([str(self.market_rule_id)] * n)

    @property
    def permission_exchange(self) -> str:
        """Exchange named in the no-permission message (primary exchange for SMART stocks)."""
        return self.farm_exchange or self.primary_exchange or self.exchange


@attrs.frozen(kw_only=True)
class ContractQuery:
    """The contract fields of a request, as a client put them on the wire.

    Empty strings and zeros mean "not given", exactly as on the wire.
    """

    con_id: int = 0
    symbol: str = ""
    sec_type: str = ""
    last_trade_date_or_contract_month: str = ""
    strike: float = 0.0
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""
    include_expired: bool = False
    sec_id_type: str = ""
    sec_id: str = ""
    issuer_id: str = ""


class SimError(Exception):
    """A request the simulator answers with an IB error frame instead of data.

    ``code`` and ``text`` are exactly what TWS would send for the request.
    """

    def __init__(self, code: int, text: str) -> None:
        super().__init__(code, text)
        self.code = code
        self.text = text

    def __str__(self) -> str:
        return f"{self.code}: {self.text}"
