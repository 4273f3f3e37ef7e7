"""Use the REST adapter (``ibdata serve``) from another program, with the standard library only.

Asks the server for its health, a symbol's contract details and its daily bars, and prints
them. Any program in any language can do the same over HTTP; this one needs nothing but
Python. The server's address comes from ``IBDATA_URL`` (default http://127.0.0.1:3001) and
its bearer token, if it has one, from ``IBDATA_API_TOKEN`` (the variable ``ibdata serve``
reads). An error status is printed as one line and the script exits with status 1.

Against the simulator, with the REST adapter serving its built-in simulator in another
terminal (``ibdata serve --simulate``)::

    python examples/rest_client.py AAPL

Against TWS or IB Gateway with the API enabled, start ``ibdata serve --ib-port 7497`` (TWS
paper; 7496 live, IB Gateway 4002 / 4001) and run the same command.
"""

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

BASE_URL = os.environ.get("IBDATA_URL", "http://127.0.0.1:3001").rstrip("/")
TOKEN = os.environ.get("IBDATA_API_TOKEN", "")


class APIError(Exception):
    """The server answered with an error status, or could not be reached."""


def get(path: str, **params: str) -> Any:
    """GET ``path`` with query ``params`` and return the decoded JSON body.

    Retries twice when IB's pacing rules refused the request (429), after the server's
    ``Retry-After``. Raises APIError for any other error status.
    """
    url = f"{BASE_URL}{path}?{urllib.parse.urlencode(params)}"
    headers = {"Accept": "application/json"}
    if TOKEN:
        headers["Authorization"] = f"Bearer {TOKEN}"
    retries = 2
    while True:
        request = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            if exc.code == 429 and retries:
                retries -= 1
                time.sleep(float(exc.headers.get("Retry-After", "15")))
                continue
            try:  # ibdata's error body: {"error": message, "code": IB's code or null, ...}
                message = json.load(exc)["error"]
            except (ValueError, KeyError, TypeError):
                message = exc.reason
            raise APIError(f"HTTP {exc.code} from {path}: {message}") from None
        except urllib.error.URLError as exc:
            raise APIError(f"cannot reach {BASE_URL}: {exc.reason}") from None


def main() -> None:
    parser = argparse.ArgumentParser(description="Bars and contract details over REST.")
    parser.add_argument("symbol", nargs="?", default="AAPL", help="a symbol or product code")
    parser.add_argument("--duration", default="1 M", help="IB's duration (1 M)")
    args = parser.parse_args()
    symbol = urllib.parse.quote(args.symbol, safe="")

    try:
        health = get("/ib/health")
        print(f"server {BASE_URL}: session {health['status']}, client id {health['client_id']}")
        for contract in get(f"/ib/contract-details/{symbol}")["contracts"]:
            print(
                f"{contract['longName']}: conId {contract['conId']}, {contract['secType']} "
                f"{contract['localSymbol']} on {contract['exchange']} in {contract['currency']}"
            )
        bars = get(f"/ib/market-data/{symbol}", duration=args.duration, barSize="1 day")
    except APIError as exc:
        sys.exit(f"error: {exc}")

    print(f"{bars['count']} daily bars of {bars['symbol']} in {bars['durationMs']} ms")
    print(f"{'date':<10} {'open':>10} {'high':>10} {'low':>10} {'close':>10}")
    for bar in bars["data"][-5:]:
        print(
            f"{bar['time']:<10} {bar['open']:>10} {bar['high']:>10} {bar['low']:>10} "
            f"{bar['close']:>10}"
        )


if __name__ == "__main__":
    main()
