"""The simulator's contract catalog: which instruments the fake TWS knows and how it finds them.

A :class:`Catalog` holds :class:`~ibdata.sim._model.SimContract` records and answers the two
kinds of contract questions TWS answers:

* :meth:`Catalog.lookup` — ``reqContractDetails``: every contract that matches, several for an
  ambiguous description (that is not an error there);
* :meth:`Catalog.resolve` — historical bars and head timestamps: exactly one contract, else the
  error TWS sends (200 or 321).

:meth:`Catalog.default` loads the package data file ``catalog.json``: the US stocks and
ETFs AAPL, MSFT, SPY, AMZN, TSLA, NVDA, GOOGL, META, AMD, QQQ, IWM (on SMART), the indices
SPX, NDX, VIX, the pairs EUR.USD, GBP.USD, USD.JPY (IDEALPRO), the CME Group futures ES, NQ,
MES, MNQ, RTY (CME), YM (CBOT), CL, NG (NYMEX), GC, SI and SIL, HG (COMEX), 6E, 6J, 6B
(CME, symbols EUR, JPY, GBP), and the bond futures GBL, GBM, GBS, BTP (EUREX), R (Long
Gilt, ICEEU), ZN, ZF, ZB (CBOT), with IB's real contract facts where they were recorded.
Futures are stored as product definitions (:class:`FutureProduct`); their contracts are
generated in code for the date the catalog is built for, and the chains grow on demand
when a later or earlier ``today`` is asked about.

The simulator must never import ``ibapi`` or the client's internals; this module only uses the
standard library, :mod:`attrs` and :mod:`ibdata.sim._model`.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.resources
import json
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs

from ibdata.sim._calendar import default_calendar, get_calendar
from ibdata.sim._model import UTC, ContractQuery, SessionTemplate, SimContract, SimError

__all__ = [
    "CHAIN_YEARS_AHEAD",
    "CHAIN_YEARS_BACK",
    "EXPIRED_HISTORY_YEARS",
    "INVALID_SEC_TYPE_TEXT",
    "MONTH_CODES",
    "MONTH_NAMES",
    "NOT_FOUND_TEXT",
    "NO_EXPIRY_TEXT",
    "SEC_TYPES",
    "Catalog",
    "ExpiryRule",
    "FutureProduct",
    "load_catalog_data",
]

log = logging.getLogger(__name__)

MONTH_CODES: Final = "FGHJKMNQUVXZ"
"""Futures month codes, January (``F``) to December (``Z``)."""

MONTH_NAMES: Final = (
    "JAN",
    "FEB",
    "MAR",
    "APR",
    "MAY",
    "JUN",
    "JUL",
    "AUG",
    "SEP",
    "OCT",
    "NOV",
    "DEC",
)
"""Three-letter month names as they appear in Eurex and legacy CBOT local symbols."""

NOT_FOUND_TEXT: Final = "No security definition has been found for the request"
"""Text of error 200 when nothing matches."""

INVALID_SEC_TYPE_TEXT: Final = (
    "Error validating request.-'bQ' : cause - Please enter a valid security type"
)
"""Text of error 321 for a secType TWS does not know (from a real capture)."""

SEC_TYPES: Final = frozenset(
    {
        "STK",
        "OPT",
        "FUT",
        "CONTFUT",
        "FUT+CONTFUT",
        "IND",
        "FOP",
        "CASH",
        "BAG",
        "WAR",
        "IOPT",
        "BOND",
        "BILL",
        "CMDTY",
        "NEWS",
        "FUND",
        "CFD",
        "CRYPTO",
        "FWD",
    }
)
"""The security types TWS knows; an empty secType matches every type."""

NO_EXPIRY_TEXT: Final = (
    "Error validating request.-'bS' : cause - Please enter a local symbol or an expiry"
)
"""Text of error 321 for a data request on a future given without expiry or local symbol."""

EXPIRED_HISTORY_YEARS: Final = 2
"""IB keeps expired futures for this many years after their last trade date."""

CHAIN_YEARS_BACK: Final = 2
"""Generated futures chains reach at least this many years before the catalog's dates."""

CHAIN_YEARS_AHEAD: Final = 1
"""Generated futures chains reach at least this many years after the catalog's dates."""

_CONTFUT = "CONTFUT"
_FUT = "FUT"
_FUT_AND_CONTFUT = "FUT+CONTFUT"
_NASDAQ_ALIASES: Final = frozenset({"ISLAND", "NASDAQ"})
_LOCAL_SYMBOL_STYLES: Final = frozenset({"class_mon_yy", "root_code_y", "padded_mon_yy"})
_EXPIRY_RULES: Final = frozenset(
    {"before_delivery_day", "before_last_business_day", "before_calendar_day", "nth_weekday"}
)
_CONTRACT_MONTH = re.compile(r"(19|20)\d\d(0[1-9]|1[0-2])", re.ASCII)
_EXPIRY = re.compile(r"(\d{8})(?:[ -].*)?|\d{6}|\d{4}", re.ASCII)


# --- calendar helpers --------------------------------------------------------------------


def _is_business_day(day: dt.date, calendar: str = "") -> bool:
    return get_calendar(calendar).is_business_day(day)


def _business_days_before(day: dt.date, n: int, calendar: str = "") -> dt.date:
    while n > 0:
        day -= dt.timedelta(days=1)
        if _is_business_day(day, calendar):
            n -= 1
    return day


def _on_or_before_business_day(day: dt.date, calendar: str = "") -> dt.date:
    while not _is_business_day(day, calendar):
        day -= dt.timedelta(days=1)
    return day


def _last_business_day(year: int, month: int, calendar: str = "") -> dt.date:
    day = _add_months(dt.date(year, month, 1), 1) - dt.timedelta(days=1)
    while not _is_business_day(day, calendar):
        day -= dt.timedelta(days=1)
    return day


def _add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by ``months`` calendar months, clamped to the end of the target month."""
    index = day.year * 12 + day.month - 1 + months
    year, month0 = divmod(index, 12)
    for d in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month0 + 1, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


def _years_before(day: dt.date, years: int) -> dt.date:
    return _add_months(day, -12 * years)


def _as_date(today: dt.date) -> dt.date:
    if isinstance(today, dt.datetime):
        return today.date()
    if not isinstance(today, dt.date):
        raise TypeError(f"today must be a datetime.date, got {type(today).__name__}")
    return today


def _month_con_ids(
    value: Mapping[str, int] | Iterable[tuple[str, int]],
) -> tuple[tuple[str, int], ...]:
    """``{YYYYMM: conId}`` (or its pairs) as a sorted tuple of pairs, so products stay hashable."""
    pairs = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted((str(month), int(con_id)) for month, con_id in pairs))


# --- futures products --------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ExpiryRule:
    """How a futures product's last trade date follows from its contract month.

    Business days are Monday to Friday except the holidays of the exchange calendar passed
    to :meth:`last_trade_date` (the product's ``calendar``), so a last trade date moves as
    the exchange moves it for a holiday (ZN December 2024: 19 December, Christmas not
    counted; ES June 2026: Thursday 18 June, Juneteenth being the third Friday). One-off
    closures an exchange announces are not known.

    The rule is applied to the contract month moved by ``month_offset`` months (``-1``: the
    month before it, as for NYMEX crude oil). ``rule`` is one of:

    * ``"before_delivery_day"`` — ``business_days_before`` business days before the delivery
      day, which is calendar day ``delivery_day`` of the month or, if that is not a
      business day, the next business day (Eurex fixed-income futures: two exchange days
      before the 10th).
    * ``"before_last_business_day"`` — ``business_days_before`` business days before the last
      business day of the month; ``0`` means that last business day itself (CBOT ZN and ZB:
      7; ZF: 0; ICE Long Gilt: 2; COMEX gold, silver and copper: 2, the third-last business
      day; NYMEX natural gas: 2 in the month before).
    * ``"before_calendar_day"`` — ``business_days_before`` business days before calendar day
      ``day`` of the month or, if that is not a business day, before the last business day
      preceding it (NYMEX light sweet crude: 3 business days before the 25th of the month
      before the contract month, 4 when the 25th is not a business day).
    * ``"nth_weekday"`` — the ``nth`` ``weekday`` (0 = Monday) of the month. With
      ``business_days_before`` 0 that day itself, or the business day before it when it is
      a holiday (CME equity-index futures: the third Friday, 4); otherwise that many
      business days before it (CME currency futures: 2 business days before the third
      Wednesday, 2).
    """

    rule: str
    business_days_before: int
    delivery_day: int = 10
    day: int = 25
    weekday: int = 4
    nth: int = 3
    month_offset: int = 0

    def __attrs_post_init__(self) -> None:
        if self.rule not in _EXPIRY_RULES:
            raise ValueError(
                f"unknown expiry rule {self.rule!r}; expected one of {sorted(_EXPIRY_RULES)}"
            )
        if self.business_days_before < 0:
            raise ValueError("business_days_before must be >= 0")
        if not 1 <= self.delivery_day <= 28:
            raise ValueError("delivery_day must be 1..28")
        if not 1 <= self.day <= 28:
            raise ValueError("day must be 1..28")
        if not 0 <= self.weekday <= 4:
            raise ValueError("weekday must be 0..4 (Monday to Friday)")
        if not 1 <= self.nth <= 4:
            raise ValueError("nth must be 1..4")
        if not -12 <= self.month_offset <= 0:
            raise ValueError("month_offset must be -12..0")

    def last_trade_date(self, year: int, month: int, calendar: str = "") -> dt.date:
        """The last trade date of the contract for ``year``/``month``, counting business days
        on the exchange ``calendar`` (empty: Monday to Friday).

        Raises:
            ValueError: ``calendar`` is not a known exchange calendar.
        """
        first = _add_months(dt.date(year, month, 1), self.month_offset)
        year, month = first.year, first.month
        n = self.business_days_before
        if self.rule == "before_delivery_day":
            delivery = dt.date(year, month, self.delivery_day)
            while not _is_business_day(delivery, calendar):
                delivery += dt.timedelta(days=1)
            return _business_days_before(delivery, n, calendar)
        if self.rule == "before_calendar_day":
            anchor = _on_or_before_business_day(dt.date(year, month, self.day), calendar)
            return _business_days_before(anchor, n, calendar)
        if self.rule == "nth_weekday":
            target = first + dt.timedelta(days=(self.weekday - first.weekday()) % 7)
            target += dt.timedelta(weeks=self.nth - 1)
            if n == 0:
                return _on_or_before_business_day(target, calendar)
            return _business_days_before(target, n, calendar)
        last = _last_business_day(year, month, calendar)
        return _business_days_before(last, n, calendar)


@attrs.frozen(kw_only=True)
class FutureProduct:
    """A futures product; :meth:`contract` makes the contract of one month.

    Product-level fields come from ``catalog.json``. Generated contracts get:

    * ``con_id``: IB's real conId where ``con_ids`` (``{YYYYMM: conId}``) knows it, else
      ``con_id_prefix * 1_000_000 + YYYYMM`` — 9 digits, deterministic, unique per product
      and month as long as prefixes differ (the catalog loader refuses duplicate
      prefixes and a real conId that has the generated form, so the two never collide);
    * ``last_trade_date`` and ``real_expiration_date`` from ``expiry``, ``contract_month``
      ``YYYYMM``, ``last_trade_time`` (``HH:MM`` exchange time, e.g. ``12:30`` Eurex);
    * ``local_symbol`` in ``local_symbol_style``: ``class_mon_yy`` → ``FGBL MAR 25``
      (Eurex), ``root_code_y`` → ``ZNH5`` (CME/CBOT standard symbology, which IB uses for CBOT
      since 2024; also the style IB shows for ICE Europe, e.g. ``COILZ5``, hence ``RH5`` for the
      Long Gilt, whose real IB local symbol is not documented), ``padded_mon_yy`` →
      ``ZN   MAR 25`` (legacy CBOT, root padded to four characters);
    * ``valid_exchanges`` (empty: the exchange; real CME Group answers add ``QBALGO``), the
      underlying ``under_con_id``/``under_symbol``/``under_sec_type`` (IB names the index
      ``ES`` with conId 11004968 as the ES future's underlying; 0 and empty when unknown),
      ``market_name`` = trading class, ``agg_group`` 2147483647 and sizes ``1``/``1``/``1``
      as in a recorded ES answer;
    * ``head_timestamp`` = start of the first session on or after the listing day,
      ``listing_months`` before the last trade date (Eurex lists the three nearest quarterly
      months, i.e. about nine months ahead); before it the contract has no bars;
    * ``calendar``: the product's exchange calendar (``EUREX``, ``ICE_EUROPE``, ``CME`` …;
      empty for none), whose holidays have no session and are not business days for
      ``expiry``.
    """

    symbol: str
    trading_class: str
    exchange: str
    currency: str
    long_name: str
    multiplier: str
    min_tick: float
    time_zone_id: str
    trading: SessionTemplate
    liquid: SessionTemplate
    expiry: ExpiryRule
    last_trade_time: str
    local_symbol_style: str
    con_id_prefix: int
    market_rule_id: int
    base_price: float
    volatility: float
    months: str = "HMUZ"
    listing_months: int = 9
    order_types: str = (
        "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,BENCHPX,COND,CONDORDER,DAY,DEACT,"
        "DEACTDIS,DEACTEOD,GAT,GTC,GTD,GTT,HID,ICE,IOC,LIT,LMT,LTH,MIT,MKT,MTL,NGCOMB,NONALGO,"
        "OCA,PEGBENCH,SCALE,SCALERST,SNAPMID,SNAPMKT,SNAPREL,STP,STPLMT,TRAIL,TRAILLIT,TRAILLMT,"
        "TRAILMIT,WHATIF"
    )
    what_to_show: frozenset[str] = frozenset({"TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK"})
    calendar: str = ""
    valid_exchanges: str = ""
    under_con_id: int = 0
    under_symbol: str = ""
    under_sec_type: str = ""
    con_ids: tuple[tuple[str, int], ...] = attrs.field(default=(), converter=_month_con_ids)

    def __attrs_post_init__(self) -> None:
        get_calendar(self.calendar)  # raises for an unknown calendar
        for month, con_id in self.con_ids:
            if not _CONTRACT_MONTH.fullmatch(month) or int(month[4:]) not in self.month_numbers:
                raise ValueError(f"{self.symbol}: con_ids has {month!r}, not a listed month")
            if con_id <= 0:
                raise ValueError(f"{self.symbol}: con_ids[{month!r}] must be positive")
        if self.local_symbol_style not in _LOCAL_SYMBOL_STYLES:
            raise ValueError(
                f"{self.symbol}: unknown local_symbol_style {self.local_symbol_style!r}; "
                f"expected one of {sorted(_LOCAL_SYMBOL_STYLES)}"
            )
        if not self.months or any(m not in MONTH_CODES for m in self.months):
            raise ValueError(f"{self.symbol}: months must be month codes, got {self.months!r}")
        if not 100 <= self.con_id_prefix <= 999:
            raise ValueError(f"{self.symbol}: con_id_prefix must have three digits")
        if self.listing_months < 1:
            raise ValueError(f"{self.symbol}: listing_months must be >= 1")

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        """What names the product (symbol, exchange, currency, trading class and multiplier)."""
        return (self.symbol, self.exchange, self.currency, self.trading_class, self.multiplier)

    @property
    def month_numbers(self) -> tuple[int, ...]:
        """The listed months as numbers 1..12."""
        return tuple(MONTH_CODES.index(m) + 1 for m in self.months)

    def con_id(self, year: int, month: int) -> int:
        """The conId of the contract for ``year``/``month``: IB's own from ``con_ids`` when
        known, else :meth:`generated_con_id`."""
        real = dict(self.con_ids).get(f"{year:04d}{month:02d}")
        return real if real is not None else self.generated_con_id(year, month)

    def generated_con_id(self, year: int, month: int) -> int:
        """The deterministic conId ``con_id_prefix * 1_000_000 + YYYYMM``."""
        return self.con_id_prefix * 1_000_000 + year * 100 + month

    def local_symbol(self, year: int, month: int) -> str:
        """The local symbol of the contract for ``year``/``month`` in this product's style."""
        if self.local_symbol_style == "class_mon_yy":
            return f"{self.trading_class} {MONTH_NAMES[month - 1]} {year % 100:02d}"
        if self.local_symbol_style == "padded_mon_yy":
            return f"{self.trading_class:<4} {MONTH_NAMES[month - 1]} {year % 100:02d}"
        return f"{self.trading_class}{MONTH_CODES[month - 1]}{year % 10}"

    def contract(self, year: int, month: int) -> SimContract:
        """The contract for ``year``/``month``; ``month`` must be one of the listed months."""
        if month not in self.month_numbers:
            raise ValueError(f"{self.symbol} does not list month {month}")
        ltd = self.expiry.last_trade_date(year, month, self.calendar)
        return SimContract(
            con_id=self.con_id(year, month),
            symbol=self.symbol,
            sec_type=_FUT,
            exchange=self.exchange,
            currency=self.currency,
            local_symbol=self.local_symbol(year, month),
            trading_class=self.trading_class,
            last_trade_date=f"{ltd:%Y%m%d}",
            last_trade_time=self.last_trade_time,
            contract_month=f"{year:04d}{month:02d}",
            multiplier=self.multiplier,
            market_name=self.trading_class,
            min_tick=self.min_tick,
            order_types=self.order_types,
            valid_exchanges=self.valid_exchanges or self.exchange,
            under_con_id=self.under_con_id,
            under_symbol=self.under_symbol,
            under_sec_type=self.under_sec_type,
            long_name=self.long_name,
            time_zone_id=self.time_zone_id,
            trading=self.trading,
            liquid=self.liquid,
            calendar=self.calendar,
            agg_group=2147483647,
            market_rule_id=self.market_rule_id,
            real_expiration_date=f"{ltd:%Y%m%d}",
            min_size="1",
            size_increment="1",
            suggested_size_increment="1",
            base_price=self.base_price,
            volatility=self.volatility,
            head_timestamp=self._listing_start(ltd),
            what_to_show=self.what_to_show,
        )

    def contracts_between(self, first: dt.date, last: dt.date) -> list[SimContract]:
        """Every listed contract whose contract month lies in ``[first, last]`` (by month)."""
        out: list[SimContract] = []
        index = first.year * 12 + first.month - 1
        end = last.year * 12 + last.month - 1
        months = self.month_numbers
        while index <= end:
            year, month0 = divmod(index, 12)
            if month0 + 1 in months:
                out.append(self.contract(year, month0 + 1))
            index += 1
        return out

    def _listing_start(self, ltd: dt.date) -> dt.datetime:
        day = _add_months(ltd, -self.listing_months)
        for _ in range(14):
            session = self.trading.session_on(day, self.time_zone_id, self.calendar)
            if session is not None:
                return session.start
            day += dt.timedelta(days=1)
        raise ValueError(f"{self.symbol}: trading template has no session in two weeks")


# --- JSON ----------------------------------------------------------------------------------

_NOTE_KEYS: Final = frozenset({"notes", "futures_notes", "format", "templates"})


def _session(obj: Any, where: str) -> SessionTemplate:
    if not isinstance(obj, Mapping):
        raise ValueError(f"{where}: a session must be an object with open/close/days")
    unknown = set(obj) - {"open", "close", "days", "early_close"}
    if unknown:
        raise ValueError(f"{where}: unknown session keys {sorted(unknown)}")
    days = tuple(int(d) for d in obj.get("days", (0, 1, 2, 3, 4)))
    return SessionTemplate(
        str(obj["open"]), str(obj["close"]), days, str(obj.get("early_close", ""))
    )


def _timestamp(text: Any, where: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"{where}: head_timestamp must carry a zone, e.g. 'Z'")
    return value.astimezone(UTC)


_SIM_FIELDS: Final = frozenset(a.name for a in attrs.fields(SimContract))


def _instrument(obj: Mapping[str, Any], templates: Mapping[str, Any]) -> SimContract:
    data: dict[str, Any] = {}
    template = obj.get("template")
    if template is not None:
        if template not in templates:
            raise ValueError(f"unknown template {template!r}")
        data.update(templates[template])
    data.update({k: v for k, v in obj.items() if k != "template"})
    where = f"instrument {data.get('symbol', '?')!r}"
    unknown = set(data) - _SIM_FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown fields {sorted(unknown)}")
    for name in ("trading", "liquid"):
        if name in data:
            data[name] = _session(data[name], f"{where}.{name}")
    if "sec_ids" in data:
        data["sec_ids"] = tuple((str(tag), str(value)) for tag, value in data["sec_ids"])
    if "what_to_show" in data:
        data["what_to_show"] = frozenset(str(w) for w in data["what_to_show"])
    if "head_timestamp" in data:
        data["head_timestamp"] = _timestamp(data["head_timestamp"], where)
    if "calendar" not in data:
        data["calendar"] = default_calendar(
            str(data.get("exchange", "")), str(data.get("primary_exchange", ""))
        )
    return SimContract(**data)


_PRODUCT_FIELDS: Final = frozenset(a.name for a in attrs.fields(FutureProduct))


def _product(obj: Mapping[str, Any]) -> FutureProduct:
    data = dict(obj)
    where = f"future {data.get('symbol', '?')!r}"
    unknown = set(data) - _PRODUCT_FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown fields {sorted(unknown)}")
    data["trading"] = _session(data["trading"], f"{where}.trading")
    data["liquid"] = _session(data["liquid"], f"{where}.liquid")
    data.setdefault("calendar", default_calendar(str(data.get("exchange", ""))))
    expiry = dict(data["expiry"])
    known = {"delivery_day", "day", "weekday", "nth", "month_offset"}
    unknown_keys = set(expiry) - known - {"rule", "business_days_before"}
    if unknown_keys:
        raise ValueError(f"{where}.expiry: unknown keys {sorted(unknown_keys)}")
    data["expiry"] = ExpiryRule(
        rule=str(expiry.pop("rule")),
        business_days_before=int(expiry.pop("business_days_before")),
        **{k: int(v) for k, v in expiry.items()},
    )
    if "what_to_show" in data:
        data["what_to_show"] = frozenset(str(w) for w in data["what_to_show"])
    return FutureProduct(**data)


def load_catalog_data(
    text: str | None = None,
) -> tuple[tuple[SimContract, ...], tuple[FutureProduct, ...]]:
    """Parse a catalog file: the static instruments and the futures products.

    Args:
        text: JSON text in the layout of the package's ``catalog.json``; ``None`` reads that
            file (package data, via :mod:`importlib.resources`).

    Returns:
        The static contracts and the futures products, in file order.

    Raises:
        ValueError: The file is not valid JSON, has unknown keys or invalid values.
    """
    if text is None:
        text = importlib.resources.files("ibdata.sim").joinpath("catalog.json").read_text("utf-8")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"catalog is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError("catalog must be a JSON object")
    unknown = set(raw) - _NOTE_KEYS - {"instruments", "futures"}
    if unknown:
        raise ValueError(f"catalog: unknown top-level keys {sorted(unknown)}")
    templates = raw.get("templates", {})
    try:
        statics = tuple(_instrument(o, templates) for o in raw.get("instruments", ()))
        products = tuple(_product(o) for o in raw.get("futures", ()))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"catalog: invalid entry: {exc!r}") from exc
    prefixes = [p.con_id_prefix for p in products]
    if len(set(prefixes)) != len(prefixes):
        raise ValueError("catalog: futures con_id_prefix values must be unique")
    _check_real_con_ids(statics, products)
    return statics, products


def _check_real_con_ids(statics: Iterable[SimContract], products: Iterable[FutureProduct]) -> None:
    """Refuse duplicate real conIds and any that has the form of a generated one.

    A generated conId is ``prefix * 1_000_000 + YYYYMM``; a real one whose last six digits
    read as a month of 1900-2099 under a prefix in use could be generated for another
    contract some day, so it is refused outright.

    Raises:
        ValueError: Two real conIds are equal, or one has the generated form.
    """
    products = tuple(products)
    prefixes = {p.con_id_prefix for p in products}
    real = [(c.con_id, c.local_symbol) for c in statics]
    real += [(con_id, f"{p.symbol} {month}") for p in products for month, con_id in p.con_ids]
    seen: dict[int, str] = {}
    for con_id, name in real:
        if con_id in seen:
            raise ValueError(f"catalog: conId {con_id} of {name} is also {seen[con_id]}")
        seen[con_id] = name
        prefix, rest = divmod(con_id, 1_000_000)
        if prefix in prefixes and _CONTRACT_MONTH.fullmatch(f"{rest:06d}"):
            raise ValueError(
                f"catalog: conId {con_id} of {name} has the form of a generated conId "
                f"(prefix {prefix}); choose another con_id_prefix"
            )


@functools.lru_cache(maxsize=1)
def _packaged_data() -> tuple[tuple[SimContract, ...], tuple[FutureProduct, ...]]:
    """The parsed package ``catalog.json`` (records are immutable, so sharing is safe)."""
    return load_catalog_data()


# --- matching ------------------------------------------------------------------------------


def _exchanges_of(contract: SimContract) -> list[str]:
    return [e for e in contract.valid_exchanges.split(",") if e]


def _same_venue(a: str, b: str) -> bool:
    return a == b or (a in _NASDAQ_ALIASES and b in _NASDAQ_ALIASES)


def _exchange_match(contract: SimContract, exchange: str) -> str | None:
    """The exchange name the contract is offered under for ``exchange``, or None."""
    if _same_venue(contract.exchange, exchange):
        return contract.exchange
    for valid in _exchanges_of(contract):
        if _same_venue(valid, exchange):
            return valid
    return None


def _multiplier_match(have: str, want: str) -> bool:
    try:
        return float(have) == float(want)
    except ValueError:
        return have == want


def _expiry_token(text: str) -> str:
    """The date part of an expiry, without a trailing time; ``"?"`` (matches nothing) if invalid."""
    text = text.strip()
    if not text:
        return ""
    m = _EXPIRY.fullmatch(text)
    if m is None:
        return "?"
    return m.group(1) or m.group(0)


def _expiry_match(contract: SimContract, token: str) -> bool:
    if not (token.isascii() and token.isdigit()):
        return False
    if len(token) == 8:
        return contract.last_trade_date == token
    if len(token) == 6:
        return contract.contract_month == token
    if len(token) == 4:
        return contract.contract_month.startswith(token)
    return False


def _visible(contract: SimContract, today: dt.date, include_expired: bool) -> bool:
    expiry = contract.expired_on
    if expiry is None or expiry >= today:
        return True
    return include_expired and expiry >= _years_before(today, EXPIRED_HISTORY_YEARS)


def _product_key(contract: SimContract) -> tuple[str, str, str, str, str]:
    return (
        contract.symbol,
        contract.exchange,
        contract.currency,
        contract.trading_class,
        contract.multiplier,
    )


def _sort_key(contract: SimContract) -> tuple[str, str, str, str, str, int]:
    return (
        contract.symbol,
        contract.sec_type,
        contract.exchange,
        contract.trading_class,
        contract.last_trade_date,
        contract.con_id,
    )


class Catalog:
    """The contracts a simulated TWS knows, with TWS's rules for finding them.

    Thread-safe: readers work on immutable snapshots, :meth:`add` and the on-demand growth of
    futures chains take a lock. All state lives in the instance.

    **Futures chains.** For a date ``today`` every product has its listed (quarterly)
    contracts whose last trade dates run from at least two years before ``today`` (IB keeps
    expired futures that long) to at least one year after it, or as far as the product is
    listed ahead when that is further (``listing_months``), including contracts not yet
    listed (their head timestamp lies in the future). A query with a ``today`` outside the
    dates the chains were made for extends them, so a simulator clock may run for years.
    Generated contracts whose conId is already taken by a contract added with :meth:`add` are
    skipped with a warning.

    **Expiry and visibility.** A future is *live* while ``today`` is on or before its last
    trade date. An expired future is only found with ``include_expired`` and only for
    two years (``EXPIRED_HISTORY_YEARS``) after its last trade date; older ones are not
    found at all (error 200), like in TWS.

    **Dates.** ``today`` arguments are plain dates (a datetime is cut to its date); the
    simulator passes the date of its clock.

    Args:
        contracts: Static contracts to start with (conIds must be unique).
        products: Futures products whose quarterly contracts the catalog generates.
        today: Generate the chains for this date now; without it they are generated at the
            first query that passes a ``today``.

    Raises:
        ValueError: Two contracts share a conId.
    """

    def __init__(
        self,
        contracts: Iterable[SimContract] = (),
        *,
        products: Iterable[FutureProduct] = (),
        today: dt.date | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[int, SimContract] = {}
        self._snapshot: tuple[SimContract, ...] = ()
        self._products: tuple[FutureProduct, ...] = tuple(products)
        self._covered: tuple[dt.date, dt.date] | None = None
        for contract in contracts:
            self.add(contract)
        if today is not None:
            self._ensure_chains(_as_date(today))

    @classmethod
    def default(cls, today: dt.date, *, nasdaq_name: str = "NASDAQ") -> Catalog:
        """The simulator's standard catalog, with futures chains generated around ``today``.

        Loads ``catalog.json`` (package data). See the module docs for the instruments.

        Args:
            today: The simulator's current date; chains cover two years back and one ahead.
            nasdaq_name: Name reported for NASDAQ in ``primary_exchange`` and
                ``valid_exchanges`` of NASDAQ stocks: ``"NASDAQ"`` (what every real capture
                of 2022-2026 shows) or ``"ISLAND"`` (the older name, which TWS 10.16+ still
                sends in its "Send ISLAND for US Stocks trading on NASDAQ" compatibility
                mode). Queries may use either name.

        Raises:
            ValueError: ``nasdaq_name`` is neither ``"ISLAND"`` nor ``"NASDAQ"``.
        """
        if nasdaq_name not in _NASDAQ_ALIASES:
            raise ValueError(f"nasdaq_name must be 'ISLAND' or 'NASDAQ', got {nasdaq_name!r}")
        statics, products = _packaged_data()
        if nasdaq_name != "NASDAQ":
            statics = tuple(_rename_nasdaq(c, nasdaq_name) for c in statics)
        return cls(statics, products=products, today=today)

    # --- contents ------------------------------------------------------------------------

    @property
    def contracts(self) -> tuple[SimContract, ...]:
        """Every contract in the catalog, in insertion order (a snapshot)."""
        return self._snapshot

    @property
    def products(self) -> tuple[FutureProduct, ...]:
        """The futures products whose chains the catalog generates."""
        return self._products

    def __repr__(self) -> str:
        return f"<Catalog {len(self._snapshot)} contracts, {len(self._products)} futures products>"

    def add(self, contract: SimContract) -> None:
        """Add a contract.

        Raises:
            ValueError: A contract with the same conId exists, or the conId is not positive.
        """
        if contract.con_id <= 0:
            raise ValueError(f"con_id must be positive, got {contract.con_id}")
        with self._lock:
            self._add_locked(contract)

    def _add_locked(self, contract: SimContract) -> None:
        if contract.con_id in self._by_id:
            raise ValueError(f"duplicate con_id {contract.con_id} ({contract.local_symbol})")
        by_id = dict(self._by_id)
        by_id[contract.con_id] = contract
        self._by_id = by_id
        self._snapshot = (*self._snapshot, contract)

    def by_con_id(self, con_id: int) -> SimContract | None:
        """The contract with ``con_id``, expired or not, or None."""
        return self._by_id.get(con_id)

    # --- chains --------------------------------------------------------------------------

    def _ensure_chains(self, today: dt.date) -> None:
        if not self._products:
            return
        covered = self._covered
        if covered is not None and covered[0] <= today <= covered[1]:
            return
        with self._lock:
            covered = self._covered
            if covered is not None and covered[0] <= today <= covered[1]:
                return
            lo, hi = (
                (today, today)
                if covered is None
                else (min(covered[0], today), max(covered[1], today))
            )
            # One quarter of slack on each side guarantees a contract beyond each bound.
            first = _add_months(_years_before(lo, CHAIN_YEARS_BACK), -4)
            added: list[SimContract] = []
            by_id = dict(self._by_id)
            for product in self._products:
                # As far ahead as the product is listed (ES: 21 quarters), at least a year.
                ahead = max(12 * CHAIN_YEARS_AHEAD, product.listing_months)
                last = _add_months(_add_months(hi, ahead), 4)
                for contract in product.contracts_between(first, last):
                    existing = by_id.get(contract.con_id)
                    if existing is None:
                        added.append(contract)
                        by_id[contract.con_id] = contract
                    elif existing != contract:
                        log.warning(
                            "catalog: conId %d of %s is taken by %s; contract skipped",
                            contract.con_id,
                            contract.local_symbol,
                            existing.local_symbol,
                        )
            self._by_id = by_id
            self._snapshot = (*self._snapshot, *added)
            self._covered = (lo, hi)

    # --- queries -------------------------------------------------------------------------

    def front_month(self, symbol: str, exchange: str, today: dt.date) -> SimContract | None:
        """The live future of ``symbol`` on ``exchange`` with the nearest last trade date.

        A future is live on its last trade date too, so the front month rolls on the day
        after expiry. (IB rolls its continuous futures a few days earlier, by volume; the
        simulator keeps the simple rule.) ``exchange`` may be empty to mean any exchange.

        Returns:
            The front contract (``sec_type`` ``FUT``), or None if the symbol has no live future.
        """
        today = _as_date(today)
        self._ensure_chains(today)
        best: SimContract | None = None
        for c in self._snapshot:
            if c.sec_type != _FUT or c.symbol != symbol:
                continue
            if exchange and _exchange_match(c, exchange) is None:
                continue
            expiry = c.expired_on
            if expiry is None or expiry < today:
                continue
            if best is None or (c.last_trade_date, c.con_id) < (best.last_trade_date, best.con_id):
                best = c
        return best

    def lookup(self, query: ContractQuery, today: dt.date) -> list[SimContract]:
        """Answer ``reqContractDetails``: every contract matching ``query`` on ``today``.

        Matching follows TWS:

        * ``con_id`` given → that contract; any other field given must agree with it.
        * Every non-empty field filters: ``symbol``, ``sec_type`` (empty matches every type),
          ``currency``, ``exchange`` (the contract's exchange or one of its
          ``valid_exchanges``; ``SMART`` finds SMART-routed stocks; a stock asked on a listed
          exchange comes back with that exchange), ``primary_exchange``, ``local_symbol``,
          ``trading_class``, ``multiplier`` (compared as numbers), ``sec_id_type`` +
          ``sec_id`` (e.g. ``ISIN``). ``ISLAND`` and ``NASDAQ`` are the same venue.
          Comparisons are case-sensitive, like IB's codes.
        * ``last_trade_date_or_contract_month``: ``YYYYMM`` matches the contract month,
          ``YYYYMMDD`` the last trade date (a trailing time such as ``20250306 12:30 MET`` or
          ``20250306-12:30:00`` is ignored), ``YYYY`` any month of that year.
        * Options fields (``strike``, ``right``) match nothing: the catalog has no options.
        * Futures: only live contracts; with ``include_expired`` also those that expired in
          the last two years. Without an expiry a future query returns every such expiry —
          an ambiguous description is not an error for contract details.
        * ``sec_type`` ``CONTFUT`` → one entry per product: a copy of the front month
          (:meth:`front_month`) with ``sec_type`` ``CONTFUT`` and the front contract's conId,
          last trade date and local symbol, as TWS answers. ``con_id``, expiry and local
          symbol of a CONTFUT query are ignored (a client may echo those of an earlier front
          month); when ``symbol`` is empty, a ``con_id`` or ``local_symbol`` names the
          product. The copy's ``head_timestamp`` is that of the oldest contract of the product
          still kept (expired less than two years ago), so continuous history spans the kept
          contracts.
        * ``sec_type`` ``FUT+CONTFUT`` → the futures followed by the continuous entry.
        * A query naming no contract (no ``con_id``, ``symbol``, ``local_symbol`` or
          ``sec_id``) finds nothing.

        Args:
            query: The contract fields of the request.
            today: The simulator's current date (decides which futures are expired).

        Returns:
            The matches, sorted by symbol, type, exchange, trading class and last trade date
            (futures oldest first). Never empty.

        Raises:
            SimError: 321 ``Error validating request.-'bQ' : cause - Please enter a valid
                security type`` for a ``sec_type`` TWS does not know (as a real TWS answered
                ``invalid_secType``); 200 ``No security definition has been found for
                the request`` when nothing matches.
        """
        if query.sec_type and query.sec_type not in SEC_TYPES:
            raise SimError(321, INVALID_SEC_TYPE_TEXT)
        today = _as_date(today)
        self._ensure_chains(today)
        if query.sec_type == _CONTFUT:
            found = self._continuous(query, today)
        elif query.sec_type == _FUT_AND_CONTFUT:
            futures = self._match(attrs.evolve(query, sec_type=_FUT), today)
            found = futures + self._continuous(query, today)
        else:
            found = self._match(query, today)
        if not found:
            raise SimError(200, NOT_FOUND_TEXT)
        return found

    def resolve(self, query: ContractQuery, today: dt.date) -> SimContract:
        """Find the single contract of a historical-data or head-timestamp request.

        Uses the matching rules of :meth:`lookup` (so expired futures need
        ``include_expired`` and are kept two years), but requires exactly one match.
        ``CONTFUT`` resolves to the copy of the front month with ``sec_type`` ``CONTFUT``.

        Args:
            query: The contract fields of the request.
            today: The simulator's current date.

        Returns:
            The one matching contract.

        Raises:
            SimError: 200 ``No security definition has been found for the request`` when
                nothing matches (also for a future expired more than two years ago, or
                expired at all without ``include_expired``); 321
                ``Error validating request.-'bS' : cause - Please enter a local symbol or an
                expiry`` when several futures match a query with neither expiry nor local
                symbol; 200 ``The contract description specified for <SYMBOL> is
                ambiguous.`` for any other multiple match.
        """
        found = self.lookup(query, today)
        if len(found) == 1:
            return found[0]
        no_expiry = not query.last_trade_date_or_contract_month.strip() and not query.local_symbol
        if no_expiry and all(c.sec_type == _FUT for c in found):
            raise SimError(321, NO_EXPIRY_TEXT)
        symbol = query.symbol or found[0].symbol
        raise SimError(200, f"The contract description specified for {symbol} is ambiguous.")

    # --- internals -----------------------------------------------------------------------

    def _match(self, query: ContractQuery, today: dt.date) -> list[SimContract]:
        if query.strike or query.right:
            return []
        if query.con_id:
            candidate = self._by_id.get(query.con_id)
            candidates: Iterable[SimContract] = () if candidate is None else (candidate,)
        elif query.symbol or query.local_symbol or query.sec_id:
            candidates = self._snapshot
        else:
            return []
        expiry = _expiry_token(query.last_trade_date_or_contract_month)
        out: list[SimContract] = []
        for c in candidates:
            if query.symbol and c.symbol != query.symbol:
                continue
            if query.sec_type and c.sec_type != query.sec_type:
                continue
            if query.currency and c.currency != query.currency:
                continue
            if query.primary_exchange and not _same_venue(
                c.primary_exchange or c.exchange, query.primary_exchange
            ):
                continue
            if query.local_symbol and c.local_symbol != query.local_symbol:
                continue
            if query.trading_class and c.trading_class != query.trading_class:
                continue
            if query.multiplier and not _multiplier_match(c.multiplier, query.multiplier):
                continue
            if (query.sec_id_type or query.sec_id) and (
                query.sec_id_type,
                query.sec_id,
            ) not in c.sec_ids:
                continue
            if expiry and not _expiry_match(c, expiry):
                continue
            if not _visible(c, today, query.include_expired):
                continue
            if not query.exchange:
                out.append(c)
                continue
            venue = _exchange_match(c, query.exchange)
            if venue is None:
                continue
            out.append(c if venue == c.exchange else attrs.evolve(c, exchange=venue))
        out.sort(key=_sort_key)
        return out

    def _named_future(self, query: ContractQuery) -> SimContract | None:
        """The future a symbol-less CONTFUT query names by conId or local symbol, any age."""
        if query.con_id:
            named = self._by_id.get(query.con_id)
            return named if named is not None and named.sec_type == _FUT else None
        if query.local_symbol:
            for c in self._snapshot:
                if (
                    c.sec_type == _FUT
                    and c.local_symbol == query.local_symbol
                    and (not query.exchange or _exchange_match(c, query.exchange) is not None)
                ):
                    return c
        return None

    def _continuous(self, query: ContractQuery, today: dt.date) -> list[SimContract]:
        product_query = attrs.evolve(
            query,
            con_id=0,
            sec_type=_FUT,
            last_trade_date_or_contract_month="",
            local_symbol="",
            include_expired=False,
        )
        if not query.symbol:
            named = self._named_future(query)
            if named is None:
                return []
            product_query = attrs.evolve(
                product_query,
                symbol=named.symbol,
                exchange=query.exchange or named.exchange,
                trading_class=query.trading_class or named.trading_class,
            )
        fronts: dict[tuple[str, str, str, str, str], SimContract] = {}
        for c in self._match(product_query, today):
            key = _product_key(c)
            best = fronts.get(key)
            if best is None or c.last_trade_date < best.last_trade_date:
                fronts[key] = c
        kept_since = _years_before(today, EXPIRED_HISTORY_YEARS)
        out: list[SimContract] = []
        for key, front in fronts.items():
            heads = [
                c.head_timestamp
                for c in self._snapshot
                if c.sec_type == _FUT
                and _product_key(c) == key
                and (c.expired_on or today) >= kept_since
            ]
            out.append(
                attrs.evolve(
                    front,
                    sec_type=_CONTFUT,
                    head_timestamp=min(heads, default=front.head_timestamp),
                )
            )
        out.sort(key=_sort_key)
        return out


def _rename_nasdaq(contract: SimContract, name: str) -> SimContract:
    """``contract`` with NASDAQ called ``name`` (ISLAND or NASDAQ) wherever it appears."""
    exchanges = ",".join(name if e in _NASDAQ_ALIASES else e for e in _exchanges_of(contract))
    primary = contract.primary_exchange
    if primary in _NASDAQ_ALIASES:
        primary = name
    return attrs.evolve(contract, primary_exchange=primary, valid_exchanges=exchanges)
