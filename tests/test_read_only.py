"""The read-only guarantee: ibdata never sends an order message, and the suite checks it.

``tests/conftest.py`` tracks every :class:`~ibdata.sim.Simulator` started in the test
process and fails any test during which one of them received placeOrder, cancelOrder,
reqGlobalCancel or exerciseOptions. These tests prove that the guard catches such a message
and that ibdata's source has no path that could send one.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
from ibapi.client import EClient

from ibdata import Client
from ibdata.sim import Simulator
from tests.conftest import ORDER_MESSAGES, order_messages
from tests.sim.raw import RawClient

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src" / "ibdata"

#: The EClient methods ibdata may call: the session and the read-only data requests.
READ_ONLY_CALLS = {
    "cancelHeadTimeStamp",
    "cancelHistoricalData",
    "connect",
    "disconnect",
    "reqContractDetails",
    "reqCurrentTime",  # TWS's clock, when the login zone needs it
    "reqHeadTimeStamp",
    "reqHistoricalData",
    "run",  # uvicorn's Server.run shares the name of EClient's (read-only) message loop
    "serverVersion",
    "setConnState",
    "startApi",
}

#: ibapi's names for the order messages: EClient's methods and its ``OUT`` message ids.
ORDER_NAMES = frozenset(ORDER_MESSAGES.values()) | {
    "PLACE_ORDER",
    "CANCEL_ORDER",
    "REQ_GLOBAL_CANCEL",
    "EXERCISE_OPTIONS",
}

ECLIENT_METHODS = frozenset(
    name for name in dir(EClient) if not name.startswith("_") and callable(getattr(EClient, name))
)


def _send_every_order_message(port: int) -> None:
    with RawClient(port) as raw:
        raw.connect_api(77)
        raw.send(3, 45, 1, 0, "AAPL", "STK")  # placeOrder
        raw.send(4, 1, 1)  # cancelOrder
        raw.send(58, 1)  # reqGlobalCancel
        raw.send(21, 2, 9, 0, "AAPL", "OPT")  # exerciseOptions
        raw.send(49, 1)  # reqCurrentTime: its answer proves the four were read first
        assert raw.read_until(lambda f: f[0] == "49")


@pytest.mark.sends_orders
def test_guard_reports_every_order_message(sim_factory: Callable[..., Simulator]) -> None:
    """The guard's check names each order message a simulator received, and still counts
    them when the received log has been cleared."""
    quiet, target = sim_factory(), sim_factory()
    with Client(quiet.host, quiet.port, timeout=10) as ib:
        assert ib.get_historical_bars("AAPL")
    assert order_messages(quiet) == []
    _send_every_order_message(target.port)
    found = order_messages(target)
    assert [text.split()[0] for text in found] == [
        "placeOrder",
        "cancelOrder",
        "reqGlobalCancel",
        "exerciseOptions",
    ]
    assert all("from client 77" in text for text in found)
    target.received.clear()
    assert order_messages(target) == ["4 more counted in stats.order_messages"]


INNER_TESTS = """
import socket
import struct

import pytest

from ibdata import Client
from ibdata.sim import Simulator


def _frame(*fields):
    payload = b"".join(str(f).encode() + b"\\0" for f in fields)
    return struct.pack(">I", len(payload)) + payload


def _place_order(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"API\\0" + struct.pack(">I", 9) + b"v100..178")
        sock.sendall(_frame(71, 2, 5, "") + _frame(3, 1, 0, "AAPL", "STK") + _frame(49, 1))
        data, fields = b"", [b""]
        while fields[0] != b"49":  # the current time's answer: everything before was read
            while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
                chunk = sock.recv(65536)
                assert chunk, "the simulator closed the connection"
                data += chunk
            size = struct.unpack(">I", data[:4])[0]
            fields, data = data[4 : 4 + size].split(b"\\0"), data[4 + size :]


def test_sends_an_order_to_a_simulator_made_directly():
    with Simulator() as sim:
        _place_order(sim.port)


def test_sends_an_order_through_the_fixture(sim):
    _place_order(sim.port)


@pytest.mark.sends_orders
def test_sends_an_order_on_purpose(sim):
    _place_order(sim.port)


def test_reads_data_only(sim):
    with Client(sim.host, sim.port, timeout=10) as ib:
        assert ib.get_historical_bars("AAPL")
        assert ib.get_contract_details("EURBBL")
"""


def test_guard_fails_only_the_test_that_sent_an_order(tmp_path: Path) -> None:
    """Run in a pytest of its own, the guard errors the tests whose simulator (fixture or
    constructed directly) received an order, and passes the exempt and read-only ones."""
    (tmp_path / "conftest.py").write_text((TESTS / "conftest.py").read_text())
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    report = tmp_path / "report.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    pytest_args = ["-p", "no:cacheprovider", f"--junitxml={report}", "-c", os.devnull]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *pytest_args, "--rootdir", str(tmp_path), str(tmp_path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    outcomes: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = case.attrib["name"]
        failed = [child for child in case if child.tag in ("error", "failure")]
        message = failed[0].attrib.get("message", "") if failed else ""
        outcomes[name] = (
            "guard" if "order messages reached a simulator" in message else (message or "passed")
        )
    assert outcomes == {
        "test_sends_an_order_to_a_simulator_made_directly": "guard",
        "test_sends_an_order_through_the_fixture": "guard",
        "test_sends_an_order_on_purpose": "passed",
        "test_reads_data_only": "passed",
    }, run.stdout + run.stderr


def order_references(source: str) -> set[str]:
    """The order-message names ``source`` refers to: as attributes, names or strings."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            name = node.attr
        elif isinstance(node, ast.Name):
            name = node.id
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            name = node.value
        else:
            continue
        if name in ORDER_NAMES:
            found.add(name)
    return found


def eclient_calls(source: str) -> set[str]:
    """The EClient method names ``source`` uses as attributes (``client.reqIds``)."""
    return {
        node.attr
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and node.attr in ECLIENT_METHODS
    }


def _library_sources() -> dict[str, str]:
    """Every module of ibdata but the simulator (a server, which names orders to catch them)."""
    files = [p for p in sorted(SRC.rglob("*.py")) if "sim" not in p.relative_to(SRC).parts]
    assert len(files) > 15
    return {str(p.relative_to(SRC)): p.read_text(encoding="utf-8") for p in files}


def test_the_source_scan_finds_order_calls() -> None:
    """The scan finds an order call written as a method, through getattr, or by message id."""
    assert order_references("client.placeOrder(1, contract, order)") == {"placeOrder"}
    assert order_references("getattr(client, 'reqGlobalCancel')()") == {"reqGlobalCancel"}
    assert order_references("send(OUT.EXERCISE_OPTIONS)") == {"EXERCISE_OPTIONS"}
    assert order_references("client.reqHistoricalData(1)") == set()
    assert eclient_calls("c.reqHistoricalData(1); c.reqIds(1); c.request(2)") == {
        "reqHistoricalData",
        "reqIds",
    }


def test_ibdata_has_no_path_that_sends_an_order() -> None:
    """No module of ibdata names an order method or message, and the only EClient methods
    it uses are the session's and the read-only data requests."""
    sources = _library_sources()
    orders = {path: order_references(text) for path, text in sources.items()}
    assert {path: names for path, names in orders.items() if names} == {}
    used = set().union(*(eclient_calls(text) for text in sources.values()))
    assert used <= READ_ONLY_CALLS, sorted(used - READ_ONLY_CALLS)
    assert {"reqHistoricalData", "reqContractDetails", "reqHeadTimeStamp"} <= used
