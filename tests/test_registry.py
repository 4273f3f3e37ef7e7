"""Tests for ibdata.registry: product codes, month suffixes, product files."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ibdata.exceptions import IBDataError, UnknownProductError
from ibdata.models import ContractSpec, SecType
from ibdata.registry import (
    DEFAULT_PRODUCTS,
    MONTH_CODES,
    ContractMonth,
    Product,
    ProductRegistry,
    default_registry,
)

TODAY = dt.date(2025, 6, 15)

#: The issue's table: code → (symbol, trading class, exchange, currency).
TABLE = {
    "UKGB": ("R", "", "ICEEU", "GBP"),
    "UST10Y": ("ZN", "ZN", "CBOT", "USD"),
    "UST05Y": ("ZF", "ZF", "CBOT", "USD"),
    "UST30Y": ("ZB", "ZB", "CBOT", "USD"),
    "EURBBL": ("GBL", "FGBL", "EUREX", "EUR"),
    "EURSCA": ("GBS", "FGBS", "EUREX", "EUR"),
    "ITB10Y": ("BTP", "FBTP", "EUREX", "EUR"),
    "EURBND": ("GBM", "FGBM", "EUREX", "EUR"),
}

BUXL = Product(
    "EURBUX", "Euro-Buxl", "GBX", "EUREX", "EUR", trading_class="FGBX", multiplier="1000"
)
APPLE = Product("APPLE", "Apple Inc.", "AAPL", "SMART", "USD", sec_type="STK")


@pytest.fixture
def registry() -> ProductRegistry:
    """A registry holding only the built-in products."""
    return default_registry()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the built-in products ----------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(TABLE))
def test_plain_code_resolves_to_the_continuous_future(registry: ProductRegistry, code: str) -> None:
    """Each built-in code resolves to CONTFUT with the table's identifiers and no month."""
    symbol, trading_class, exchange, currency = TABLE[code]
    spec = registry.resolve(code, today=TODAY)
    assert spec == ContractSpec(
        symbol,
        sec_type=SecType.CONTFUT,
        exchange=exchange,
        currency=currency,
        trading_class=trading_class,
        multiplier="1000",
    )
    assert spec.last_trade_date_or_contract_month == ""
    assert not spec.include_expired


def test_default_products_are_exactly_the_table() -> None:
    """The built-in products are the eight codes of the table, all quarterly, multiplier 1000."""
    assert sorted(p.code for p in DEFAULT_PRODUCTS) == sorted(TABLE)
    for product in DEFAULT_PRODUCTS:
        assert product.months == "HMUZ"
        assert product.multiplier == "1000"
        assert product.sec_type is SecType.FUT
        assert product.name


def test_bund_june_2025_is_a_dated_future(registry: ProductRegistry) -> None:
    """``EURBBLM25`` is the June 2025 Bund: FUT GBL 202506 on EUREX, trading class FGBL."""
    spec = registry.resolve("EURBBLM25", today=dt.date(2025, 1, 10))
    assert spec == ContractSpec(
        "GBL",
        sec_type=SecType.FUT,
        exchange="EUREX",
        currency="EUR",
        last_trade_date_or_contract_month="202506",
        trading_class="FGBL",
        multiplier="1000",
    )


@pytest.mark.parametrize("text", ["ust10yz5", "UST10YZ25", "Ust10yZ25", "UST10YZ5"])
def test_codes_are_case_insensitive(registry: ProductRegistry, text: str) -> None:
    """Code and month suffix are read in any case; ``Z5`` and ``Z25`` agree in 2025."""
    spec = registry.resolve(text, today=TODAY)
    assert (spec.symbol, spec.sec_type, spec.last_trade_date_or_contract_month) == (
        "ZN",
        SecType.FUT,
        "202512",
    )


def test_old_servers_wrong_mapping_is_not_sent(registry: ProductRegistry) -> None:
    """The older server's symbols (FGBL, G on LIFFE, GBL for the Bobl) are not what we send."""
    bund = registry.resolve("EURBBL", today=TODAY)
    assert bund.symbol == "GBL"
    assert bund.symbol != "FGBL"
    assert bund.trading_class == "FGBL"
    gilt = registry.resolve("UKGB", today=TODAY)
    assert (gilt.symbol, gilt.exchange) == ("R", "ICEEU")
    assert (gilt.symbol, gilt.exchange) != ("G", "LIFFE")
    assert registry.resolve("EURBND", today=TODAY).symbol == "GBM"
    for code in ("EURSCA", "ITB10Y"):
        spec = registry.resolve(code, today=TODAY)
        assert not spec.symbol.startswith("F")
        assert spec.trading_class == "F" + spec.symbol


# --- month suffixes and the century rule ---------------------------------------------------


@pytest.mark.parametrize(
    ("today", "suffix", "expected"),
    [
        # In 2025 the window is [2020, 2029].
        (dt.date(2025, 6, 15), "Z0", "202012"),
        (dt.date(2025, 6, 15), "Z4", "202412"),
        (dt.date(2025, 6, 15), "Z5", "202512"),
        (dt.date(2025, 6, 15), "Z9", "202912"),
        # In 2024 the window is [2019, 2028]: a 9 now means 2019, an 8 means 2028.
        (dt.date(2024, 12, 31), "Z9", "201912"),
        (dt.date(2024, 12, 31), "Z8", "202812"),
        (dt.date(2024, 1, 1), "H0", "202003"),
        # In 2030 the window is [2025, 2034].
        (dt.date(2030, 1, 1), "H5", "202503"),
        (dt.date(2030, 1, 1), "H4", "203403"),
    ],
)
def test_one_digit_year_is_read_within_five_years_back_four_ahead(
    registry: ProductRegistry, today: dt.date, suffix: str, expected: str
) -> None:
    """A one-digit year is the only year with that last digit in [today - 5, today + 4]."""
    spec = registry.resolve("UST10Y" + suffix, today=today)
    assert spec.last_trade_date_or_contract_month == expected


@pytest.mark.parametrize(
    ("today", "expected"),
    [(dt.date(1, 1, 1), "000903"), (dt.date(9999, 12, 31), "999903")],
)
def test_one_digit_year_stays_within_representable_years(
    registry: ProductRegistry, today: dt.date, expected: str
) -> None:
    """At the ends of the calendar the ten-year window is shifted to stay within years 1-9999."""
    assert registry.resolve("EURBBLH9", today=today).last_trade_date_or_contract_month == expected


@pytest.mark.parametrize(
    ("suffix", "expected"), [("H00", "200003"), ("M25", "202506"), ("Z99", "209912")]
)
def test_two_digit_year_is_in_the_2000s(
    registry: ProductRegistry, suffix: str, expected: str
) -> None:
    """A two-digit year YY is 2000 + YY whatever today is."""
    for today in (dt.date(2001, 1, 1), dt.date(2098, 12, 31)):
        spec = registry.resolve("EURBBL" + suffix, today=today)
        assert spec.last_trade_date_or_contract_month == expected


def test_parse_splits_product_and_month(registry: ProductRegistry) -> None:
    """``parse`` returns the product and the contract month, or None for a plain code."""
    product, month = registry.parse("eurbblu26", today=TODAY)
    assert product.code == "EURBBL"
    assert month == ContractMonth(2026, 9)
    assert registry.parse("EURBBL", today=TODAY) == (registry.get("EURBBL"), None)


@pytest.mark.parametrize(
    ("today", "include_expired"),
    [
        (dt.date(2025, 5, 31), False),
        (dt.date(2025, 6, 1), True),
        (dt.date(2025, 6, 30), True),
        (dt.date(2026, 1, 1), True),
    ],
)
def test_contracts_in_or_before_this_month_include_expired(
    registry: ProductRegistry, today: dt.date, include_expired: bool
) -> None:
    """A contract month up to the current one sets ``include_expired``; a later one does not."""
    assert registry.resolve("EURBBLM25", today=today).include_expired is include_expired


def test_unlisted_month_is_refused_naming_the_listed_months(registry: ProductRegistry) -> None:
    """``EURBBLF25`` raises UnknownProductError saying the Bund trades only H, M, U and Z."""
    with pytest.raises(UnknownProductError) as caught:
        registry.resolve("EURBBLF25", today=TODAY)
    message = str(caught.value)
    assert "EURBBLF25" in message
    for listed in ("H (Mar)", "M (Jun)", "U (Sep)", "Z (Dec)", "F (Jan)"):
        assert listed in message
    assert caught.value.code == "EURBBLF25"


def test_unknown_code_lists_the_known_codes(registry: ProductRegistry) -> None:
    """An unknown code raises UnknownProductError (an IBDataError and LookupError) listing codes."""
    with pytest.raises(UnknownProductError) as caught:
        registry.resolve("BUND", today=TODAY)
    error = caught.value
    assert isinstance(error, IBDataError)
    assert isinstance(error, LookupError)
    assert error.code == "BUND"
    message = str(error)
    assert "'BUND'" in message
    for code in TABLE:
        assert code in message


def test_four_digit_year_gets_a_hint(registry: ProductRegistry) -> None:
    """``EURBBLM2025`` is unknown, and the message shows how to write a contract month."""
    with pytest.raises(UnknownProductError, match=r"EURBBLH25"):
        registry.resolve("EURBBLM2025", today=TODAY)


def test_long_unknown_text_is_shortened_in_the_message(registry: ProductRegistry) -> None:
    """A very long unknown string is cut in the message but kept whole on ``.code``."""
    text = "X" * 10_000
    with pytest.raises(UnknownProductError) as caught:
        registry.resolve(text)
    assert len(str(caught.value)) < 500
    assert caught.value.code == text


def test_non_string_code_is_a_type_error(registry: ProductRegistry) -> None:
    """Passing something other than a str raises TypeError."""
    with pytest.raises(TypeError, match="text"):
        registry.resolve(25)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="text"):
        registry.lookup(None)  # type: ignore[arg-type]


def test_lookup_returns_none_for_non_products(registry: ProductRegistry) -> None:
    """``lookup`` gives None for text that is not a product code and resolves product codes."""
    assert registry.lookup("AAPL") is None
    assert registry.lookup("") is None
    assert registry.lookup("ÉURBBL") is None
    assert registry.lookup("EURBBLM25", today=TODAY) == registry.resolve("EURBBLM25", today=TODAY)


def test_lookup_raises_for_a_product_with_a_bad_month(registry: ProductRegistry) -> None:
    """``lookup`` raises for a product code with an unlisted month: it clearly meant a product."""
    with pytest.raises(UnknownProductError, match="EURBBLF25"):
        registry.lookup("EURBBLF25", today=TODAY)


def test_resolve_or_stock_falls_back_to_a_stock(registry: ProductRegistry) -> None:
    """``resolve_or_stock`` resolves products and takes anything else as a stock symbol."""
    assert registry.resolve_or_stock("AAPL") == ContractSpec(
        "AAPL", sec_type=SecType.STK, exchange="SMART", currency="USD"
    )
    assert registry.resolve_or_stock("SAP", exchange="IBIS", currency="EUR") == ContractSpec(
        "SAP", sec_type=SecType.STK, exchange="IBIS", currency="EUR"
    )
    assert registry.resolve_or_stock("ukgb").symbol == "R"
    with pytest.raises(ValueError, match="symbol"):
        registry.resolve_or_stock("")


def test_non_futures_product_takes_no_month_suffix() -> None:
    """A stock product resolves to STK, and a month suffix on it is refused."""
    registry = ProductRegistry([APPLE])
    assert registry.resolve("apple") == ContractSpec(
        "AAPL", sec_type=SecType.STK, exchange="SMART", currency="USD"
    )
    with pytest.raises(UnknownProductError, match="no contract month"):
        registry.resolve("APPLEZ25")


def test_exact_code_wins_over_a_suffix_reading() -> None:
    """A registered code that ends like a month suffix resolves as itself."""
    odd = Product("ABZ5", "", "ABZ", "CME", "USD")
    registry = ProductRegistry([odd], include_defaults=False)
    assert registry.resolve("abz5", today=TODAY).sec_type is SecType.CONTFUT
    assert registry.parse("ABZ5Z5", today=TODAY) == (odd, ContractMonth(2025, 12))


# --- products and the registry's collection API --------------------------------------------


def test_product_normalises_code_currency_months_and_multiplier() -> None:
    """Code and currency are upper-cased, months sorted by calendar, an int multiplier kept."""
    product = Product("eurbux", "", "GBX", "EUREX", "eur", multiplier=1000, months="zuhm")
    assert (product.code, product.currency, product.months, product.multiplier) == (
        "EURBUX",
        "EUR",
        "HMUZ",
        "1000",
    )
    assert Product("XX", "", "X", "SMART", "USD", sec_type="stk").months == ""


@pytest.mark.parametrize(
    ("changes", "error", "field"),
    [
        ({"code": "E"}, ValueError, "code"),
        ({"code": "EUR-BUX"}, ValueError, "code"),
        ({"code": "A" * 17}, ValueError, "code"),
        ({"code": "ÉURBUX"}, ValueError, "code"),
        ({"code": "\ufb00x"}, ValueError, "code"),
        ({"symbol": ""}, ValueError, "symbol"),
        ({"symbol": "GBX€"}, ValueError, "symbol"),
        ({"symbol": " GBX"}, ValueError, "symbol"),
        ({"exchange": "EU\x00REX"}, ValueError, "exchange"),
        ({"currency": "EURO"}, ValueError, "currency"),
        ({"trading_class": "F" * 65}, ValueError, "trading_class"),
        ({"multiplier": "lots"}, ValueError, "multiplier"),
        ({"multiplier": True}, TypeError, "multiplier"),
        ({"multiplier": 10.5}, TypeError, "multiplier"),
        ({"sec_type": "CONTFUT"}, ValueError, "sec_type"),
        ({"sec_type": "OPT"}, ValueError, "sec_type"),
        ({"sec_type": "BOGUS"}, ValueError, "sec_type"),
        ({"months": ""}, ValueError, "months"),
        ({"months": "HMUA"}, ValueError, "months"),
        ({"months": "HH"}, ValueError, "months"),
        ({"symbol": 5}, TypeError, "symbol"),
        ({"name": "Bund\n"}, ValueError, "name"),
    ],
)
def test_product_rejects_bad_fields(
    changes: dict[str, Any], error: type[Exception], field: str
) -> None:
    """A Product with a value IB could not accept raises, naming the field."""
    with pytest.raises(error, match=field):
        attrs.evolve(BUXL, **changes)


def test_stock_product_with_months_is_refused() -> None:
    """Only futures list contract months."""
    with pytest.raises(ValueError, match="months"):
        Product("APPLE", "", "AAPL", "SMART", "USD", sec_type=SecType.STK, months="HMUZ")


def test_product_spec_checks_the_month() -> None:
    """``Product.spec`` refuses an unlisted month and a month for a stock."""
    assert BUXL.spec(ContractMonth(2025, 9)).last_trade_date_or_contract_month == "202509"
    with pytest.raises(ValueError, match="lists only"):
        BUXL.spec(ContractMonth(2025, 1))
    with pytest.raises(ValueError, match="no contract months"):
        APPLE.spec(ContractMonth(2025, 3))


def test_contract_month_formats_and_orders() -> None:
    """ContractMonth gives YYYYMM and its month code, orders by date, and checks its fields."""
    month = ContractMonth(2025, 6)
    assert (month.yyyymm, month.letter, str(month)) == ("202506", "M", "202506")
    assert ContractMonth(2024, 12) < month < ContractMonth(2025, 7)
    with pytest.raises(ValueError, match="month"):
        ContractMonth(2025, 13)
    with pytest.raises(TypeError, match="year"):
        ContractMonth("2025", 1)  # type: ignore[arg-type]


def test_month_codes_are_the_twelve_letters() -> None:
    """MONTH_CODES maps F..Z to 1..12 in calendar order and is read-only."""
    assert "".join(MONTH_CODES) == "FGHJKMNQUVXZ"
    assert list(MONTH_CODES.values()) == list(range(1, 13))
    with pytest.raises(TypeError):
        MONTH_CODES["A"] = 13  # type: ignore[index]


def test_collection_protocol(registry: ProductRegistry) -> None:
    """Iteration yields sorted codes; ``in``, ``get`` and ``len`` work in any case."""
    assert list(registry) == sorted(TABLE)
    assert len(registry) == 8
    assert "eurbbl" in registry
    assert "EURBBLM25" not in registry
    assert 5 not in registry
    assert registry.get("ukgb") is registry.products["UKGB"]
    assert registry.get("NOPE") is None
    assert registry.get("ÜKGB") is None
    assert "EURBBL" in repr(registry)


def test_add_and_replace(registry: ProductRegistry) -> None:
    """``add`` registers a new code, refuses a taken one, and replaces it with replace=True."""
    registry.add(BUXL)
    assert registry.resolve("EURBUXZ25", today=TODAY).symbol == "GBX"
    with pytest.raises(ValueError, match="replace=True"):
        registry.add(BUXL)
    monthly = attrs.evolve(BUXL, months="FGHJKMNQUVXZ")
    registry.add(monthly, replace=True)
    assert registry.get("EURBUX") == monthly
    assert registry.resolve("EURBUXF26", today=TODAY).last_trade_date_or_contract_month == "202601"
    with pytest.raises(TypeError, match="Product"):
        registry.add("EURBUX")  # type: ignore[arg-type]


def test_add_refuses_codes_that_read_as_another_code_with_a_suffix(
    registry: ProductRegistry,
) -> None:
    """A code that is another code plus a month suffix is refused, in either order."""
    with pytest.raises(ValueError, match="EURBBLM25"):
        registry.add(attrs.evolve(BUXL, code="EURBBLM25"))
    with pytest.raises(ValueError, match="UKGBZ5"):
        registry.add(attrs.evolve(BUXL, code="UKGBZ5"))
    other = ProductRegistry([attrs.evolve(BUXL, code="ABZ25")], include_defaults=False)
    with pytest.raises(ValueError, match="ABZ25"):
        other.add(attrs.evolve(BUXL, code="AB"))
    assert list(other) == ["ABZ25"]
    assert len(registry) == 8


def test_products_snapshot_is_immutable(registry: ProductRegistry) -> None:
    """``products`` is read-only and a snapshot taken before ``add`` does not change."""
    before = registry.products
    registry.add(BUXL)
    assert "EURBUX" not in before
    assert "EURBUX" in registry.products
    with pytest.raises(TypeError):
        before["X"] = BUXL  # type: ignore[index]


def test_constructor_accepts_products_or_a_mapping() -> None:
    """Products come as an iterable or a code mapping; a given code replaces the built-in."""
    only = ProductRegistry([BUXL], include_defaults=False)
    assert list(only) == ["EURBUX"]
    assert list(ProductRegistry(include_defaults=False)) == []
    fixed = attrs.evolve(DEFAULT_PRODUCTS[0], name="Bund")
    mapped = ProductRegistry({"eurbux": BUXL, fixed.code: fixed})
    assert len(mapped) == 9
    assert mapped.products[fixed.code].name == "Bund"


@pytest.mark.parametrize(
    ("products", "error", "match"),
    [
        ([BUXL, BUXL], ValueError, "twice"),
        ({"OTHER": BUXL}, ValueError, "differs"),
        ([BUXL, "EURBBL"], TypeError, "Product"),
        ([attrs.evolve(BUXL, code="EURBBLH6")], ValueError, "EURBBLH6"),
    ],
)
def test_constructor_rejects_bad_products(
    products: object, error: type[Exception], match: str
) -> None:
    """Duplicate codes, mismatched keys, non-products and suffix clashes are refused."""
    with pytest.raises(error, match=match):
        ProductRegistry(products)  # type: ignore[arg-type]


def test_default_registry_returns_independent_registries() -> None:
    """Each ``default_registry()`` is new: adding to one leaves the next untouched."""
    first = default_registry()
    first.add(BUXL)
    assert "EURBUX" not in default_registry()


def test_concurrent_reads_while_adding() -> None:
    """Readers in other threads always see a consistent registry while products are added."""
    registry = default_registry()
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                codes = list(registry)
                assert codes == sorted(codes)
                assert registry.resolve("EURBBLM25", today=TODAY).symbol == "GBL"
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(4)]
    for thread in readers:
        thread.start()
    try:
        for i in range(200):
            registry.add(attrs.evolve(BUXL, code=f"P{i:03d}"))
    finally:
        stop.set()
        for thread in readers:
            thread.join(10)
    assert not errors
    assert len(registry) == 208


# --- files ---------------------------------------------------------------------------------

DOC_TOML = """
[products.EURBUX]
name = "Euro-Buxl"
symbol = "GBX"
trading_class = "FGBX"
exchange = "EUREX"
currency = "EUR"
multiplier = "1000"
months = "HMUZ"
sec_type = "FUT"

[products.apple]
symbol = "AAPL"
exchange = "SMART"
currency = "usd"
sec_type = "stk"
"""


def test_from_file_reads_toml(tmp_path: Path) -> None:
    """A TOML file adds its products to the built-in ones, normalised like Product does."""
    registry = ProductRegistry.from_file(write(tmp_path, "products.toml", DOC_TOML))
    assert registry.get("EURBUX") == BUXL
    assert registry.get("APPLE") == attrs.evolve(APPLE, name="")
    assert len(registry) == 10


def test_from_file_reads_json(tmp_path: Path) -> None:
    """A JSON file with an int multiplier and without defaults holds just its products."""
    text = json.dumps(
        {
            "products": {
                "EURBUX": {
                    "name": "Euro-Buxl",
                    "symbol": "GBX",
                    "trading_class": "FGBX",
                    "exchange": "EUREX",
                    "currency": "EUR",
                    "multiplier": 1000,
                }
            }
        }
    )
    registry = ProductRegistry.from_file(write(tmp_path, "p.JSON", text), include_defaults=False)
    assert registry.products == {"EURBUX": BUXL}


@pytest.mark.parametrize("name", ["all.toml", "all.json"])
def test_to_file_round_trips(tmp_path: Path, name: str) -> None:
    """Writing a registry and reading the file back gives the same products."""
    registry = default_registry()
    registry.add(BUXL)
    registry.add(APPLE)
    registry.add(attrs.evolve(BUXL, code="UNICODE", name='Bund "Ünïcødé" \\ 😀'))
    path = tmp_path / name
    registry.to_file(path)
    again = ProductRegistry.from_file(path, include_defaults=False)
    assert again.products == registry.products


def test_file_entry_replaces_a_builtin(tmp_path: Path) -> None:
    """A file entry with a built-in code replaces the built-in product."""
    path = write(
        tmp_path,
        "p.toml",
        '[products.ukgb]\nsymbol = "R"\nexchange = "ICEEU"\ncurrency = "GBP"\n'
        'trading_class = "R"\n',
    )
    assert ProductRegistry.from_file(path).resolve("UKGB").trading_class == "R"


VALID_ENTRY = {"symbol": "GBX", "exchange": "EUREX", "currency": "EUR"}


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ({**VALID_ENTRY, "symbl": "GBX"}, "unknown field 'symbl'"),
        ({**VALID_ENTRY, "code": "X"}, "unknown field 'code'"),
        ({"exchange": "EUREX", "currency": "EUR"}, "missing required field 'symbol'"),
        ({"symbol": "GBX", "currency": "EUR"}, "missing required field 'exchange'"),
        ({"symbol": "GBX", "exchange": "EUREX"}, "missing required field 'currency'"),
        ({**VALID_ENTRY, "months": "HMX3"}, "months"),
        ({**VALID_ENTRY, "months": "HHMUZ"}, "months"),
        ({**VALID_ENTRY, "symbol": "GBX€"}, "symbol must be printable ASCII"),
        ({**VALID_ENTRY, "name": "Bund\u0007"}, "name"),
        ({**VALID_ENTRY, "symbol": 5}, "symbol must be a string"),
        ({**VALID_ENTRY, "multiplier": [1000]}, "multiplier"),
        ({**VALID_ENTRY, "currency": "EURO"}, "currency"),
        ({**VALID_ENTRY, "sec_type": "CONTFUT"}, "sec_type"),
        ({**VALID_ENTRY, "sec_type": "STK"}, "months"),
    ],
)
def test_bad_json_entries_name_file_product_and_field(
    tmp_path: Path, entry: dict[str, object], match: str
) -> None:
    """Each invalid entry raises ValueError naming the file, the product and the field."""
    if entry.get("sec_type") == "STK":
        entry = {**entry, "months": "HMUZ"}
    path = write(tmp_path, "bad.json", json.dumps({"products": {"EURBUX": entry}}))
    with pytest.raises(ValueError, match=match) as caught:
        ProductRegistry.from_file(path)
    assert str(caught.value).startswith(f"{path}: product 'EURBUX': ")


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("p.yaml", "products: {}", "unsupported product file extension '.yaml'"),
        ("p.toml", "[products.X", "not a valid TOML product file"),
        ("p.json", "{", "not a valid JSON product file"),
        ("p.json", '{"products": {}, "products": {}}', "'products' appears twice"),
        ("p.json", "[]", "top level"),
        ("p.json", '{"products": {}, "version": 1}', "unknown top-level key 'version'"),
        ("p.json", '{"products": []}', "'products' must be a table"),
        ("p.toml", "", "'products' must be a table"),
        ("p.toml", 'products = {EURBUX = "GBX"}', "product 'EURBUX': must be a table"),
        ("p.toml", "[products.EUR-BUX]\n" + 'symbol = "X"\nexchange = "E"\ncurrency = "EUR"\n',
         "product 'EUR-BUX': code must be 2 to 16"),
        ("p.toml", "[products.EURBBLM25]\n" + 'symbol = "X"\nexchange = "E"\ncurrency = "EUR"\n',
         "'EURBBLM25' reads as product 'EURBBL'"),
        ("p.json", json.dumps({"products": {"EURBUX": VALID_ENTRY, "eurbux": VALID_ENTRY}}),
         "product 'eurbux': the code 'EURBUX' is also given as 'EURBUX'"),
    ],
)  # fmt: skip
def test_bad_files_are_refused_naming_the_file(
    tmp_path: Path, name: str, text: str, match: str
) -> None:
    """A file that is not a valid product file raises ValueError naming the file."""
    path = write(tmp_path, name, text)
    with pytest.raises(ValueError, match=match) as caught:
        ProductRegistry.from_file(path)
    assert str(caught.value).startswith(str(path))


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    """A JSON file that is not UTF-8 raises ValueError naming the file."""
    path = tmp_path / "p.json"
    path.write_bytes(b'{"products": {"\xff": {}}}')
    with pytest.raises(ValueError, match=r"p\.json"):
        ProductRegistry.from_file(path)


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    """A product file that does not exist raises FileNotFoundError."""
    with pytest.raises(FileNotFoundError):
        ProductRegistry.from_file(tmp_path / "absent.toml")


def test_from_env_reads_the_named_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``from_env`` adds the products of the file ``IBDATA_PRODUCTS`` names to the defaults."""
    path = write(tmp_path, "products.toml", DOC_TOML)
    monkeypatch.setenv("IBDATA_PRODUCTS", str(path))
    registry = ProductRegistry.from_env()
    assert "EURBUX" in registry
    assert "EURBBL" in registry
    custom = ProductRegistry.from_env("MY_PRODUCTS", environ={"MY_PRODUCTS": str(path)})
    assert custom.products == registry.products


@pytest.mark.parametrize("value", [None, "", "   "])
def test_from_env_without_a_file_gives_the_defaults(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    """An unset or blank variable gives just the built-in products."""
    if value is None:
        monkeypatch.delenv("IBDATA_PRODUCTS", raising=False)
    else:
        monkeypatch.setenv("IBDATA_PRODUCTS", value)
    assert ProductRegistry.from_env().products == default_registry().products


def test_from_env_with_a_missing_file_raises(tmp_path: Path) -> None:
    """A variable naming a file that does not exist raises FileNotFoundError."""
    with pytest.raises(FileNotFoundError):
        ProductRegistry.from_env(environ={"IBDATA_PRODUCTS": str(tmp_path / "nope.json")})


def test_from_env_with_an_unknown_users_home_raises_value_error() -> None:
    """A path starting with ``~user`` for a user who does not exist raises ValueError naming
    the variable (pathlib raises RuntimeError there)."""
    with pytest.raises(ValueError, match=r"IBDATA_PRODUCTS=.*no home directory for '~nosuchuser"):
        ProductRegistry.from_env(environ={"IBDATA_PRODUCTS": "~nosuchuser-ibdata/p.toml"})


# --- properties ----------------------------------------------------------------------------

_REGISTRY = default_registry()


@given(
    product=st.sampled_from(DEFAULT_PRODUCTS),
    month=st.sampled_from("HMUZ"),
    year=st.integers(2000, 2099),
    two_digits=st.booleans(),
    today=st.dates(dt.date(2005, 1, 1), dt.date(2094, 12, 31)),
    lower=st.booleans(),
)
def test_month_codes_round_trip(
    product: Product, month: str, year: int, two_digits: bool, today: dt.date, lower: bool
) -> None:
    """A product code with a month suffix resolves to that product's contract for the month."""
    if not two_digits:
        # The one-digit form can only name years in [today - 5, today + 4].
        year = today.year - 5 + (year - today.year + 5) % 10
    digits = f"{year % 100:02d}" if two_digits else str(year % 10)
    text = f"{product.code}{month}{digits}"
    spec = _REGISTRY.resolve(text.lower() if lower else text, today=today)
    assert spec.last_trade_date_or_contract_month == f"{year}{MONTH_CODES[month]:02d}"
    assert spec.sec_type is SecType.FUT
    assert (spec.symbol, spec.exchange, spec.trading_class) == (
        product.symbol,
        product.exchange,
        product.trading_class,
    )


_CODE_LIKE = st.builds(
    lambda base, rest: base + rest,
    st.sampled_from([*(p.code for p in DEFAULT_PRODUCTS), "", "A"]),
    st.text(alphabet="FGHJKMNQUVXZABC0123456789é ", max_size=4),
)


def _outcome(call: Callable[[], ContractSpec | None]) -> ContractSpec | Exception | None:
    try:
        return call()
    except (UnknownProductError, ValueError) as exc:
        return exc


@given(text=st.one_of(st.text(max_size=40), _CODE_LIKE), today=st.dates())
def test_arbitrary_text_raises_only_lookup_errors(text: str, today: dt.date) -> None:
    """Resolving any text gives a ContractSpec or UnknownProductError, and nothing else."""
    resolved = _outcome(lambda: _REGISTRY.resolve(text, today=today))
    looked_up = _outcome(lambda: _REGISTRY.lookup(text, today=today))
    as_stock = _outcome(lambda: _REGISTRY.resolve_or_stock(text, today=today))
    if isinstance(resolved, ContractSpec):
        assert looked_up == resolved
        assert as_stock == resolved
    else:
        assert isinstance(resolved, UnknownProductError)
        assert resolved.code == text
        if looked_up is None:
            assert isinstance(as_stock, (ContractSpec, ValueError))
        else:
            assert isinstance(looked_up, UnknownProductError)
            assert str(looked_up) == str(resolved)
            assert isinstance(as_stock, UnknownProductError)
