"""A TWS / IB Gateway simulator that speaks the real TWS API socket protocol.

Official ``ibapi``, ``ib_async`` and ibdata's own client connect to it over TCP exactly as
they would to TWS, so code can be run and tested with no IB account:

>>> import ibdata
>>> from ibdata.sim import Simulator
>>> with Simulator() as sim:  # a free port on 127.0.0.1: point any TWS API client there
...     with ibdata.Client(port=sim.port) as ib:
...         print(ib.get_contract_details("AAPL")[0].contract.con_id)
...     print(sim.stats.order_messages)  # what the client sent is recorded
265598
0

The simulator serves contract details and historical bars for a catalog of instruments
(the US stocks, ETFs, indices, currency pairs and CME Group, Eurex and ICE futures chains
of public IB examples, with IB's real conIds) from a deterministic
bar generator, enforces IB's validation and pacing rules with TWS's own error codes and
texts, and offers faults (drops, deafness, latency, injected errors, outages, raw frames,
restarts) and a record of every message received. It never imports ``ibapi``.
"""

from ibdata.pacing import PacingRules
from ibdata.sim._catalog import Catalog, ExpiryRule, FutureProduct
from ibdata.sim._clock import Clock, FixedClock, ScaledClock, SystemClock
from ibdata.sim._model import ContractQuery, Session, SessionTemplate, SimContract, SimError
from ibdata.sim._observe import Received, ReceivedLog, SimStats
from ibdata.sim._server import Simulator

__all__ = [
    "Catalog",
    "Clock",
    "ContractQuery",
    "ExpiryRule",
    "FixedClock",
    "FutureProduct",
    "PacingRules",
    "Received",
    "ReceivedLog",
    "ScaledClock",
    "Session",
    "SessionTemplate",
    "SimContract",
    "SimError",
    "SimStats",
    "Simulator",
    "SystemClock",
]
