"""Product codes: short names for instruments, resolved to what IB must be asked for.

A :class:`ProductRegistry` maps product codes such as ``EURBBL`` to :class:`Product` records
holding IB's real identifiers, and resolves a code to an :class:`ibdata.models.ContractSpec`.
The built-in products (:data:`DEFAULT_PRODUCTS`) are the codes of the older REST server,
mapped to the identifiers IB actually uses:

========  =================  ======  =============  ========  ========  ==========
code      product            symbol  trading class  exchange  currency  multiplier
========  =================  ======  =============  ========  ========  ==========
EURBBL    Euro-Bund          GBL     FGBL           EUREX     EUR       1000
EURBND    Euro-Bobl          GBM     FGBM           EUREX     EUR       1000
EURSCA    Euro-Schatz        GBS     FGBS           EUREX     EUR       1000
ITB10Y    Euro-BTP           BTP     FBTP           EUREX     EUR       1000
UKGB      UK Long Gilt       R       (none)         ICEEU     GBP       1000
UST05Y    US 5-Year T-Note   ZF      ZF             CBOT      USD       1000
UST10Y    US 10-Year T-Note  ZN      ZN             CBOT      USD       1000
UST30Y    US Treasury Bond   ZB      ZB             CBOT      USD       1000
========  =================  ======  =============  ========  ========  ==========

The older server sent Eurex's exchange tickers (``FGBL``, ``FGBS``, ``FBTP``) as the IB
symbol, sent ``GBL`` (the Bund) for the Bobl, and sent the Long Gilt as ``G`` on ``LIFFE``.
IB knows those tickers only as the *trading class*; its symbols are ``GBL``, ``GBM``,
``GBS``, ``BTP``, and the Long Gilt is ``R`` on ``ICEEU`` (LIFFE's pre-ICE name is refused).
See IB's `contract reference
<https://www.interactivebrokers.com/campus/ibkr-api-page/contracts/>`_.

**Codes and contract months.** Codes are case-insensitive. A plain code of a futures product
means its continuous future (``SecType.CONTFUT``, historical data only). A code followed by
a month suffix means one contract: a month code and a one- or two-digit year, so
``EURBBLM25`` is the June 2025 Bund, sent as ``SecType.FUT`` with
``last_trade_date_or_contract_month="202506"``. The month codes (:data:`MONTH_CODES`) are::

    F Jan   G Feb   H Mar   J Apr   K May   M Jun   N Jul   Q Aug   U Sep   V Oct   X Nov   Z Dec

Only a product's listed months (:attr:`Product.months`, ``HMUZ`` for every built-in product)
are accepted; ``EURBBLF25`` raises :class:`ibdata.exceptions.UnknownProductError` saying
which months trade.

**Century rule.** A two-digit year ``YY`` is the year ``2000 + YY`` (``M25`` is June 2025,
``Z99`` December 2099). A one-digit year ``D`` is the only year ending in ``D`` within the
ten years from five years before to four years after the current year ``T``, that is within
``[T - 5, T + 4]``: in 2025, ``Z0`` is December 2020, ``Z5`` December 2025 and ``Z9``
December 2029. ``T`` is taken from the ``today`` argument of the resolving methods, or from
the local date. (Near the ends of the calendar the window is shifted to stay within the years
1 to 9999.)

**Files.** :meth:`ProductRegistry.from_file` reads more products from TOML or JSON, chosen by
the file's extension. Both hold one table ``products`` whose keys are the codes:

.. code-block:: toml

    [products.EURBUX]
    name = "Euro-Buxl"
    symbol = "GBX"
    trading_class = "FGBX"
    exchange = "EUREX"
    currency = "EUR"
    multiplier = "1000"
    months = "HMUZ"         # optional: listed months, default HMUZ for futures
    sec_type = "FUT"        # optional: FUT (default), STK, IND, CASH, ...

.. code-block:: json

    {"products": {"EURBUX": {"symbol": "GBX", "exchange": "EUREX", "currency": "EUR"}}}

``symbol``, ``exchange`` and ``currency`` are required; ``name``, ``trading_class``,
``multiplier``, ``months`` and ``sec_type`` are optional. Any other key, a missing or
mistyped field, or a value IB could not accept raises :class:`ValueError` naming the file,
the product and the field.

**Threads.** A registry may be read from any number of threads while another adds products:
every read works on an immutable snapshot, and :meth:`ProductRegistry.add` swaps in a new
snapshot under a lock.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import os
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from ibdata import _validate
from ibdata.exceptions import UnknownProductError
from ibdata.models import ContractSpec, SecType

__all__ = [
    "DEFAULT_PRODUCTS",
    "EXCHANGE_CURRENCIES",
    "MONTH_CODES",
    "ContractMonth",
    "Product",
    "ProductRegistry",
    "default_registry",
]

EXCHANGE_CURRENCIES: Mapping[str, str] = MappingProxyType(
    {
        "EUREX": "EUR",
        "IBIS": "EUR",
        "SBF": "EUR",
        "MONEP": "EUR",
        "AEB": "EUR",
        "ENEXT.BE": "EUR",
        "BVME": "EUR",
        "IDEM": "EUR",
        "BM": "EUR",
        "MEFFRV": "EUR",
        "ICEEU": "GBP",
        "LSE": "GBP",
        "LSEETF": "GBP",
        "EBS": "CHF",
        "SWX": "CHF",
        "OMS": "SEK",
        "TSE": "CAD",
        "CDE": "CAD",
        "OSE.JPN": "JPY",
        "TSEJ": "JPY",
        "SEHK": "HKD",
        "HKFE": "HKD",
        "ASX": "AUD",
        "SNFE": "AUD",
        "KSE": "KRW",
        "NSE": "INR",
    }
)
"""The currency an exchange's contracts trade in, for a plain symbol given with an
exchange but no currency (:meth:`ibdata.Client.resolve`): ``GBL`` on ``EUREX`` is in EUR,
not the default USD. Exchanges that list contracts in several currencies (CME, SGX, ICE US,
SMART) are not here, and a product of the registry or a currency given always wins. IB's
exchange codes; ``TSE`` is Toronto, ``TSEJ`` Tokyo. Read-only."""

MONTH_CODES: Mapping[str, int] = MappingProxyType(
    {
        "F": 1,
        "G": 2,
        "H": 3,
        "J": 4,
        "K": 5,
        "M": 6,
        "N": 7,
        "Q": 8,
        "U": 9,
        "V": 10,
        "X": 11,
        "Z": 12,
    }
)
"""The futures month codes, letter → month number (``F`` January … ``Z`` December).

The mapping is read-only and ordered by month.
"""

_MONTH_LETTERS = "FGHJKMNQUVXZ"
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_CODE_RE = re.compile(r"[A-Z0-9]{2,16}")
_CURRENCY_RE = re.compile(r"[A-Z]{3}")
_MULTIPLIER_RE = re.compile(r"[0-9]+(\.[0-9]+)?")
_MAX_FIELD = 64
_MAX_LISTED_CODES = 40

# Product kinds a registry can resolve. CONTFUT is derived from FUT; options and warrants
# need a strike and a right, which a ContractSpec does not carry.
_KINDS = (
    SecType.FUT,
    SecType.STK,
    SecType.IND,
    SecType.CASH,
    SecType.CFD,
    SecType.CMDTY,
    SecType.FUND,
    SecType.CRYPTO,
    SecType.BOND,
)

_FILE_FIELDS = (
    "name",
    "symbol",
    "exchange",
    "currency",
    "trading_class",
    "multiplier",
    "sec_type",
    "months",
)
_REQUIRED_FILE_FIELDS = ("symbol", "exchange", "currency")


# --- validators and converters -------------------------------------------------------------


def _upper_ascii(value: str) -> str:
    # Upper-case only ASCII text: str.upper() turns some non-ASCII letters into ASCII ones
    # ("ﬀ" → "FF"), which must not sneak past the ASCII checks.
    if isinstance(value, str) and value.isascii():
        return value.upper()
    return value


def _require_str(attribute: attrs.Attribute[Any], value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{attribute.name} must be a string, got {type(value).__name__} {value!r}")
    return value


def _is_printable_ascii(text: str) -> bool:
    return text.isascii() and text.isprintable()


def _check_code(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    text = _require_str(attribute, value)
    if not _CODE_RE.fullmatch(text):
        raise ValueError(f"{attribute.name} must be 2 to 16 ASCII letters or digits, got {text!r}")


def _check_name(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    text = _require_str(attribute, value)
    if not text.isprintable() or len(text) > 200:
        raise ValueError(
            f"{attribute.name} must be printable text of at most 200 characters, got {text!r}"
        )


def _check_identifier(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    text = _require_str(attribute, value)
    if not text:
        raise ValueError(f"{attribute.name} must not be empty")
    _check_optional_identifier(instance, attribute, text)


def _check_optional_identifier(
    _instance: object, attribute: attrs.Attribute[Any], value: object
) -> None:
    text = _require_str(attribute, value)
    if not _is_printable_ascii(text) or len(text) > _MAX_FIELD or text != text.strip():
        raise ValueError(
            f"{attribute.name} must be printable ASCII of at most {_MAX_FIELD} characters "
            f"without surrounding spaces, got {text!r}"
        )


def _check_currency(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    text = _require_str(attribute, value)
    if not _CURRENCY_RE.fullmatch(text):
        raise ValueError(
            f"{attribute.name} must be a three-letter ASCII currency code such as 'EUR', "
            f"got {text!r}"
        )


def _to_multiplier(value: str | int) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value  # type: ignore[return-value]  # anything else is refused by the validator


def _check_multiplier(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(
            f"{attribute.name} must be a string or an integer, got {type(value).__name__} {value!r}"
        )
    if value and not _MULTIPLIER_RE.fullmatch(value):
        raise ValueError(
            f"{attribute.name} must be empty or a positive number such as '1000', got {value!r}"
        )


def _to_sec_type(value: SecType | str) -> SecType:
    try:
        return _validate.sec_type(value)
    except ValueError:
        # Not one of IB's types: _check_sec_type explains which kinds a product may be.
        return value  # type: ignore[return-value]


def _check_sec_type(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in _KINDS:
        legal = ", ".join(kind.value for kind in _KINDS)
        shown = value.value if isinstance(value, SecType) else value
        raise ValueError(
            f"{attribute.name} must be one of {legal} (a futures product is FUT; its plain "
            f"code resolves to CONTFUT); got {shown!r}"
        )


def _default_months(product: Product) -> str:
    return "HMUZ" if product.sec_type is SecType.FUT else ""


def _to_months(value: str) -> str:
    if isinstance(value, str) and value.isascii():
        upper = value.upper()
        if set(upper) <= set(_MONTH_LETTERS) and len(set(upper)) == len(upper):
            return "".join(sorted(upper, key=MONTH_CODES.__getitem__))
        return upper
    return value


def _check_months(instance: Product, attribute: attrs.Attribute[Any], value: object) -> None:
    text = _require_str(attribute, value)
    if instance.sec_type is not SecType.FUT:
        if text:
            raise ValueError(
                f"{attribute.name} must be empty for a {instance.sec_type.value} product "
                f"(only futures have contract months), got {text!r}"
            )
        return
    bad = sorted({letter for letter in text if letter not in MONTH_CODES})
    if not text or bad or len(set(text)) != len(text):
        raise ValueError(
            f"{attribute.name} must list each traded month once by its month code "
            f"({_MONTH_LETTERS}: F January ... Z December), e.g. 'HMUZ' for the quarterly "
            f"cycle, got {text!r}"
        )


def _check_year(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{attribute.name} must be an int, got {value!r}")
    if not 1 <= value <= 9999:
        raise ValueError(f"{attribute.name} must be between 1 and 9999, got {value!r}")


def _check_month(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{attribute.name} must be an int, got {value!r}")
    if not 1 <= value <= 12:
        raise ValueError(f"{attribute.name} must be between 1 and 12, got {value!r}")


# --- records -------------------------------------------------------------------------------


@attrs.frozen(order=True)
class ContractMonth:
    """The delivery month of one futures contract.

    Instances order by year, then month.

    Attributes:
        year: The four-digit year, e.g. 2025.
        month: The month number, 1 (January) to 12 (December).

    Raises:
        TypeError: ``year`` or ``month`` is not an int.
        ValueError: ``month`` is not between 1 and 12, or ``year`` not between 1 and 9999.
    """

    year: int = attrs.field(validator=_check_year)
    month: int = attrs.field(validator=_check_month)

    @property
    def yyyymm(self) -> str:
        """The month as IB's ``lastTradeDateOrContractMonth`` wants it, e.g. ``"202506"``."""
        return f"{self.year:04d}{self.month:02d}"

    @property
    def letter(self) -> str:
        """The month's futures month code, e.g. ``"M"`` for June."""
        return _MONTH_LETTERS[self.month - 1]

    def __str__(self) -> str:
        return self.yyyymm


@attrs.frozen
class Product:
    """One product code and the identifiers IB knows the instrument by.

    Attributes:
        code: The product code, 2 to 16 ASCII letters or digits, stored upper-case
            (``"eurbbl"`` becomes ``"EURBBL"``).
        name: A human-readable name, e.g. ``"Euro-Bund"``; may be empty.
        symbol: IB's ``symbol`` (``GBL`` for the Bund, not the exchange ticker ``FGBL``).
        exchange: IB's exchange code, e.g. ``EUREX``, ``CBOT``, ``ICEEU``, ``SMART``.
        currency: The three-letter currency, stored upper-case.
        trading_class: IB's ``tradingClass`` (``FGBL``), or ``""`` to leave it open.
        multiplier: IB's ``multiplier`` as a string (``"1000"``), or ``""`` to leave it open.
            An int is accepted and stored as its string.
        sec_type: The kind of the underlying instrument: :attr:`SecType.FUT
            <ibdata.models.SecType.FUT>` (the default) for futures, whose plain code resolves
            to ``CONTFUT`` and whose code with a month suffix resolves to one ``FUT``
            contract; or ``STK``, ``IND``, ``CASH``, ``CFD``, ``CMDTY``, ``FUND``,
            ``CRYPTO``, ``BOND``, whose code resolves to that type and takes no month
            suffix. A string is accepted, in any case.
        months: The month codes of the contract months listed, in calendar order
            (``"HMUZ"``: March, June, September, December). Accepted in any order and case.
            Defaults to ``"HMUZ"`` for futures and must be empty for anything else.

    Raises:
        TypeError: A field has the wrong type (the message names it).
        ValueError: A field holds a value IB could not accept: a code that is not 2 to 16
            ASCII letters or digits, an empty or non-ASCII symbol or exchange, a currency
            that is not three letters, a multiplier that is not a number, an unsupported
            ``sec_type``, or months that are not month codes. The message names the field.
    """

    code: str = attrs.field(converter=_upper_ascii, validator=_check_code)
    name: str = attrs.field(validator=_check_name)
    symbol: str = attrs.field(validator=_check_identifier)
    exchange: str = attrs.field(validator=_check_identifier)
    currency: str = attrs.field(converter=_upper_ascii, validator=_check_currency)
    trading_class: str = attrs.field(default="", kw_only=True, validator=_check_optional_identifier)
    multiplier: str = attrs.field(
        default="", kw_only=True, converter=_to_multiplier, validator=_check_multiplier
    )
    sec_type: SecType = attrs.field(
        default=SecType.FUT, kw_only=True, converter=_to_sec_type, validator=_check_sec_type
    )
    months: str = attrs.field(
        default=attrs.Factory(_default_months, takes_self=True),
        kw_only=True,
        converter=_to_months,
        validator=_check_months,
    )

    @property
    def has_contract_months(self) -> bool:
        """True for a futures product, whose code takes a month suffix."""
        return self.sec_type is SecType.FUT

    def lists(self, month: int) -> bool:
        """Tell whether contracts are listed for a calendar month.

        Args:
            month: The month number, 1 to 12.

        Returns:
            True when the month's code is in :attr:`months`; always False for a product
            without contract months.
        """
        return 1 <= month <= 12 and _MONTH_LETTERS[month - 1] in self.months

    def spec(
        self, contract_month: ContractMonth | None = None, *, include_expired: bool = False
    ) -> ContractSpec:
        """Build the contract IB must be asked for.

        Args:
            contract_month: None for the product itself: the continuous future (``CONTFUT``)
                of a futures product, or the instrument of any other kind. A month for that
                futures contract (``FUT`` with ``last_trade_date_or_contract_month`` set to
                ``YYYYMM``).
            include_expired: Passed on for a futures contract, so IB finds it after it has
                expired. Ignored without ``contract_month``.

        Returns:
            The :class:`~ibdata.models.ContractSpec` with this product's symbol, exchange,
            currency, trading class and multiplier.

        Raises:
            ValueError: ``contract_month`` is given for a product without contract months,
                or is a month the product does not list.
        """
        if contract_month is None:
            sec_type = SecType.CONTFUT if self.has_contract_months else self.sec_type
            return ContractSpec(
                self.symbol,
                sec_type=sec_type,
                exchange=self.exchange,
                currency=self.currency,
                trading_class=self.trading_class,
                multiplier=self.multiplier,
            )
        if not self.has_contract_months:
            raise ValueError(
                f"contract_month: {self.code} is a product of type {self.sec_type.value} and "
                f"has no contract months, got {contract_month.yyyymm}"
            )
        if not self.lists(contract_month.month):
            raise ValueError(
                f"contract_month: {self.code} lists only {_describe_months(self.months)}, "
                f"got {contract_month.yyyymm}"
            )
        return ContractSpec(
            self.symbol,
            sec_type=SecType.FUT,
            exchange=self.exchange,
            currency=self.currency,
            last_trade_date_or_contract_month=contract_month.yyyymm,
            trading_class=self.trading_class,
            multiplier=self.multiplier,
            include_expired=include_expired,
        )

    def to_dict(self) -> dict[str, str]:
        """Return the product as one entry of a product file.

        Returns:
            The fields other than ``code`` (the entry's key in a file), every value a string,
            ``sec_type`` as IB's string.
        """
        return {
            "name": self.name,
            "symbol": self.symbol,
            "exchange": self.exchange,
            "currency": self.currency,
            "trading_class": self.trading_class,
            "multiplier": self.multiplier,
            "sec_type": self.sec_type.value,
            "months": self.months,
        }


def _describe_months(months: str) -> str:
    return ", ".join(f"{letter} ({_MONTH_NAMES[MONTH_CODES[letter] - 1]})" for letter in months)


DEFAULT_PRODUCTS: tuple[Product, ...] = (
    Product("EURBBL", "Euro-Bund", "GBL", "EUREX", "EUR", trading_class="FGBL", multiplier="1000"),
    Product("EURBND", "Euro-Bobl", "GBM", "EUREX", "EUR", trading_class="FGBM", multiplier="1000"),
    Product(
        "EURSCA", "Euro-Schatz", "GBS", "EUREX", "EUR", trading_class="FGBS", multiplier="1000"
    ),
    Product("ITB10Y", "Euro-BTP", "BTP", "EUREX", "EUR", trading_class="FBTP", multiplier="1000"),
    Product("UKGB", "UK Long Gilt", "R", "ICEEU", "GBP", multiplier="1000"),
    Product(
        "UST05Y", "US 5-Year T-Note", "ZF", "CBOT", "USD", trading_class="ZF", multiplier="1000"
    ),
    Product(
        "UST10Y", "US 10-Year T-Note", "ZN", "CBOT", "USD", trading_class="ZN", multiplier="1000"
    ),
    Product(
        "UST30Y", "US Treasury Bond", "ZB", "CBOT", "USD", trading_class="ZB", multiplier="1000"
    ),
)
"""The built-in products, the older REST server's codes with IB's real identifiers."""


# --- parsing -------------------------------------------------------------------------------


def _split_suffix(code: str) -> tuple[str, str, str] | None:
    """Split an upper-case code into (base, month letter, year digits), if it has a suffix.

    At most one split exists: the year is the one or two trailing digits and the month
    letter the character before them.
    """
    for digits in (2, 1):
        if len(code) < digits + 3:
            continue
        year, letter, base = code[-digits:], code[-digits - 1], code[: -digits - 1]
        if year.isascii() and year.isdigit() and letter in MONTH_CODES:
            return base, letter, year
    return None


def _expand_year(digits: str, today: dt.date) -> int:
    if len(digits) == 2:
        return 2000 + int(digits)
    # The window [T - 5, T + 4], kept inside the years a date can hold.
    first = min(max(today.year - 5, 1), 9990)
    return first + (int(digits) - first) % 10


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:37]) + "..."


def _unknown(text: str, message: str, suggestions: Iterable[str] = ()) -> UnknownProductError:
    return UnknownProductError(text, message, suggestions=suggestions)


# --- the registry --------------------------------------------------------------------------


@attrs.frozen
class _Snapshot:
    products: Mapping[str, Product]
    codes: tuple[str, ...]

    @classmethod
    def of(cls, products: Mapping[str, Product]) -> _Snapshot:
        codes = tuple(sorted(products))
        return cls(MappingProxyType({code: products[code] for code in codes}), codes)


def _conflict(products: Mapping[str, Product]) -> str | None:
    """Describe the first code that reads as another code plus a month suffix, if any.

    One pass finds every such pair, since the longer code of a pair is the one that splits.
    """
    for code in products:
        split = _split_suffix(code)
        if split is not None and split[0] in products:
            base, letter, digits = split
            return (
                f"product code {code!r} reads as product {base!r} with the month suffix "
                f"{letter + digits!r}, so the two cannot be registered together; choose a "
                "code that is not another product's code plus a month code and one or two "
                "digits"
            )
    return None


class ProductRegistry:
    """Product codes and the instruments they stand for.

    Look a code up with :meth:`resolve` (raises for anything that is not a product code),
    :meth:`lookup` (None instead) or :meth:`resolve_or_stock` (falls back to a US stock).
    Codes are case-insensitive; see the module documentation for month suffixes and the
    century rule. Reads are safe from any thread while another thread calls :meth:`add`.

    Args:
        products: Products to register beside (or instead of) the built-in ones, as
            :class:`Product` records or as a mapping from code to record. A product whose
            code is built in replaces the built-in one.
        include_defaults: Start from :data:`DEFAULT_PRODUCTS`. False starts empty.

    Raises:
        TypeError: An item is not a :class:`Product`.
        ValueError: Two given products share a code, a mapping key differs from its
            product's code, or a code reads as another product's code plus a month suffix
            (``EURBBLM25`` beside ``EURBBL``).
    """

    def __init__(
        self,
        products: Mapping[str, Product] | Iterable[Product] | None = None,
        *,
        include_defaults: bool = True,
    ) -> None:
        given: dict[str, Product] = {}
        if isinstance(products, Mapping):
            items: Iterable[Product] = products.values()
            for key, product in products.items():
                _require_product(product)
                if not isinstance(key, str) or _upper_ascii(key) != product.code:
                    raise ValueError(
                        f"products: key {key!r} differs from its product's code {product.code!r}"
                    )
        else:
            items = () if products is None else products
        for product in items:
            _require_product(product)
            if product.code in given:
                raise ValueError(f"products: product code {product.code!r} is given twice")
            given[product.code] = product
        merged = {p.code: p for p in DEFAULT_PRODUCTS} if include_defaults else {}
        merged.update(given)
        problem = _conflict(merged)
        if problem is not None:
            raise ValueError(problem)
        self._lock = threading.Lock()
        self._snapshot = _Snapshot.of(merged)

    # --- construction ---

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, include_defaults: bool = True
    ) -> ProductRegistry:
        """Build a registry from a TOML or JSON product file.

        The format is chosen by the extension, ``.toml`` or ``.json``; the module
        documentation shows both. TOML on Python 3.10 needs the ``tomli`` package.

        Args:
            path: The file to read.
            include_defaults: Start from :data:`DEFAULT_PRODUCTS`; a product in the file
                whose code is built in replaces the built-in one.

        Returns:
            A new registry.

        Raises:
            OSError: The file cannot be read (e.g. :class:`FileNotFoundError`).
            ValueError: The extension is neither ``.toml`` nor ``.json``, the file is not
                valid TOML or JSON, or an entry is invalid: an unknown key, a missing
                ``symbol``, ``exchange`` or ``currency``, a value of the wrong type, bad
                months, non-ASCII text, a code given twice, or a code that reads as another
                code plus a month suffix. The message names the file, the product and the
                field.
        """
        file = Path(path)
        products = _read_product_file(file)
        try:
            return cls(products, include_defaults=include_defaults)
        except ValueError as exc:
            raise ValueError(f"{file}: {exc}") from None

    @classmethod
    def from_env(
        cls,
        var: str = "IBDATA_PRODUCTS",
        *,
        include_defaults: bool = True,
        environ: Mapping[str, str] | None = None,
    ) -> ProductRegistry:
        """Build a registry from the product file an environment variable names.

        Args:
            var: The variable holding the path of a TOML or JSON product file (``~`` is
                expanded). Unset or blank means no file: the registry then holds only the
                defaults.
            include_defaults: Start from :data:`DEFAULT_PRODUCTS`, as in :meth:`from_file`.
            environ: The environment to read; :data:`os.environ` when None.

        Returns:
            A new registry.

        Raises:
            OSError: The named file cannot be read.
            ValueError: The named file is invalid, as in :meth:`from_file`, or the path
                starts with ``~user`` for a user who does not exist.
        """
        env = os.environ if environ is None else environ
        value = env.get(var, "").strip()
        if not value:
            return cls(include_defaults=include_defaults)
        try:
            path = Path(value).expanduser()
        except RuntimeError:  # pathlib's answer to "~someone" when there is no such user
            raise ValueError(
                f"{var}={value!r}: no home directory for {value.split('/')[0]!r}"
            ) from None
        return cls.from_file(path, include_defaults=include_defaults)

    def to_file(self, path: str | os.PathLike[str]) -> None:
        """Write every product of the registry to a TOML or JSON product file.

        The file reads back with :meth:`from_file` to the same products.

        Args:
            path: The file to write, replaced if it exists; ``.toml`` or ``.json``.

        Raises:
            OSError: The file cannot be written.
            ValueError: The extension is neither ``.toml`` nor ``.json``.
        """
        file = Path(path)
        products = self._snapshot.products
        kind = _file_kind(file)
        if kind == "json":
            data = {"products": {code: p.to_dict() for code, p in products.items()}}
            text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        else:
            lines: list[str] = []
            for code, product in products.items():
                lines.append(f"[products.{code}]")
                lines.extend(
                    f"{key} = {json.dumps(value, ensure_ascii=False)}"
                    for key, value in product.to_dict().items()
                )
                lines.append("")
            text = "\n".join(lines)
        file.write_text(text, encoding="utf-8")

    # --- changes ---

    def add(self, product: Product, *, replace: bool = False) -> None:
        """Register a product.

        Args:
            product: The product to add.
            replace: Replace a product registered under the same code. Without it, a
                code already in use raises.

        Raises:
            TypeError: ``product`` is not a :class:`Product`.
            ValueError: The code is already registered and ``replace`` is False, or it reads
                as another product's code plus a month suffix, or another code reads as it
                plus a month suffix.
        """
        _require_product(product)
        with self._lock:
            current = self._snapshot.products
            if product.code in current and not replace:
                raise ValueError(
                    f"product code {product.code!r} is already registered "
                    f"({current[product.code].name or current[product.code].symbol}); "
                    "pass replace=True to replace it"
                )
            merged = dict(current)
            merged[product.code] = product
            problem = _conflict(merged)
            if problem is not None:
                raise ValueError(problem)
            self._snapshot = _Snapshot.of(merged)

    # --- reading ---

    @property
    def products(self) -> Mapping[str, Product]:
        """A read-only snapshot of the products, code → product, sorted by code.

        Later calls to :meth:`add` do not change a snapshot already taken.
        """
        return self._snapshot.products

    def get(self, code: str) -> Product | None:
        """Return the product registered under a code, in any case, or None.

        A code with a month suffix is not a product code: see :meth:`parse`.
        """
        if not isinstance(code, str) or not code.isascii():
            return None
        return self._snapshot.products.get(code.upper())

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and self.get(code) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._snapshot.codes)

    def __len__(self) -> int:
        return len(self._snapshot.codes)

    def __repr__(self) -> str:
        codes = self._snapshot.codes
        return f"<ProductRegistry: {len(codes)} products: {', '.join(codes)}>"

    def parse(
        self, text: str, *, today: dt.date | None = None
    ) -> tuple[Product, ContractMonth | None]:
        """Split a code into its product and, if it has a month suffix, its contract month.

        An exact product code wins over reading its end as a month suffix.

        Args:
            text: A product code, in any case, optionally followed by a month suffix
                (``EURBBL``, ``eurbblm25``, ``UST10YZ5``).
            today: The date a one-digit year is read against (the century rule in the
                module documentation); the local date when None.

        Returns:
            The product, and the contract month or None for the plain code.

        Raises:
            TypeError: ``text`` is not a str.
            UnknownProductError: ``text`` is not a product code, with or without a month
                suffix; or the suffix names a month the product does not list, or is given
                for a product without contract months. The message says which, and lists
                the known codes or the listed months.
        """
        return self._parse(self._snapshot, text, today)

    def resolve(self, text: str, *, today: dt.date | None = None) -> ContractSpec:
        """Resolve a product code to the contract IB must be asked for.

        A plain futures code gives the continuous future (``CONTFUT``, no month). A code
        with a month suffix gives that contract: ``FUT`` with
        ``last_trade_date_or_contract_month="YYYYMM"``, and ``include_expired=True`` when
        the month is the current one or earlier, since the contract may have expired and
        IB answers error 200 for an expired future unless asked to include expired ones.

        Args:
            text: A product code, in any case, optionally with a month suffix.
            today: The date the century rule and the expiry guess use; the local date when
                None.

        Returns:
            The :class:`~ibdata.models.ContractSpec` to request.

        Raises:
            TypeError: ``text`` is not a str.
            UnknownProductError: As :meth:`parse`.
        """
        today = dt.date.today() if today is None else today
        product, month = self._parse(self._snapshot, text, today)
        return _spec(product, month, today)

    def lookup(self, text: str, *, today: dt.date | None = None) -> ContractSpec | None:
        """Resolve a product code, or return None if ``text`` names no product.

        Args:
            text: Anything; a product code, in any case, optionally with a month suffix.
            today: As in :meth:`resolve`.

        Returns:
            The contract, as :meth:`resolve` gives it; None when ``text`` is neither a
            product code nor a product code followed by something shaped like a month suffix.

        Raises:
            TypeError: ``text`` is not a str.
            UnknownProductError: ``text`` is a product code with a month suffix the product
                does not take (an unlisted month, or any month for a product without
                contract months); such a string is clearly meant as a product code.
        """
        _require_text(text)
        snapshot = self._snapshot
        if not self._names_product(snapshot, text):
            return None
        today = dt.date.today() if today is None else today
        product, month = self._parse(snapshot, text, today)
        return _spec(product, month, today)

    def resolve_or_stock(
        self,
        text: str,
        *,
        today: dt.date | None = None,
        exchange: str = "SMART",
        currency: str = "USD",
    ) -> ContractSpec:
        """Resolve a product code, or else take ``text`` as a stock symbol.

        Args:
            text: A product code (as for :meth:`resolve`) or a stock symbol, used as given.
            today: As in :meth:`resolve`.
            exchange: The stock's exchange when ``text`` is not a product code.
            currency: The stock's currency when ``text`` is not a product code.

        Returns:
            The product's contract, or ``ContractSpec(text, sec_type=SecType.STK,
            exchange=exchange, currency=currency)``.

        Raises:
            TypeError: ``text`` is not a str.
            UnknownProductError: As :meth:`lookup`.
            ValueError: ``text`` is not a valid symbol (empty, not printable ASCII, or longer
                than 64 characters), or ``exchange`` or ``currency`` is invalid.
        """
        spec = self.lookup(text, today=today)
        if spec is not None:
            return spec
        return ContractSpec(text, sec_type=SecType.STK, exchange=exchange, currency=currency)

    # --- internals ---

    @staticmethod
    def _names_product(snapshot: _Snapshot, text: str) -> bool:
        if not text.isascii():
            return False
        upper = text.upper()
        if upper in snapshot.products:
            return True
        split = _split_suffix(upper)
        return split is not None and split[0] in snapshot.products

    @staticmethod
    def _parse(
        snapshot: _Snapshot, text: str, today: dt.date | None
    ) -> tuple[Product, ContractMonth | None]:
        _require_text(text)
        upper = text.upper() if text.isascii() else text
        products = snapshot.products
        product = products.get(upper)
        if product is not None:
            return product, None
        split = _split_suffix(upper) if text.isascii() else None
        if split is None or split[0] not in products:
            close = difflib.get_close_matches(upper, snapshot.codes, n=3, cutoff=0.6)
            raise _unknown(text, _unknown_message(snapshot, text, upper), close)
        base, letter, digits = split
        product = products[base]
        if not product.has_contract_months:
            raise _unknown(
                text,
                f"{_shown(text)}: {base} is a product of type {product.sec_type.value} "
                f"({product.name or product.symbol}) and takes no contract month suffix",
            )
        if letter not in product.months:
            month_name = _MONTH_NAMES[MONTH_CODES[letter] - 1]
            raise _unknown(
                text,
                f"{_shown(text)}: {base} ({product.name or product.symbol}) is listed only "
                f"in {_describe_months(product.months)}; no contract trades in "
                f"{letter} ({month_name})",
            )
        today = dt.date.today() if today is None else today
        return product, ContractMonth(_expand_year(digits, today), MONTH_CODES[letter])


def _unknown_message(snapshot: _Snapshot, text: str, upper: str) -> str:
    codes = snapshot.codes
    listed = ", ".join(codes[:_MAX_LISTED_CODES])
    if len(codes) > _MAX_LISTED_CODES:
        listed += f", ... ({len(codes) - _MAX_LISTED_CODES} more)"
    message = f"unknown product code {_shown(text)}; known codes: {listed or '(none)'}"
    prefixes = [code for code in codes if upper.startswith(code) and upper != code]
    if prefixes:
        base = max(prefixes, key=len)
        message += (
            f". To name one {base} contract, add a month code and a one- or two-digit "
            f"year, e.g. {base}{snapshot.products[base].months[:1] or 'Z'}25"
        )
    return message


def _spec(product: Product, month: ContractMonth | None, today: dt.date) -> ContractSpec:
    if month is None:
        return product.spec()
    expired = (month.year, month.month) <= (today.year, today.month)
    return product.spec(month, include_expired=expired)


def _require_text(text: object) -> None:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__} {text!r}")


def _require_product(product: object) -> None:
    if not isinstance(product, Product):
        raise TypeError(f"product must be a Product, got {type(product).__name__} {product!r}")


def default_registry() -> ProductRegistry:
    """Return a new registry holding the built-in products, :data:`DEFAULT_PRODUCTS`.

    Each call returns a new registry, so adding to one does not affect others.
    """
    return ProductRegistry()


# --- files ---------------------------------------------------------------------------------


def _file_kind(file: Path) -> str:
    suffix = file.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ValueError(
            f"{file}: unsupported product file extension {file.suffix!r}; use .toml or .json"
        )
    return suffix[1:]


def _load_toml(file: Path) -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        try:
            import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
        except ModuleNotFoundError as exc:
            raise ImportError(
                "reading TOML product files on Python 3.10 needs the 'tomli' package"
            ) from exc
    with file.open("rb") as stream:
        return tomllib.load(stream)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} appears twice")
        out[key] = value
    return out


def _read_product_file(file: Path) -> list[Product]:
    kind = _file_kind(file)
    try:
        if kind == "toml":
            data = _load_toml(file)
        else:
            with file.open(encoding="utf-8") as stream:
                data = json.load(stream, object_pairs_hook=_no_duplicate_keys)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{file}: not UTF-8 text: {exc}") from exc
    except ValueError as exc:  # tomllib.TOMLDecodeError, json.JSONDecodeError, duplicates
        raise ValueError(f"{file}: not a valid {kind.upper()} product file: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{file}: the top level must be a table with a 'products' table")
    extra = sorted(set(data) - {"products"})
    if extra:
        raise ValueError(
            f"{file}: unknown top-level key {extra[0]!r}; the file holds one table 'products'"
        )
    entries = data.get("products")
    if not isinstance(entries, dict):
        raise ValueError(
            f"{file}: 'products' must be a table mapping product codes to their fields"
        )
    products: list[Product] = []
    seen: dict[str, str] = {}
    for key, entry in entries.items():
        where = f"{file}: product {key!r}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: must be a table of fields, got {type(entry).__name__}")
        unknown = sorted(set(entry) - set(_FILE_FIELDS))
        if unknown:
            raise ValueError(
                f"{where}: unknown field {unknown[0]!r}; known fields: {', '.join(_FILE_FIELDS)}"
            )
        missing = [name for name in _REQUIRED_FILE_FIELDS if name not in entry]
        if missing:
            raise ValueError(f"{where}: missing required field {missing[0]!r}")
        fields = dict(entry)
        name = fields.pop("name", "")
        try:
            product = Product(
                key,
                name,
                fields.pop("symbol"),
                fields.pop("exchange"),
                fields.pop("currency"),
                **fields,
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None
        if product.code in seen:
            raise ValueError(
                f"{where}: the code {product.code!r} is also given as {seen[product.code]!r}"
            )
        seen[product.code] = key
        products.append(product)
    return products
