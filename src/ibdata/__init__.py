"""ibdata: historical bars and contract data from Interactive Brokers.

A typed, blocking, thread-safe client on IB's official ``ibapi``::

    import ibdata

    with ibdata.Client("127.0.0.1", 7497) as ib:
        bars = ib.get_historical_bars("AAPL", duration="1 W", bar_size="1 day")

The gateway simulator lives in :mod:`ibdata.sim` and is imported only on demand.
"""

from ibdata import _ibapi  # noqa: F401  # first: a clear ImportError without ibapi
from ibdata._client import Client
from ibdata._ibapi import IbapiRelease
from ibdata._ibapi import release as ibapi_release
from ibdata._progress import tqdm_progress
from ibdata._stream import BarStream, PartialBar, StreamEvent
from ibdata._version import __version__
from ibdata.cache import BarCache, CacheWarning
from ibdata.exceptions import (
    AmbiguousContractError,
    ConnectError,
    ConnectionLostError,
    ConnectTimeoutError,
    ContractNotFoundError,
    IBDataError,
    InvalidRequestError,
    NoDataError,
    NotConnectedError,
    PacingViolationError,
    PermissionDeniedError,
    RangeTooLargeError,
    RequestError,
    RequestTimeoutError,
    SessionError,
    UnknownProductError,
)
from ibdata.models import (
    Bar,
    Bars,
    BarSize,
    ConnectivityEvent,
    Contract,
    ContractDetails,
    ContractSpec,
    DownloadPlan,
    FarmState,
    Health,
    LoginTimeZone,
    SecType,
    TradingSession,
    WhatToShow,
)
from ibdata.pacing import PacingRules
from ibdata.registry import ContractMonth, Product, ProductRegistry, default_registry

__all__ = [
    "AmbiguousContractError",
    "Bar",
    "BarCache",
    "BarSize",
    "BarStream",
    "Bars",
    "CacheWarning",
    "Client",
    "ConnectError",
    "ConnectTimeoutError",
    "ConnectionLostError",
    "ConnectivityEvent",
    "Contract",
    "ContractDetails",
    "ContractMonth",
    "ContractNotFoundError",
    "ContractSpec",
    "DownloadPlan",
    "FarmState",
    "Health",
    "IBDataError",
    "IbapiRelease",
    "InvalidRequestError",
    "LoginTimeZone",
    "NoDataError",
    "NotConnectedError",
    "PacingRules",
    "PacingViolationError",
    "PartialBar",
    "PermissionDeniedError",
    "Product",
    "ProductRegistry",
    "RangeTooLargeError",
    "RequestError",
    "RequestTimeoutError",
    "SecType",
    "SessionError",
    "StreamEvent",
    "TradingSession",
    "UnknownProductError",
    "WhatToShow",
    "__version__",
    "default_registry",
    "ibapi_release",
    "tqdm_progress",
]
