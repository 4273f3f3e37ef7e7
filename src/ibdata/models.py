"""Typed records and enums for what ibdata asks IB for and what it gets back.

Everything here is immutable: ``attrs`` frozen, slotted records, ``str`` enums whose values
are IB's own strings, and :class:`Bars`, a read-only sequence that keeps its bars in compact
columns. Nothing in this module talks to TWS, and importing it loads neither ``ibapi`` nor
a data-frame library: :meth:`Bars.to_pandas`, :meth:`Bars.to_arrow`, :meth:`Bars.to_polars`
and :meth:`Bars.plot` import pandas, pyarrow, polars or matplotlib when they are called.

Time rules, the same everywhere in ibdata:

* Every :class:`~datetime.datetime` is timezone-aware and in UTC. Naive datetimes are
  refused with :class:`ValueError`; ibdata never guesses a zone.
* Intraday bars are stamped with the aware UTC start of the bar. Daily, weekly and monthly
  bars are stamped with the :class:`~datetime.date` IB reports for them (the session date,
  in the exchange's calendar), never shifted to another zone. See :class:`Bar`.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import math
import operator
import re
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar, overload
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from ibdata.pacing import BAR_SIZE_SECONDS

if TYPE_CHECKING:
    import pandas  # type: ignore[import-untyped,unused-ignore]

__all__ = [
    "Bar",
    "BarSize",
    "Bars",
    "ConnectivityEvent",
    "Contract",
    "ContractDetails",
    "ContractSpec",
    "DownloadPlan",
    "FarmState",
    "Health",
    "LoginTimeZone",
    "SecType",
    "TradingSession",
    "WhatToShow",
    "parse_trading_hours",
]

UTC: Final = dt.timezone.utc
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL: Final = dt.date(1970, 1, 1).toordinal()
_MIN_TIMESTAMP: Final = (dt.datetime(1, 1, 1, tzinfo=UTC) - _EPOCH).total_seconds()
_MAX_TIMESTAMP: Final = (dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - _EPOCH).total_seconds()
_MAX_ORDINAL: Final = dt.date.max.toordinal()

K = TypeVar("K")
V = TypeVar("V")


# --------------------------------------------------------------------------- enums
class _IBEnum(str, enum.Enum):
    """A closed set of IB strings: ``str(member)`` and f-strings give IB's value."""

    def __str__(self) -> str:
        return str.__str__(self)

    @classmethod
    def _lookup(cls, value: str) -> Any:
        return None

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if isinstance(value, str):
            found = cls._lookup(value)
            if found is not None:
                return found
        legal = ", ".join(repr(m.value) for m in cls)
        raise ValueError(f"{value!r} is not a valid {cls.__name__}; IB's values are {legal}")


class _CaseInsensitiveEnum(_IBEnum):
    @classmethod
    def _lookup(cls, value: str) -> Any:
        if value.isascii():
            wanted = value.upper()
            for member in cls:
                if member.value == wanted:
                    return member
        return None


_BAR_SECONDS: Final[Mapping[str, int]] = BAR_SIZE_SECONDS  # one table, shared with pacing


class BarSize(_IBEnum):
    """The bar sizes IB accepts (``barSizeSetting``); each value is IB's exact string.

    ``BarSize("1 day") is BarSize.ONE_DAY``. TWS's own spellings ``"1W"`` and ``"1M"`` are
    accepted for :attr:`ONE_WEEK` and :attr:`ONE_MONTH` (exactly so: ``"1m"`` is refused
    rather than guessed). ``"1 sec"`` is not a bar size; IB rejects it (error 321).
    ``str(BarSize.ONE_DAY) == "1 day"``.

    Members: ``ONE_SECOND`` ("1 secs"), ``FIVE_SECONDS``, ``TEN_SECONDS``,
    ``FIFTEEN_SECONDS``, ``THIRTY_SECONDS``, ``ONE_MINUTE`` ("1 min"), ``TWO_MINUTES``
    ("2 mins"), ``THREE_MINUTES``, ``FIVE_MINUTES``, ``TEN_MINUTES``, ``FIFTEEN_MINUTES``,
    ``TWENTY_MINUTES``, ``THIRTY_MINUTES``, ``ONE_HOUR`` ("1 hour"), ``TWO_HOURS``
    ("2 hours"), ``THREE_HOURS``, ``FOUR_HOURS``, ``EIGHT_HOURS``, ``ONE_DAY`` ("1 day"),
    ``ONE_WEEK`` ("1 week"), ``ONE_MONTH`` ("1 month").

    See `IB's historical bar sizes
    <https://interactivebrokers.github.io/tws-api/historical_bars.html>`_.
    """

    ONE_SECOND = "1 secs"
    FIVE_SECONDS = "5 secs"
    TEN_SECONDS = "10 secs"
    FIFTEEN_SECONDS = "15 secs"
    THIRTY_SECONDS = "30 secs"
    ONE_MINUTE = "1 min"
    TWO_MINUTES = "2 mins"
    THREE_MINUTES = "3 mins"
    FIVE_MINUTES = "5 mins"
    TEN_MINUTES = "10 mins"
    FIFTEEN_MINUTES = "15 mins"
    TWENTY_MINUTES = "20 mins"
    THIRTY_MINUTES = "30 mins"
    ONE_HOUR = "1 hour"
    TWO_HOURS = "2 hours"
    THREE_HOURS = "3 hours"
    FOUR_HOURS = "4 hours"
    EIGHT_HOURS = "8 hours"
    ONE_DAY = "1 day"
    ONE_WEEK = "1 week"
    ONE_MONTH = "1 month"

    @classmethod
    def _lookup(cls, value: str) -> Any:
        return {"1W": cls.ONE_WEEK, "1M": cls.ONE_MONTH}.get(value)

    @property
    def seconds(self) -> int:
        """The nominal length of one bar in seconds (a week is 604800, a month 2592000)."""
        return _BAR_SECONDS[self.value]

    @property
    def intraday(self) -> bool:
        """True for bars shorter than one day, whose :attr:`Bar.time` is a UTC datetime."""
        return self.seconds < 86400


class WhatToShow(_CaseInsensitiveEnum):
    """What the bars of a historical request measure (``whatToShow``); values are IB's.

    Lower-case strings are accepted: ``WhatToShow("trades") is WhatToShow.TRADES``.

    Members: ``TRADES`` (trade prices and volume), ``MIDPOINT``, ``BID``, ``ASK``,
    ``BID_ASK`` (time-averaged bid and ask; counts twice for pacing), ``ADJUSTED_LAST``
    (trades adjusted for splits and dividends; only with an empty end date),
    ``HISTORICAL_VOLATILITY``, ``OPTION_IMPLIED_VOLATILITY``. Quote bars (``MIDPOINT``,
    ``BID``, ``ASK``, ``BID_ASK``) carry no volume, WAP or trade count.

    See `IB's whatToShow values
    <https://interactivebrokers.github.io/tws-api/historical_bars.html>`_.
    """

    TRADES = "TRADES"
    MIDPOINT = "MIDPOINT"
    BID = "BID"
    ASK = "ASK"
    BID_ASK = "BID_ASK"
    ADJUSTED_LAST = "ADJUSTED_LAST"
    HISTORICAL_VOLATILITY = "HISTORICAL_VOLATILITY"
    OPTION_IMPLIED_VOLATILITY = "OPTION_IMPLIED_VOLATILITY"


class SecType(_CaseInsensitiveEnum):
    """IB's security types (``secType``); lower-case strings are accepted.

    Members: ``STK`` (stock or ETF), ``FUT`` (future), ``CONTFUT`` (continuous future,
    historical data only), ``IND`` (index), ``CASH`` (FX pair), ``OPT`` (option), ``FOP``
    (future option), ``BOND``, ``CFD``, ``CMDTY`` (commodity), ``FUND`` (mutual fund),
    ``CRYPTO``, ``WAR`` (warrant).

    See `IB's contract reference
    <https://interactivebrokers.github.io/tws-api/basic_contracts.html>`_.
    """

    STK = "STK"
    FUT = "FUT"
    CONTFUT = "CONTFUT"
    IND = "IND"
    CASH = "CASH"
    OPT = "OPT"
    FOP = "FOP"
    BOND = "BOND"
    CFD = "CFD"
    CMDTY = "CMDTY"
    FUND = "FUND"
    CRYPTO = "CRYPTO"
    WAR = "WAR"


class FarmState(_IBEnum):
    """The state of one of IB's data farms, from TWS's 2103-2158 notices.

    Members: ``OK`` ("ok", 2104, 2106, 2158), ``BROKEN`` ("broken", 2103, 2105, 2157),
    ``INACTIVE`` ("inactive": idle but available on demand, 2107, 2108; normal for IB
    Gateway), ``CONNECTING`` ("connecting", 2119).
    """

    OK = "ok"
    BROKEN = "broken"
    INACTIVE = "inactive"
    CONNECTING = "connecting"


# --------------------------------------------------------------------------- helpers
class _FrozenMapping(Mapping[K, V]):
    """A read-only, hashable mapping that keeps insertion order and compares like a dict."""

    __slots__ = ("_data",)

    def __init__(self, items: Mapping[K, V] | Iterable[tuple[K, V]] = ()) -> None:
        self._data: dict[K, V] = dict(items)

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        return repr(self._data)


def _aware_utc(value: object, name: str) -> dt.datetime:
    """An aware datetime converted to UTC; TypeError/ValueError naming ``name`` otherwise."""
    if not isinstance(value, dt.datetime):
        raise TypeError(f"{name} must be a timezone-aware datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{name} must be timezone-aware (ibdata refuses naive datetimes), got {value!r}"
        )
    return value.astimezone(UTC)


def _optional_aware_utc(value: object, name: str) -> dt.datetime | None:
    return None if value is None else _aware_utc(value, name)


def _iso(value: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC with milliseconds and a ``Z`` suffix (the older HTTP server's
    precision, which every JSON ibdata writes shares), or None."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _utc_seconds(value: dt.datetime) -> str:
    """ISO 8601 in UTC to the second with ``Z``, for reprs."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_type(value: object, kind: type | tuple[type, ...], name: str, what: str) -> None:
    if isinstance(value, bool) and kind is not bool:
        raise TypeError(f"{name} must be {what}, got {value!r}")
    if not isinstance(value, kind):
        raise TypeError(f"{name} must be {what}, got {value!r}")


def _names(value: str | Iterable[str]) -> tuple[str, ...]:
    """A tuple of names; a string is IB's comma-separated list (empty items dropped)."""
    if isinstance(value, str):
        return tuple(item for item in value.split(",") if item)
    return tuple(value)


# --------------------------------------------------------------------------- contracts
_MAX_TEXT = 64
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_EXPIRY = re.compile(r"(?:[0-9]{6}|[0-9]{8})?")


def _spec_text(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    name = f"ContractSpec.{attribute.name}"
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {value!r}")
    if _PRINTABLE.fullmatch(value) is None:
        shown = value if len(value) <= _MAX_TEXT else value[:_MAX_TEXT] + "..."
        raise ValueError(
            f"{name} must be printable ASCII without control characters, got {shown!r}"
        )
    if len(value) > _MAX_TEXT:
        raise ValueError(
            f"{name} must be at most {_MAX_TEXT} characters, got {len(value)}: "
            f"{value[:_MAX_TEXT] + '...'!r}"
        )
    if value != value.strip():
        raise ValueError(f"{name} must not start or end with spaces, got {value!r}")


def _spec_expiry(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _spec_text(instance, attribute, value)
    assert isinstance(value, str)
    name = f"ContractSpec.{attribute.name}"
    if _EXPIRY.fullmatch(value) is None:
        raise ValueError(f"{name} must be YYYYMM, YYYYMMDD or '', got {value!r}")
    if value:
        year, month = int(value[:4]), int(value[4:6])
        day = int(value[6:]) if len(value) == 8 else 1
        try:
            dt.date(year, month, day)
        except ValueError:
            raise ValueError(f"{name} is not a real month or date, got {value!r}") from None


def _spec_sec_type(value: object) -> SecType:
    if isinstance(value, SecType):
        return value
    if not isinstance(value, str):
        raise TypeError(f"ContractSpec.sec_type must be a SecType or a str, got {value!r}")
    try:
        return SecType(value)
    except ValueError:
        legal = ", ".join(m.value for m in SecType)
        raise ValueError(f"ContractSpec.sec_type must be one of {legal}; got {value!r}") from None


def _spec_con_id(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    _check_type(value, int, "ContractSpec.con_id", "an int")
    assert isinstance(value, int)
    if value < 0:
        raise ValueError(f"ContractSpec.con_id must be >= 0 (0 means unset), got {value!r}")


def _spec_flag(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _check_type(value, bool, f"ContractSpec.{attribute.name}", "True or False")


@attrs.frozen
class ContractSpec:
    """What to ask IB for: the fields of an ``ibapi`` ``Contract`` that identify one.

    Only ``symbol`` may be given by position; every other field is keyword-only. Give
    ``con_id`` alone to name one contract exactly, or a symbol with enough detail to leave
    one match (a future needs its expiry or local symbol). ``ContractSpec("AAPL")`` is the
    Apple stock on ``SMART`` in USD.

    Text fields go to TWS unchanged, so they are checked here, before anything is sent:
    each must be printable ASCII (no control characters, no NUL, no non-ASCII letters), at
    most 64 characters, without leading or trailing spaces. Error messages name the field
    and show the bad value with ``repr``.

    Attributes:
        symbol: IB's symbol (``"AAPL"``, ``"GBL"`` for the Euro-Bund, not the Eurex code
            ``"FGBL"``). May be ``""`` only when ``local_symbol`` or ``con_id`` is given.
        sec_type: The security type; a :class:`SecType` or its string in any case
            (``"fut"`` becomes :attr:`SecType.FUT`).
        exchange: The exchange or ``"SMART"`` (IB's routing); for futures the listing
            exchange (``"EUREX"``, ``"CBOT"``, ``"CME"``).
        currency: ISO currency code, such as ``"USD"`` or ``"EUR"``.
        last_trade_date_or_contract_month: ``"YYYYMM"`` (the contract month),
            ``"YYYYMMDD"`` (the last trading day) or ``""``; must be a real month or date.
        local_symbol: The exchange's own symbol (``"FGBL JUN 25"``, ``"ESM5"``).
        trading_class: IB's trading class (``"FGBL"``), to tell apart contracts that share
            a symbol.
        multiplier: The contract multiplier as IB writes it (``"1000"``), or ``""``.
        primary_exchange: The listing exchange of a ``SMART``-routed stock
            (``"NASDAQ"``), to resolve ambiguity.
        con_id: IB's contract id; 0 means unset. Must not be negative.
        include_expired: True to find expired futures (IB keeps their history for two
            years after expiry).

    Raises:
        TypeError: A field has the wrong type (the message names it).
        ValueError: A text field is not printable ASCII, is longer than 64 characters or
            has leading or trailing spaces; ``sec_type`` is not one of IB's;
            ``last_trade_date_or_contract_month`` is not ``YYYYMM``, ``YYYYMMDD`` or ``""``;
            ``con_id`` is negative; or nothing identifies the contract (no symbol, local
            symbol or con_id). The message names the field and shows the bad value.
    """

    symbol: str = attrs.field(default="", validator=_spec_text)
    sec_type: SecType = attrs.field(default=SecType.STK, converter=_spec_sec_type, kw_only=True)
    exchange: str = attrs.field(default="SMART", validator=_spec_text, kw_only=True)
    currency: str = attrs.field(default="USD", validator=_spec_text, kw_only=True)
    last_trade_date_or_contract_month: str = attrs.field(
        default="", validator=_spec_expiry, kw_only=True
    )
    local_symbol: str = attrs.field(default="", validator=_spec_text, kw_only=True)
    trading_class: str = attrs.field(default="", validator=_spec_text, kw_only=True)
    multiplier: str = attrs.field(default="", validator=_spec_text, kw_only=True)
    primary_exchange: str = attrs.field(default="", validator=_spec_text, kw_only=True)
    con_id: int = attrs.field(default=0, validator=_spec_con_id, kw_only=True)
    include_expired: bool = attrs.field(default=False, validator=_spec_flag, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if not (self.symbol or self.local_symbol or self.con_id):
            raise ValueError(
                "ContractSpec needs a symbol, a local_symbol or a con_id; ContractSpec.symbol is ''"
            )

    def describe(self) -> str:
        """A short human-readable name, such as ``"GBL FUT 202506 EUREX EUR"``.

        Returns:
            The symbol (else the local symbol, else ``con_id=<n>``), the security type,
            the expiry, the exchange and the currency, leaving out empty parts.
        """
        name = self.symbol or self.local_symbol or f"con_id={self.con_id}"
        parts = (
            name,
            self.sec_type.value,
            self.last_trade_date_or_contract_month,
            self.exchange,
            self.currency,
        )
        return " ".join(part for part in parts if part)


@attrs.frozen
class Contract:
    """One contract as IB returned it (the ``contract`` part of its contract details).

    Values are IB's, unchecked: ``sec_type`` stays a string because IB knows more security
    types than :class:`SecType` lists.

    Attributes:
        con_id: IB's contract id, unique and stable for the life of the contract.
        symbol: IB's symbol (``"AAPL"``, ``"GBL"``).
        sec_type: IB's security type (``"STK"``, ``"FUT"``, ``"CONTFUT"`` ...).
        exchange: The exchange asked for (``"SMART"``) or the listing exchange.
        currency: The currency, such as ``"USD"``.
        local_symbol: The exchange's symbol (``"FGBL JUN 25"``).
        trading_class: IB's trading class (``"NMS"``, ``"FGBL"``).
        primary_exchange: The listing exchange of a stock (``"NASDAQ"`` or ``"ISLAND"``).
        last_trade_date: The last trading day ``"YYYYMMDD"``, or ``""`` for stocks.
        multiplier: The multiplier as IB writes it (``"1000"``), or ``""``.
    """

    con_id: int
    symbol: str
    sec_type: str
    exchange: str
    currency: str
    local_symbol: str
    trading_class: str
    primary_exchange: str
    last_trade_date: str
    multiplier: str

    def describe(self) -> str:
        """A short human-readable name, such as ``"GBL FUT 20250606 EUREX EUR"``.

        Returns:
            The symbol (else the local symbol, else ``con_id=<n>``), the security type,
            the last trade date, the exchange and the currency, leaving out empty parts.
        """
        name = self.symbol or self.local_symbol or f"con_id={self.con_id}"
        parts = (name, self.sec_type, self.last_trade_date, self.exchange, self.currency)
        return " ".join(part for part in parts if part)


def _session_time(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _aware_utc(value, f"TradingSession.{attribute.name}")


@attrs.frozen
class TradingSession:
    """One trading session: from ``start`` (inclusive) to ``end`` (exclusive), in UTC.

    Attributes:
        start: When the session opens, an aware UTC datetime.
        end: When it closes, an aware UTC datetime after ``start``. Overnight sessions
            simply end on a later date.

    Raises:
        TypeError: ``start`` or ``end`` is not a datetime.
        ValueError: ``start`` or ``end`` is naive, or ``end`` is not after ``start``.
            Aware datetimes in other zones are converted to UTC.
    """

    start: dt.datetime = attrs.field(validator=_session_time)
    end: dt.datetime = attrs.field(validator=_session_time)

    def __attrs_post_init__(self) -> None:
        start, end = self.start.astimezone(UTC), self.end.astimezone(UTC)
        if end <= start:
            raise ValueError(f"TradingSession.end ({end}) must be after start ({start})")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    @property
    def duration(self) -> dt.timedelta:
        """How long the session lasts."""
        return self.end - self.start

    def contains(self, when: dt.datetime) -> bool:
        """Tell whether ``when`` falls inside the session (``start <= when < end``).

        Args:
            when: An aware datetime in any zone.

        Returns:
            True when the session is open at ``when``.

        Raises:
            TypeError: ``when`` is not a datetime.
            ValueError: ``when`` is naive.
        """
        return self.start <= _aware_utc(when, "when") < self.end


def _sessions(value: Iterable[TradingSession]) -> tuple[TradingSession, ...]:
    return tuple(value)


def _str_map(value: Mapping[str, str] | Iterable[tuple[str, str]]) -> _FrozenMapping[str, str]:
    return _FrozenMapping(value)


@attrs.frozen
class ContractDetails:
    """Everything IB says about one contract (``reqContractDetails``).

    Values are IB's, apart from the hours, which are parsed into UTC sessions with
    :func:`parse_trading_hours`; the raw strings stay in ``raw_trading_hours`` and
    ``raw_liquid_hours``. See `IB's ContractDetails reference
    <https://interactivebrokers.github.io/tws-api/classIBApi_1_1ContractDetails.html>`_.

    Attributes:
        contract: The contract itself.
        market_name: IB's market name (``"NMS"``, ``"FGBL"``).
        min_tick: The smallest price increment.
        long_name: The descriptive name (``"APPLE INC"``).
        industry: Industry classification, for stocks.
        category: Category, for stocks.
        subcategory: Subcategory, for stocks.
        time_zone_id: IB's name of the exchange's zone, the zone of the raw hours and of
            daily bar dates. IB uses legacy IANA names: ``"US/Eastern"``, ``"US/Central"``,
            ``"MET"``, ``"GB-Eire"``, ``"Japan"``, ``"Hongkong"``.
        trading_hours: Every session in the published schedule (usually today and the
            next days), in UTC; closed days contribute nothing.
        liquid_hours: The regular-hours sessions (what ``use_rth=True`` keeps), in UTC.
        contract_month: ``"YYYYMM"`` for futures, else ``""``.
        valid_exchanges: Exchanges the contract can be routed to. A comma-separated
            string, as IB sends it, is split.
        order_types: Order types IB accepts for it (a comma-separated string is split).
        sec_ids: Other identifiers by type, such as ``{"ISIN": "US0378331005"}``; read
            only and hashable. Pairs or a mapping are accepted.
        under_con_id: The underlying's con_id for derivatives, else 0.
        under_symbol: The underlying's symbol, or ``""``.
        under_sec_type: The underlying's security type (``"IND"``), or ``""``.
        price_magnifier: IB's price magnifier (1 for almost everything).
        real_expiration_date: The real expiration date ``"YYYYMMDD"``, or ``""``.
        stock_type: ``"COMMON"``, ``"ETF"``, ``"ADR"`` ... for stocks, else ``""``.
        min_size: The smallest order size, or None when IB does not say.
        size_increment: The order size increment, or None.
        suggested_size_increment: IB's suggested size increment, or None.
        raw_trading_hours: ``tradingHours`` exactly as IB sent it.
        raw_liquid_hours: ``liquidHours`` exactly as IB sent it.
    """

    contract: Contract
    market_name: str
    min_tick: float
    long_name: str
    industry: str
    category: str
    subcategory: str
    time_zone_id: str
    trading_hours: tuple[TradingSession, ...] = attrs.field(converter=_sessions)
    liquid_hours: tuple[TradingSession, ...] = attrs.field(converter=_sessions)
    contract_month: str
    valid_exchanges: tuple[str, ...] = attrs.field(converter=_names)
    order_types: tuple[str, ...] = attrs.field(converter=_names)
    sec_ids: Mapping[str, str] = attrs.field(converter=_str_map)
    under_con_id: int
    under_symbol: str
    under_sec_type: str
    price_magnifier: int
    real_expiration_date: str
    stock_type: str
    min_size: float | None
    size_increment: float | None
    suggested_size_increment: float | None
    raw_trading_hours: str
    raw_liquid_hours: str

    def sec_id(self, tag: str) -> str | None:
        """One identifier from :attr:`sec_ids`.

        Args:
            tag: The identifier type, such as ``"ISIN"``, ``"CUSIP"`` or ``"FIGI"``.

        Returns:
            The identifier, or None when IB did not send one of that type.
        """
        return self.sec_ids.get(tag)

    def __repr__(self) -> str:
        # attrs' repr would list every trading session: thousands of characters.
        sessions = self.trading_hours
        hours = f"{len(sessions)} trading session{'' if len(sessions) == 1 else 's'}"
        if sessions:
            hours += f" {_utc_seconds(sessions[0].start)} .. {_utc_seconds(sessions[-1].end)}"
        parts = [
            self.contract.describe(),
            f"con_id {self.contract.con_id}",
            repr(self.long_name) if self.long_name else "",
            self.time_zone_id,
            hours,
        ]
        return f"<ContractDetails {', '.join(p for p in parts if p)}>"

    def _repr_html_(self) -> str:
        """A table of the main fields for notebooks."""
        from ibdata import _frames

        return _frames.details_html(self)


# --------------------------------------------------------------------------- hours
@functools.lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    if not name:
        raise ValueError("time_zone_id is empty; trading hours cannot be placed in time")
    if _PRINTABLE.fullmatch(name) is None:
        raise ValueError(f"unknown time zone {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name!r}") from None


_DAY_PREFIX = re.compile(r"([0-9]{8}):(.*)", re.DOTALL)
_RANGE = re.compile(r"(?:([0-9]{8}):)?([0-9]{4})-(?:([0-9]{8}):)?([0-9]{4})")
_FORMS = "YYYYMMDD:HHMM-YYYYMMDD:HHMM, YYYYMMDD:HHMM-HHMM[,HHMM-HHMM] or YYYYMMDD:CLOSED"


def _hours_date(text: str, entry: str) -> dt.date:
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise ValueError(f"trading hours entry {entry!r}: {text!r} is not a date") from None


def _hours_time(text: str, entry: str, *, end: bool) -> tuple[int, int]:
    hour, minute = int(text[:2]), int(text[2:])
    if minute < 60 and (hour < 24 or (end and hour == 24 and minute == 0)):
        return hour, minute
    raise ValueError(f"trading hours entry {entry!r}: {text!r} is not a time HHMM")


def _local(day: dt.date, hhmm: tuple[int, int], zone: ZoneInfo) -> dt.datetime:
    hour, minute = hhmm
    if hour == 24:
        day, hour = day + dt.timedelta(days=1), 0
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)


def _parse_entry(entry: str, zone: ZoneInfo) -> list[TradingSession]:
    m = _DAY_PREFIX.fullmatch(entry)
    if m is None:
        raise ValueError(f"trading hours entry {entry!r} is not {_FORMS}")
    day = _hours_date(m.group(1), entry)
    body = m.group(2)
    if body == "CLOSED":
        return []
    sessions = []
    for i, part in enumerate(body.split(",")):
        r = _RANGE.fullmatch(part)
        if r is None or (i == 0 and r.group(1) is not None):
            raise ValueError(f"trading hours entry {entry!r} is not {_FORMS}")
        start_day = day if r.group(1) is None else _hours_date(r.group(1), entry)
        start = _local(start_day, _hours_time(r.group(2), entry, end=False), zone)
        end_hhmm = _hours_time(r.group(4), entry, end=True)
        if r.group(3) is not None:
            end = _local(_hours_date(r.group(3), entry), end_hhmm, zone)
        else:
            # Legacy form: the end has no date; one at or before the start is the next day.
            end = _local(start_day, end_hhmm, zone)
            if end.replace(tzinfo=None) <= start.replace(tzinfo=None):
                end = _local(start_day + dt.timedelta(days=1), end_hhmm, zone)
        start_utc, end_utc = start.astimezone(UTC), end.astimezone(UTC)
        if end_utc <= start_utc:
            raise ValueError(f"trading hours entry {entry!r} ends before it starts")
        sessions.append(TradingSession(start_utc, end_utc))
    return sessions


def parse_trading_hours(text: str, time_zone_id: str) -> tuple[TradingSession, ...]:
    """Parse IB's ``tradingHours`` or ``liquidHours`` string into UTC sessions.

    IB's form (TWS 970 and later) is ``;``-separated entries, each
    ``YYYYMMDD:HHMM-YYYYMMDD:HHMM`` or ``YYYYMMDD:CLOSED``, with wall-clock times in
    ``time_zone_id``; the end carries its own date, so overnight sessions such as
    ``20250316:1700-20250317:1600`` are exact. The older form
    ``20090507:0700-1830,1830-2330;20090508:CLOSED`` (several sessions in one day, ends
    without a date) is read too: there an end at or before its start means the next day.
    An end of ``2400`` means midnight at the end of the day.

    Wall-clock times are converted with the zone's own rules, so a session on a daylight
    saving day gets the right UTC offset. A time that does not exist (skipped by the spring
    change) or exists twice (the autumn change) is read with the offset in force before the
    change (``fold=0``).

    Args:
        text: The string from IB; ``""`` (or only spaces) gives no sessions. Empty entries
            (a trailing ``;``) are ignored.
        time_zone_id: The zone of the times, from :attr:`ContractDetails.time_zone_id`:
            an IANA name, including IB's legacy names (``"US/Eastern"``, ``"MET"``,
            ``"GB-Eire"``, ``"Japan"``, ``"Hongkong"``). Not consulted when ``text`` is
            empty.

    Returns:
        The sessions in IB's order; closed days contribute none.

    Raises:
        TypeError: ``text`` or ``time_zone_id`` is not a string.
        ValueError: An entry is malformed, has an impossible date or time, or ends before
            it starts (the message quotes the entry); or the zone is empty or unknown.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {text!r}")
    if not isinstance(time_zone_id, str):
        raise TypeError(f"time_zone_id must be a str, got {time_zone_id!r}")
    if not text.strip():
        return ()
    zone = _zone(time_zone_id)
    sessions: list[TradingSession] = []
    for raw in text.split(";"):
        entry = raw.strip()
        if entry:
            sessions.extend(_parse_entry(entry, zone))
    return tuple(sessions)


# --------------------------------------------------------------------------- bars
def _bar_time(value: object) -> dt.datetime | dt.date:
    if isinstance(value, dt.datetime):
        return _aware_utc(value, "Bar.time")
    if isinstance(value, dt.date):
        return value
    raise TypeError(f"Bar.time must be a datetime (intraday) or a date (daily), got {value!r}")


def _number(value: object, name: str) -> float:
    if isinstance(value, (bool, str, bytes)) or not hasattr(type(value), "__float__"):
        raise TypeError(f"{name} must be a number, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def _open(value: object) -> float:
    return _number(value, "Bar.open")


def _high(value: object) -> float:
    return _number(value, "Bar.high")


def _low(value: object) -> float:
    return _number(value, "Bar.low")


def _close(value: object) -> float:
    return _number(value, "Bar.close")


def _volume(value: object) -> float | None:
    if value is None:
        return None
    number = _number(value, "Bar.volume")
    return None if math.isnan(number) or number < 0 else number


def _wap(value: object) -> float | None:
    if value is None:
        return None
    number = _number(value, "Bar.wap")
    return None if math.isnan(number) else number


def _count(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, (bool, str, bytes)):
        raise TypeError(f"Bar.count must be an integer, got {value!r}")
    if hasattr(type(value), "__index__"):
        number = operator.index(value)  # type: ignore[arg-type]
    else:
        as_float = _number(value, "Bar.count")
        if math.isnan(as_float):
            return None
        if not as_float.is_integer():
            raise ValueError(f"Bar.count must be a whole number, got {value!r}")
        number = int(as_float)
    return None if number < 0 else number


@attrs.frozen
class Bar:
    """One OHLC bar.

    **Time stamps.** ``time`` depends on the bar size:

    * intraday bars (up to ``8 hours``): an aware UTC :class:`~datetime.datetime`, the
      **start** of the bar (IB's convention);
    * daily, weekly and monthly bars: a :class:`~datetime.date`, the session date exactly
      as IB reports it, in the exchange's calendar (a futures session that opens on Sunday
      evening and closes on Monday is dated Monday). No time zone shift is invented: the
      date is not turned into a UTC instant. For weekly and monthly bars IB's date marks
      the period (observed: its last trading day).

    **Missing values.** IB sends -1 for the volume, WAP and trade count of bars without
    trades (``MIDPOINT``, ``BID``, ``ASK``, ``BID_ASK``); these become None. A negative or
    NaN volume, a NaN WAP and a negative trade count are always missing. A WAP of exactly
    -1 counts as missing only together with a missing volume, because a real average price
    can be -1 (spreads and some futures trade below zero).

    Attributes:
        time: The bar's start (intraday, aware UTC datetime) or session date (daily and
            longer, date). An aware datetime in another zone is converted to UTC.
        open: The first price of the bar (for ``BID_ASK`` bars: the time-averaged bid).
        high: The highest price (``BID_ASK``: the highest ask).
        low: The lowest price (``BID_ASK``: the lowest bid).
        close: The last price (``BID_ASK``: the time-averaged ask).
        volume: Traded volume, or None when IB has none.
        wap: The volume-weighted average price, or None.
        count: The number of trades, or None.

    Raises:
        TypeError: ``time`` is neither a datetime nor a date, or a price is not a number.
        ValueError: ``time`` is a naive datetime, or ``count`` is not a whole number.
    """

    time: dt.datetime | dt.date = attrs.field(converter=_bar_time)
    open: float = attrs.field(converter=_open)
    high: float = attrs.field(converter=_high)
    low: float = attrs.field(converter=_low)
    close: float = attrs.field(converter=_close)
    volume: float | None = attrs.field(default=None, converter=_volume)
    wap: float | None = attrs.field(default=None, converter=_wap)
    count: int | None = attrs.field(default=None, converter=_count)

    def __attrs_post_init__(self) -> None:
        if self.volume is None and self.wap == -1.0:
            object.__setattr__(self, "wap", None)


_set = object.__setattr__


def _trusted_bar(  # noqa: PLR0917 - one argument per column, on the hot path
    time: dt.datetime | dt.date,
    open_: float,
    high: float,
    low: float,
    close: float,
    volume: float,
    wap: float,
    count: int,
) -> Bar:
    """A Bar from stored column values, decoding the sentinels, without re-validation."""
    bar = object.__new__(Bar)
    vol = None if volume < 0 or math.isnan(volume) else volume
    _set(bar, "time", time)
    _set(bar, "open", open_)
    _set(bar, "high", high)
    _set(bar, "low", low)
    _set(bar, "close", close)
    _set(bar, "volume", vol)
    _set(bar, "wap", None if math.isnan(wap) or (wap == -1.0 and vol is None) else wap)
    _set(bar, "count", None if count < 0 else count)
    return bar


_COLUMNS: Final = ("time", "open", "high", "low", "close", "volume", "wap", "count")
_NO_COPY_TYPES: Final = (str, bytes, bytearray, memoryview)


def _float_column(name: str, values: object) -> array[float]:
    """Column ``name`` as ``array('d')``: the same object when it already is one."""
    if isinstance(values, array):
        if values.typecode == "d":
            return values
        if values.typecode in "bBhHiIlLqQf":
            return array("d", values)
        raise TypeError(f"column {name} must hold numbers, got array of type {values.typecode!r}")
    if isinstance(values, _NO_COPY_TYPES) or not isinstance(values, Iterable):
        raise TypeError(f"column {name} must be a sequence of numbers, got {values!r:.80}")
    try:
        return array("d", values)
    except TypeError:
        pass
    out = array("d")
    for value in values:
        out.append(math.nan if value is None else _number(value, f"column {name}"))
    return out


def _count_column(values: object) -> array[int]:
    """The count column as ``array('q')`` with -1 for missing: the same object if it is one."""
    if isinstance(values, array):
        if values.typecode == "q":
            return values
        if values.typecode in "bBhHiIlLQ":
            try:
                return array("q", values)
            except OverflowError:
                raise ValueError("column count holds a value too large for a count") from None
    elif isinstance(values, _NO_COPY_TYPES) or not isinstance(values, Iterable):
        raise TypeError(f"column count must be a sequence of integers, got {values!r:.80}")
    else:
        try:
            return array("q", values)
        except TypeError:
            pass
        except OverflowError:
            raise ValueError("column count holds a value too large for a count") from None
    out = array("q")
    for value in values:
        count = _count(value)
        out.append(-1 if count is None else count)
    return out


def _time_column(values: object, intraday: bool) -> array[float]:
    """Times as epoch seconds (intraday) or proleptic date ordinals (daily and longer)."""
    try:
        times = _float_column("time", values)
    except TypeError:
        if isinstance(values, _NO_COPY_TYPES) or not isinstance(values, Iterable):
            raise
        times = array("d", (_time_value(value, intraday) for value in values))
    if times:
        low, high = min(times), max(times)
        if not math.isfinite(sum(times)):
            raise ValueError("column time holds NaN or infinite values")
        lo_ok, hi_ok = (_MIN_TIMESTAMP, _MAX_TIMESTAMP) if intraday else (1, _MAX_ORDINAL)
        if low < lo_ok or high > hi_ok:
            what = "epoch seconds" if intraday else "date ordinals"
            raise ValueError(f"column time holds values outside the range of {what}")
    return times


def _time_value(value: object, intraday: bool) -> float:
    if intraday:
        if isinstance(value, dt.datetime):
            return (_aware_utc(value, "column time") - _EPOCH).total_seconds()
        if isinstance(value, dt.date):
            raise TypeError(f"intraday bars need datetimes in column time, got {value!r}")
    else:
        if isinstance(value, dt.datetime):
            raise TypeError(
                f"daily bars are stamped with session dates; column time needs "
                f"datetime.date values, got {value!r}"
            )
        if isinstance(value, dt.date):
            return float(value.toordinal())
    return _number(value, "column time")


def _choice(enum_type: type[Any], value: object, name: str) -> Any:
    if isinstance(value, enum_type):
        return value
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a {enum_type.__name__} or a str, got {value!r}")
    try:
        return enum_type(value)
    except ValueError:
        legal = ", ".join(repr(m.value) for m in enum_type)
        raise ValueError(f"{name} must be one of {legal}; got {value!r}") from None


class Bars(Sequence[Bar]):
    """An immutable sequence of bars from one request, stored in compact columns.

    Bars are kept as eight ``array.array`` columns (8 bytes per value: about 64 bytes per
    bar) and a :class:`Bar` is built only when one is read, so a year of one-minute bars
    stays small. Missing values are stored as NaN (volume, WAP) and -1 (count), or as IB's
    -1 sentinels; either reads back as None (see :class:`Bar`).

    ``bars[i]`` is a :class:`Bar` (negative indexes work), ``bars[a:b]`` a new
    :class:`Bars` with the same metadata, and ``len``, iteration, ``in``, ``index`` and
    ``reversed`` work as for any sequence. Two :class:`Bars` are equal when their bars and
    metadata are equal. Build them with :meth:`from_columns` or :meth:`from_bars`.

    The metadata describes the request: :attr:`contract`, :attr:`bar_size`,
    :attr:`what_to_show`, :attr:`use_rth`, :attr:`start`, :attr:`end` and
    :attr:`time_zone`.
    """

    __slots__ = (
        "_bar_size",
        "_close",
        "_contract",
        "_count",
        "_end",
        "_high",
        "_intraday",
        "_low",
        "_open",
        "_start",
        "_time",
        "_time_zone",
        "_use_rth",
        "_volume",
        "_wap",
        "_what_to_show",
    )

    _time: array[float]
    _open: array[float]
    _high: array[float]
    _low: array[float]
    _close: array[float]
    _volume: array[float]
    _wap: array[float]
    _count: array[int]
    _intraday: bool
    _contract: Contract | None
    _bar_size: BarSize
    _what_to_show: WhatToShow
    _use_rth: bool
    _start: dt.datetime | None
    _end: dt.datetime | None
    _time_zone: str

    __hash__: ClassVar[None]  # type: ignore[assignment]

    def __init__(self) -> None:
        raise TypeError("build Bars with Bars.from_columns(...) or Bars.from_bars(...)")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_columns(  # noqa: PLR0917 - one argument per column
        cls,
        time: array[float]
        | array[int]
        | Sequence[float]
        | Sequence[dt.datetime]
        | Sequence[dt.date],
        open: array[float] | Sequence[float],
        high: array[float] | Sequence[float],
        low: array[float] | Sequence[float],
        close: array[float] | Sequence[float],
        volume: array[float] | Sequence[float | None],
        wap: array[float] | Sequence[float | None],
        count: array[int] | Sequence[int | None],
        *,
        intraday: bool | None = None,
        contract: Contract | None = None,
        bar_size: BarSize | str,
        what_to_show: WhatToShow | str,
        use_rth: bool,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        time_zone: str = "",
    ) -> Bars:
        """Build bars from one column per field, the fast way.

        ``array.array`` columns whose type already matches (``'d'`` for every column but
        ``count``, ``'q'`` for ``count``) are kept as they are, without a copy: the new
        :class:`Bars` owns them, so do not modify them afterwards. Other arrays and
        sequences are copied into such arrays; in sequences None marks a missing volume,
        WAP or count. IB's -1 sentinels may be passed as they are.

        Args:
            time: Intraday bars: the bars' starts as epoch seconds (UTC), or aware
                datetimes. Daily and longer: session dates as proleptic ordinals
                (:meth:`datetime.date.toordinal`), or :class:`~datetime.date` objects.
            open: Opening prices.
            high: High prices.
            low: Low prices.
            close: Closing prices.
            volume: Volumes; NaN, None or negative for missing.
            wap: Volume-weighted average prices; NaN or None for missing (-1 together with
                a missing volume, too).
            count: Trade counts; None or negative for missing.
            intraday: Whether the bars are intraday; derived from ``bar_size`` when
                omitted, and it must agree with ``bar_size`` when given.
            contract: The contract the bars belong to, if known.
            bar_size: The bar size, a :class:`BarSize` or IB's string.
            what_to_show: What the bars measure, a :class:`WhatToShow` or IB's string.
            use_rth: True when only regular trading hours were asked for.
            start: The start of the window that was asked for or covered, aware.
            end: The end of that window, aware.
            time_zone: IB's name of the exchange's zone (``"US/Eastern"``), the calendar of
                daily session dates; ``""`` when unknown.

        Returns:
            The bars, in the order given.

        Raises:
            TypeError: A column is not a sequence of numbers (or of datetimes or dates for
                ``time``), or a metadata value has the wrong type.
            ValueError: Columns differ in length; ``time`` holds NaN, out-of-range values,
                naive datetimes; ``intraday`` contradicts ``bar_size``; ``bar_size`` or
                ``what_to_show`` is not IB's; ``start`` or ``end`` is naive, or ``start``
                is after ``end``.
        """
        size = _choice(BarSize, bar_size, "bar_size")
        if intraday is None:
            intraday = size.intraday
        elif not isinstance(intraday, bool):
            raise TypeError(f"intraday must be True, False or None, got {intraday!r}")
        elif intraday != size.intraday:
            raise ValueError(f"intraday={intraday} contradicts bar_size={size.value!r}")
        columns: tuple[array[Any], ...] = (
            _time_column(time, intraday),
            _float_column("open", open),
            _float_column("high", high),
            _float_column("low", low),
            _float_column("close", close),
            _float_column("volume", volume),
            _float_column("wap", wap),
            _count_column(count),
        )
        n = len(columns[0])
        for name, column in zip(_COLUMNS, columns, strict=True):
            if len(column) != n:
                raise ValueError(f"column {name} has {len(column)} values but time has {n}")
        self = object.__new__(cls)
        (
            self._time,
            self._open,
            self._high,
            self._low,
            self._close,
            self._volume,
            self._wap,
            self._count,
        ) = columns
        self._intraday = intraday
        self._set_meta(
            bar_size=size,
            what_to_show=what_to_show,
            contract=contract,
            use_rth=use_rth,
            start=start,
            end=end,
            time_zone=time_zone,
        )
        return self

    @classmethod
    def from_bars(
        cls,
        bars: Iterable[Bar],
        *,
        intraday: bool | None = None,
        contract: Contract | None = None,
        bar_size: BarSize | str,
        what_to_show: WhatToShow | str,
        use_rth: bool,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        time_zone: str = "",
    ) -> Bars:
        """Build bars from :class:`Bar` objects.

        Args:
            bars: The bars, in order. Intraday bar sizes need datetimes in
                :attr:`Bar.time`, daily and longer need dates.
            intraday: As in :meth:`from_columns`.
            contract: As in :meth:`from_columns`.
            bar_size: As in :meth:`from_columns`.
            what_to_show: As in :meth:`from_columns`.
            use_rth: As in :meth:`from_columns`.
            start: As in :meth:`from_columns`.
            end: As in :meth:`from_columns`.
            time_zone: As in :meth:`from_columns`.

        Returns:
            The bars with the given metadata.

        Raises:
            TypeError: An item is not a :class:`Bar`, its time is a date where a datetime
                is needed or the other way round, or a metadata value has the wrong type.
            ValueError: As for :meth:`from_columns`.
        """
        size = _choice(BarSize, bar_size, "bar_size")
        daily = not size.intraday
        time, open_, high, low, close = (array("d") for _ in range(5))
        volume, wap, count = array("d"), array("d"), array("q")
        nan = math.nan
        for bar in bars:
            if not isinstance(bar, Bar):
                raise TypeError(f"from_bars needs Bar objects, got {bar!r}")
            t = bar.time
            if isinstance(t, dt.datetime):
                if daily:
                    raise TypeError(f"{size.value} bars are stamped with session dates, got {t!r}")
                time.append((t - _EPOCH).total_seconds())
            else:
                if not daily:
                    raise TypeError(f"{size.value} bars need datetimes, got {t!r}")
                time.append(float(t.toordinal()))
            open_.append(bar.open)
            high.append(bar.high)
            low.append(bar.low)
            close.append(bar.close)
            volume.append(nan if bar.volume is None else bar.volume)
            wap.append(nan if bar.wap is None else bar.wap)
            count.append(-1 if bar.count is None else bar.count)
        return cls.from_columns(
            time,
            open_,
            high,
            low,
            close,
            volume,
            wap,
            count,
            intraday=intraday,
            contract=contract,
            bar_size=size,
            what_to_show=what_to_show,
            use_rth=use_rth,
            start=start,
            end=end,
            time_zone=time_zone,
        )

    def _set_meta(
        self,
        *,
        bar_size: BarSize,
        what_to_show: object,
        contract: object,
        use_rth: object,
        start: object,
        end: object,
        time_zone: object,
    ) -> None:
        self._bar_size = bar_size
        self._what_to_show = _choice(WhatToShow, what_to_show, "what_to_show")
        if contract is not None and not isinstance(contract, Contract):
            raise TypeError(f"contract must be a Contract or None, got {contract!r}")
        self._contract = contract
        _check_type(use_rth, bool, "use_rth", "True or False")
        self._use_rth = bool(use_rth)
        self._start = _optional_aware_utc(start, "start")
        self._end = _optional_aware_utc(end, "end")
        if self._start is not None and self._end is not None and self._start > self._end:
            raise ValueError(f"start ({self._start}) must not be after end ({self._end})")
        _check_type(time_zone, str, "time_zone", "a str")
        assert isinstance(time_zone, str)
        self._time_zone = time_zone

    # ------------------------------------------------------------------ metadata
    @property
    def contract(self) -> Contract | None:
        """The contract the bars belong to, or None when not known."""
        return self._contract

    @property
    def bar_size(self) -> BarSize:
        """The size of each bar."""
        return self._bar_size

    @property
    def what_to_show(self) -> WhatToShow:
        """What the bars measure (trades, midpoints, bids ...)."""
        return self._what_to_show

    @property
    def use_rth(self) -> bool:
        """True when only regular trading hours were asked for."""
        return self._use_rth

    @property
    def start(self) -> dt.datetime | None:
        """The start of the requested window (aware UTC), or None when not known.

        Slicing keeps it: it describes the request, not the first bar.
        """
        return self._start

    @property
    def end(self) -> dt.datetime | None:
        """The end of the requested window (aware UTC), or None when not known."""
        return self._end

    @property
    def time_zone(self) -> str:
        """IB's name of the exchange's zone (``"US/Eastern"``), or ``""`` when unknown.

        Daily session dates are dates in this zone's calendar.
        """
        return self._time_zone

    @property
    def intraday(self) -> bool:
        """True when :attr:`Bar.time` is a UTC datetime, False when it is a session date."""
        return self._intraday

    # ------------------------------------------------------------------ sequence
    def __len__(self) -> int:
        return len(self._time)

    def _decode_time(self, value: float) -> dt.datetime | dt.date:
        if self._intraday:
            return _EPOCH + dt.timedelta(seconds=value)
        return dt.date.fromordinal(int(value))

    @overload
    def __getitem__(self, index: int) -> Bar: ...

    @overload
    def __getitem__(self, index: slice) -> Bars: ...

    def __getitem__(self, index: int | slice) -> Bar | Bars:
        if isinstance(index, slice):
            return self._slice(index)
        i = operator.index(index)
        n = len(self._time)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"Bars index {index} out of range for {n} bars")
        return _trusted_bar(
            self._decode_time(self._time[i]),
            self._open[i],
            self._high[i],
            self._low[i],
            self._close[i],
            self._volume[i],
            self._wap[i],
            self._count[i],
        )

    def _slice(self, index: slice) -> Bars:
        new = object.__new__(type(self))
        new._time = self._time[index]
        new._open = self._open[index]
        new._high = self._high[index]
        new._low = self._low[index]
        new._close = self._close[index]
        new._volume = self._volume[index]
        new._wap = self._wap[index]
        new._count = self._count[index]
        new._intraday = self._intraday
        new._contract = self._contract
        new._bar_size = self._bar_size
        new._what_to_show = self._what_to_show
        new._use_rth = self._use_rth
        new._start = self._start
        new._end = self._end
        new._time_zone = self._time_zone
        return new

    def __iter__(self) -> Iterator[Bar]:
        decode = self._decode_time
        for t, o, h, lo, c, v, w, n in zip(
            self._time,
            self._open,
            self._high,
            self._low,
            self._close,
            self._volume,
            self._wap,
            self._count,
            strict=True,
        ):
            yield _trusted_bar(decode(t), o, h, lo, c, v, w, n)

    def _meta(self) -> tuple[object, ...]:
        return (
            self._intraday,
            self._contract,
            self._bar_size,
            self._what_to_show,
            self._use_rth,
            self._start,
            self._end,
            self._time_zone,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Bars):
            return NotImplemented
        if self is other:
            return True
        if len(self) != len(other) or self._meta() != other._meta():
            return False
        for mine, theirs in zip(self._raw_columns(), other._raw_columns(), strict=True):
            if mine != theirs and mine.tobytes() != theirs.tobytes():
                break
        else:
            return True
        # Raw columns differ: compare what users see (NaN and -1 both read as None).
        return all(a == b for a, b in zip(self, other, strict=True))

    def _raw_columns(self) -> tuple[array[Any], ...]:
        return (
            self._time,
            self._open,
            self._high,
            self._low,
            self._close,
            self._volume,
            self._wap,
            self._count,
        )

    def __repr__(self) -> str:
        what = self._contract.describe() if self._contract is not None else "?"
        n = len(self)
        span = ""
        if n:
            first, last = self._decode_time(self._time[0]), self._decode_time(self._time[-1])
            span = f", {first.isoformat()} .. {last.isoformat()}"
        return (
            f"<Bars {what}, {self._bar_size.value} {self._what_to_show.value}"
            f"{', RTH' if self._use_rth else ''}, {n} bar{'' if n == 1 else 's'}{span}>"
        )

    # ------------------------------------------------------------------ export
    def to_arrays(self) -> dict[str, array[Any]]:
        """Copies of the columns, without building a :class:`Bar` per bar.

        Returns:
            ``array.array`` columns keyed ``time``, ``open``, ``high``, ``low``, ``close``,
            ``volume``, ``wap`` (``'d'``) and ``count`` (``'q'``). ``time`` holds epoch
            seconds (UTC) for intraday bars and proleptic ordinals of the session dates
            (:meth:`datetime.date.toordinal`) for daily and longer bars. Missing values are
            as IB sent them (-1) or NaN, where :class:`Bar` says None.
        """
        return {
            "time": array("d", self._time),
            "open": array("d", self._open),
            "high": array("d", self._high),
            "low": array("d", self._low),
            "close": array("d", self._close),
            "volume": array("d", self._volume),
            "wap": array("d", self._wap),
            "count": array("q", self._count),
        }

    def to_dicts(self) -> list[dict[str, Any]]:
        """The bars as plain dictionaries, one per bar.

        Returns:
            Dictionaries with the keys ``time``, ``open``, ``high``, ``low``, ``close``,
            ``volume``, ``wap`` and ``count``; values as in :class:`Bar` (``time`` a UTC
            datetime or a date, missing values None).
        """
        return [
            {
                "time": bar.time,
                "open": bar.open,
                "high": bar.high,
                "low": bar.low,
                "close": bar.close,
                "volume": bar.volume,
                "wap": bar.wap,
                "count": bar.count,
            }
            for bar in self
        ]

    def to_pandas(self) -> pandas.DataFrame:
        """The bars as a pandas DataFrame (needs the optional extra ``ibdata[pandas]``).

        The index is a UTC ``DatetimeIndex`` (``datetime64[us, UTC]``) named ``"time"``:
        the bar's start for intraday bars, and **midnight UTC of the session date** for
        daily, weekly and monthly bars (a label for the date, not the instant the session
        opened). The columns ``open``, ``high``, ``low``, ``close`` and ``wap`` are
        ``float64`` with NaN for missing values; ``count`` is pandas' nullable ``Int64``
        with ``<NA>`` where IB sends no count; ``volume`` is ``Int64`` too when every volume
        is a whole number and the contract is not a crypto currency, else ``float64`` (so
        that nothing is rounded). The columns and their types are those of
        :meth:`to_arrow` and :meth:`to_polars`. ``DataFrame.attrs`` holds what the bars are
        (the keys of the Arrow schema metadata, see :meth:`to_arrow`). The frame is a copy;
        changing it leaves the bars alone.

        Returns:
            A new DataFrame with one row per bar.

        Raises:
            ImportError: pandas is not installed; ``pip install 'ibdata[pandas]'``.
        """
        from ibdata import _frames

        return _frames.to_pandas(self)

    def to_arrow(self) -> Any:
        """The bars as a ``pyarrow.Table`` (needs the optional extra ``ibdata[arrow]``).

        Columns, in order: ``time``, then ``open``, ``high``, ``low``, ``close`` (``double``),
        ``volume`` (``int64``, or ``double`` as in :meth:`to_pandas`), ``wap`` (``double``)
        and ``count`` (``int64``), with nulls where IB sends no value. ``time`` is
        ``timestamp[us, tz=UTC]`` (the bar's start) for intraday bars and ``date32`` (the
        session date) for daily, weekly and monthly bars. The schema metadata says what the
        bars are: ``ibdata.contract`` (the :class:`Contract` as JSON, ``""`` when unknown),
        ``ibdata.bar_size``, ``ibdata.what_to_show``, ``ibdata.use_rth`` (``"true"`` or
        ``"false"``), ``ibdata.time_zone``, ``ibdata.start`` and ``ibdata.end`` (ISO 8601
        UTC with ``Z``, ``""`` when unknown); Parquet files written from the table keep it.
        The table is a copy.

        Returns:
            A new ``pyarrow.Table`` with one row per bar.

        Raises:
            ImportError: pyarrow is not installed; ``pip install 'ibdata[arrow]'``.
        """
        from ibdata import _frames

        return _frames.to_arrow(self)

    def to_polars(self) -> Any:
        """The bars as a ``polars.DataFrame`` (needs the optional extra ``ibdata[polars]``).

        The columns and their types are those of :meth:`to_arrow`: ``time`` is
        ``Datetime("us", "UTC")`` for intraday bars and ``Date`` for daily and longer ones,
        prices and ``wap`` ``Float64``, ``count`` ``Int64``, ``volume`` ``Int64`` or
        ``Float64`` (as in :meth:`to_pandas`), nulls where IB sends no value. A polars
        frame has no place for metadata: :meth:`to_arrow` carries it. Does not need
        pyarrow.

        Returns:
            A new ``polars.DataFrame`` with one row per bar.

        Raises:
            ImportError: polars is not installed; ``pip install 'ibdata[polars]'``.
        """
        from ibdata import _frames

        return _frames.to_polars(self)

    # ------------------------------------------------------------------ notebooks
    def _repr_html_(self) -> str:
        """A compact table for notebooks: what the bars are, their count, span, zone and
        gaps, then the first and last five bars."""
        from ibdata import _frames

        return _frames.bars_html(self)

    def plot(self, *, volume: bool = True, title: str | None = None) -> Any:
        """Draw the bars as candles, with their volume below (extra ``ibdata[plot]``).

        Candles are green where the bar closed at or above its open, red where below; a
        candle's wick spans its low and high. Bars are drawn one after another without
        the time between them (no empty nights or weekends); the axis is labelled with the
        bars' times, UTC for intraday bars and session dates for daily ones. Nothing is
        shown by itself: a notebook displays the returned figure, and a script saves it
        with ``fig.savefig("bars.png")``. matplotlib's global state (``pyplot``) is not
        used.

        Args:
            volume: Draw the volume panel; it is left out anyway when the bars have no
                volume (quote bars).
            title: The title; by default the contract, bar size and what the bars show.

        Returns:
            A new ``matplotlib.figure.Figure``.

        Raises:
            ImportError: matplotlib is not installed; ``pip install 'ibdata[plot]'``.
            ValueError: There are no bars.
        """
        from ibdata import _frames

        return _frames.plot(self, volume=volume, title=title)


# --------------------------------------------------------------------------- health
_HEALTH_STATUSES: Final = ("healthy", "connecting", "degraded", "disconnected")


def _event_time(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    _aware_utc(value, "ConnectivityEvent.time")


@attrs.frozen
class ConnectivityEvent:
    """A connectivity notice from TWS (1100, 1101, 1102, 1300, 2110 ...).

    Attributes:
        code: IB's message code, such as 1100 (connectivity lost) or 1102 (restored,
            data maintained).
        message: IB's text.
        time: When ibdata received it, an aware datetime (converted to UTC).

    Raises:
        TypeError: ``time`` is not a datetime.
        ValueError: ``time`` is naive.
    """

    code: int
    message: str
    time: dt.datetime = attrs.field(validator=_event_time)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "time", self.time.astimezone(UTC))

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-ready values.

        Returns:
            ``{"code": ..., "message": ..., "time": "2025-03-12T15:00:00Z"}``.
        """
        return {"code": self.code, "message": self.message, "time": _iso(self.time)}


_CERTAINTIES: Final = ("exact", "offset", "ambiguous", "unknown")


def _certainty(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in _CERTAINTIES:
        legal = ", ".join(repr(s) for s in _CERTAINTIES)
        raise ValueError(f"LoginTimeZone.certainty must be one of {legal}; got {value!r}")


@attrs.frozen
class LoginTimeZone:
    """TWS's login time zone, as ibdata worked it out when the session started.

    TWS names the zone of its login in the handshake's connection time, the way its Java
    runtime names it: short or long, standard or daylight (``EST``, ``CST``, ``BST``,
    ``GMT+01:00``, ``Greenwich Mean Time``, ``British Summer Time``, ``Central European
    Standard Time``), a Windows name (``W. Europe Standard Time``) or an IANA name. Many
    names stand for several zones (``CST`` is Chicago's and Shanghai's, ``IST`` Kolkata's,
    Dublin's and Jerusalem's), so ibdata keeps the zones the name may mean whose UTC offset
    at that moment matches the one the connection time shows (its wall clock against UTC,
    read from the client's clock or else from TWS's own current time). Below server version
    174 TWS gives the window of a bars answer (:attr:`Bars.start`, :attr:`Bars.end`) in this
    zone; bar times never depend on it.

    Attributes:
        name: The name TWS sent (``British Summer Time``, ``CST``, ``Europe/London``);
            empty when its connection time carried none.
        zone: The IANA zone ibdata chose (``Europe/London``), or None when it cannot tell.
        certainty: How sure that choice is:

            * ``"exact"``: every zone the name may stand for keeps the same clock (the
              same UTC offsets all year), so the name alone decides;
            * ``"offset"``: the name stands for zones with different clocks, and the UTC
              offset at login left only zones that keep the same one;
            * ``"ambiguous"``: zones that keep different clocks fit the name and the offset
              at login (``Greenwich Mean Time`` in winter: London, Dublin, but also
              Reykjavik and Abidjan, which never change to summer time); ``zone`` is the
              most likely of them, and a login-zone time is read only when all of them
              agree on it;
            * ``"unknown"``: no zone fits (a name ibdata does not know, an offset no zone
              of that name has, or nothing to measure the offset by); ``zone`` is None
              and no login-zone time is read.

    Raises:
        ValueError: ``certainty`` is not one of the four values.
    """

    name: str
    zone: str | None
    certainty: str = attrs.field(validator=_certainty)

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values.

        Returns:
            ``{"name": ..., "zone": ... or None, "certainty": ...}``.
        """
        return {"name": self.name, "zone": self.zone, "certainty": self.certainty}


def _farms(
    value: Mapping[str, FarmState | str] | Iterable[tuple[str, FarmState | str]],
) -> _FrozenMapping[str, FarmState]:
    items = value.items() if isinstance(value, Mapping) else value
    return _FrozenMapping((name, FarmState(state)) for name, state in items)


def _status(_instance: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in _HEALTH_STATUSES:
        legal = ", ".join(repr(s) for s in _HEALTH_STATUSES)
        raise ValueError(f"Health.status must be one of {legal}; got {value!r}")


def _health_time(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None or attribute.name == "timestamp":
        _aware_utc(value, f"Health.{attribute.name}")


@attrs.frozen
class Health:
    """A snapshot of a client's session, as returned by ``Client.health()``.

    Attributes:
        status: ``"healthy"`` (connected, ready, no broken farm), ``"connecting"``
            (handshake or reconnect under way), ``"degraded"`` (connected, but a data farm
            is broken or IB lost its own connectivity, 1100) or ``"disconnected"``.
        connected: True while the socket to TWS is open.
        ready: True once TWS has started the API session (next valid id received).
        host: The TWS / IB Gateway host.
        port: Its API port.
        client_id: The API client id in use, or None before the first connection.
        server_version: The server version negotiated with TWS: the smaller of TWS's own
            maximum and the highest ibdata offers with the installed ``ibapi`` (its own
            maximum, capped at 200); None before the handshake.
        login_time_zone: TWS's login time zone: the name TWS gave it, the IANA zone
            ibdata chose and how sure it is (:class:`LoginTimeZone`); None before the
            handshake.
        accounts: The accounts TWS manages for this login.
        farms: The state of each data farm TWS reported, by farm name (``"usfarm"``,
            ``"ushmds"``, ``"secdefnj"``); read only and hashable.
        last_connectivity_event: The latest connectivity notice, or None.
        connected_since: When the current session became ready (aware UTC), or None.
        reconnect_count: How many times the client reconnected.
        ibapi_version: The ``ibapi`` release ibdata runs on (``9.81.1``, ``10.51.1``), read
            from the imported module itself rather than from package metadata, which names
            the wrong release when two packages install the module.
        timestamp: When the snapshot was taken (aware UTC).

    Raises:
        TypeError: A datetime field is not a datetime.
        ValueError: ``status`` is not one of the four values, a datetime is naive, or a
            farm state is not a :class:`FarmState` value.
    """

    status: str = attrs.field(validator=_status)
    connected: bool
    ready: bool
    host: str
    port: int
    client_id: int | None
    server_version: int | None
    login_time_zone: LoginTimeZone | None = attrs.field(default=None, kw_only=True)
    accounts: tuple[str, ...] = attrs.field(converter=_names)
    farms: Mapping[str, FarmState] = attrs.field(converter=_farms)
    last_connectivity_event: ConnectivityEvent | None
    connected_since: dt.datetime | None = attrs.field(validator=_health_time)
    reconnect_count: int
    ibapi_version: str
    timestamp: dt.datetime = attrs.field(validator=_health_time)

    def __attrs_post_init__(self) -> None:
        if self.connected_since is not None:
            object.__setattr__(self, "connected_since", self.connected_since.astimezone(UTC))
        object.__setattr__(self, "timestamp", self.timestamp.astimezone(UTC))

    def __repr__(self) -> str:
        farms: dict[FarmState, list[str]] = {}
        for name, state in self.farms.items():
            farms.setdefault(state, []).append(name)
        farm_text = ", ".join(
            f"{len(names)} {state.value}"
            if state is FarmState.OK
            else f"{state.value} {' '.join(names)}"
            for state, names in farms.items()
        )
        parts = [
            f"{self.host}:{self.port}",
            f"client {self.client_id}" if self.client_id is not None else "",
            f"server version {self.server_version}" if self.server_version is not None else "",
            f"farms {farm_text}" if farm_text else "",
            f"since {self.connected_since:%Y-%m-%dT%H:%M:%SZ}"
            if self.connected_since is not None
            else "",
            f"{self.reconnect_count} reconnect{'' if self.reconnect_count == 1 else 's'}",
            f"ibapi {self.ibapi_version}",
        ]
        return f"<Health {self.status}: {', '.join(p for p in parts if p)}>"

    def to_dict(self) -> dict[str, Any]:
        """The snapshot as JSON-ready values (for ``json.dumps`` and the REST adapter).

        Returns:
            A dict with the same keys as the attributes: datetimes as ISO 8601 strings in
            UTC with a ``Z`` suffix, farm states as their string values, the accounts as a
            list, the login time zone and the connectivity event as nested dicts (or None).
        """
        event = self.last_connectivity_event
        return {
            "status": self.status,
            "connected": self.connected,
            "ready": self.ready,
            "host": self.host,
            "port": self.port,
            "client_id": self.client_id,
            "server_version": self.server_version,
            "login_time_zone": (
                None if self.login_time_zone is None else self.login_time_zone.to_dict()
            ),
            "accounts": list(self.accounts),
            "farms": {name: state.value for name, state in self.farms.items()},
            "last_connectivity_event": None if event is None else event.to_dict(),
            "connected_since": _iso(self.connected_since),
            "reconnect_count": self.reconnect_count,
            "ibapi_version": self.ibapi_version,
            "timestamp": _iso(self.timestamp),
        }


# --------------------------------------------------------------------------- plans
def _duration_text(delta: dt.timedelta) -> str:
    """A duration for people: ``"0 s"``, ``"6.04 s"``, ``"10 min 4 s"``, ``"3 h 43 min"``,
    ``"2 d 5 h"``; seconds are left out from an hour on, minutes from a day on."""
    seconds = delta.total_seconds()
    if seconds < 60:
        return f"{seconds:.3g} s"
    days, rest = divmod(round(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h")]
    if not days:
        parts.append((minutes, "min"))
        if not hours:
            parts.append((secs, "s"))
    return " ".join(f"{n} {unit}" for n, unit in parts if n)


def _plan_time(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _aware_utc(value, f"DownloadPlan.{attribute.name}")


def _chunk_pairs(
    value: Iterable[tuple[dt.datetime, dt.datetime]],
) -> tuple[tuple[dt.datetime, dt.datetime], ...]:
    pairs = []
    for i, (start, end) in enumerate(value):
        pair = (
            _aware_utc(start, f"DownloadPlan.chunks[{i}] start"),
            _aware_utc(end, f"DownloadPlan.chunks[{i}] end"),
        )
        pairs.append(pair)
    return tuple(pairs)


@attrs.frozen
class DownloadPlan:
    """What a range download would send IB, worked out without sending it.

    Returned by ``Client.plan()``, and carried by
    :class:`~ibdata.exceptions.RangeTooLargeError` when a download is refused for needing
    more requests than its ``max_requests``. A plan is exact about what the client knows
    and an upper bound about what it does not (see ``head_timestamp``): the download it
    describes sends exactly :attr:`requests` historical-data requests, for the windows in
    :attr:`chunks`, unless the cache or the head timestamp changes in between.

    Attributes:
        contract: The contract IB resolved the instrument to.
        bar_size: The bar size.
        what_to_show: What the bars show.
        use_rth: Whether only regular trading hours were asked for.
        start: The range's start as asked (aware UTC).
        end: The range's end as asked, or when the plan was made for ``end=None``
            (aware UTC).
        head_timestamp: The instrument's first data (aware UTC) when the client knows it
            without asking IB (asked before by this client, or kept in its cache); the
            range is then clipped to it. None when unknown: the plan then starts at
            ``start``, so it may count requests for a time before the first data that
            the download will leave out.
        head_timestamp_request: True when the download would first ask IB for the head
            timestamp (one ``reqHeadTimeStamp``, paced like a small-bar request).
        chunks: The window ``(start, end)`` (aware UTC) of each historical-data request,
            oldest first; the download sends them newest first. The parts of the range
            the cache holds are left out. Daily and longer bars are asked for a little
            wider than their window (see the history guide), never in more requests.
        minimum_time: The least time IB's pacing rules (the client's ``pacing``) let
            these requests, and the head-timestamp request, be sent in, from an idle
            session: worked out from the rules, not measured. The real download takes
            longer: answers take time, the client keeps a 2% margin on every window, and
            requests the client sent just before count against the same windows. Zero
            without pacing, and for bars larger than 30 secs unless the rules set a soft
            limit.

    Raises:
        TypeError: A datetime field is not a datetime.
        ValueError: A datetime is naive.
    """

    contract: Contract
    bar_size: BarSize
    what_to_show: WhatToShow
    use_rth: bool
    start: dt.datetime = attrs.field(validator=_plan_time)
    end: dt.datetime = attrs.field(validator=_plan_time)
    head_timestamp: dt.datetime | None
    head_timestamp_request: bool
    chunks: tuple[tuple[dt.datetime, dt.datetime], ...] = attrs.field(converter=_chunk_pairs)
    minimum_time: dt.timedelta

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        object.__setattr__(self, "end", self.end.astimezone(UTC))
        if self.head_timestamp is not None:
            head = _aware_utc(self.head_timestamp, "DownloadPlan.head_timestamp")
            object.__setattr__(self, "head_timestamp", head)

    @property
    def requests(self) -> int:
        """How many historical-data requests (``reqHistoricalData``) the download sends:
        one per chunk."""
        return len(self.chunks)

    def describe(self) -> str:
        """A few words for people, such as ``"72 requests to IB (at least 10 min 4 s under
        its pacing rules)"``.

        Returns:
            The number of requests and :attr:`minimum_time`, written in days, hours,
            minutes and seconds.
        """
        noun = "request" if self.requests == 1 else "requests"
        return (
            f"{self.requests:,} {noun} to IB (at least {_duration_text(self.minimum_time)} "
            "under its pacing rules)"
        )

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready values.

        Returns:
            ``contract`` (the contract's ``describe()``), ``con_id``, ``bar_size``,
            ``what_to_show``, ``use_rth``, ``start``, ``end``, ``head_timestamp`` (or
            None), ``head_timestamp_request``, ``requests``, ``minimum_seconds`` and
            ``chunks`` (a list of ``{"start": ..., "end": ...}``); datetimes as ISO 8601
            strings in UTC with a ``Z`` suffix.
        """
        return {
            "contract": self.contract.describe(),
            "con_id": self.contract.con_id,
            "bar_size": self.bar_size.value,
            "what_to_show": self.what_to_show.value,
            "use_rth": self.use_rth,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "head_timestamp": _iso(self.head_timestamp),
            "head_timestamp_request": self.head_timestamp_request,
            "requests": self.requests,
            "minimum_seconds": self.minimum_time.total_seconds(),
            "chunks": [{"start": _iso(a), "end": _iso(b)} for a, b in self.chunks],
        }
