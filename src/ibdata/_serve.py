"""``ibdata serve``: the REST adapter (:mod:`ibdata.http`) under uvicorn.

Configured by options, else by the older HTTP server's variables: ``IB_HOST``, ``IB_PORT``
and ``IB_CLIENT_ID`` for TWS, ``IB_SERVER_PORT`` for the HTTP port, and
``IBDATA_API_TOKEN`` for the bearer token; ``IBDATA_CACHE`` (or ``--cache``) names a bar
cache shared by every request. ``--simulate`` starts the gateway simulator in
the same process and serves its data. SIGINT or SIGTERM stop it gracefully: requests in
flight finish (up to 10 s), then the client and the simulator are closed.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import socket
import sys
import threading
from types import FrameType
from typing import Any

#: Seconds uvicorn waits for requests in flight at shutdown.
GRACEFUL_SHUTDOWN = 10

#: The default bound on the IB requests of one range download through the REST adapter: a
#: year of 1-minute bars fits (365 requests); the worst case, bars of 30 seconds or less
#: paced at 60 requests per 10 minutes, holds a worker for about an hour.
DEFAULT_MAX_RANGE_REQUESTS = 400


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` subcommand's options to ``parser``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=None, help="HTTP port (default $IB_SERVER_PORT or 3001)"
    )
    parser.add_argument(
        "--simulate",
        action="store_true",
        help="start the gateway simulator in this process and serve its data",
    )
    parser.add_argument("--ib-host", default=None, help="TWS host (default $IB_HOST or 127.0.0.1)")
    parser.add_argument(
        "--ib-port", type=int, default=None, help="TWS API port (default $IB_PORT or 7497)"
    )
    parser.add_argument(
        "--client-id",
        type=int,
        default=None,
        help="API client id (default $IB_CLIENT_ID, else a random one)",
    )
    parser.add_argument(
        "--cache",
        default=None,
        metavar="STORE",
        help="bar store shared by every request's range downloads, a path or a "
        "postgresql:// URL (default $IBDATA_CACHE; no cache when neither is set)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds each request to IB may take (default 60)",
    )
    parser.add_argument(
        "--max-range-requests",
        type=int,
        default=DEFAULT_MAX_RANGE_REQUESTS,
        metavar="N",
        help="most IB requests one start/end range may need; larger ranges get a 400 "
        f"(default {DEFAULT_MAX_RANGE_REQUESTS}; 0 = no limit)",
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)  # connections wait in the backlog until uvicorn has started
    except OSError:
        sock.close()
        raise
    return sock


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; returns the exit status (2 for bad options)."""
    try:
        import uvicorn

        from ibdata.http import create_app
    except ImportError as exc:
        print(
            f"ibdata serve needs the http extra ({exc}): pip install 'ibdata[http]'",
            file=sys.stderr,
        )
        return 2
    from ibdata import Client

    raw = os.environ.get("IB_SERVER_PORT", "").strip() or "3001"
    if args.port is None and not raw.isdigit():
        print(f"ibdata serve: IB_SERVER_PORT must be a port number, got {raw!r}", file=sys.stderr)
        return 2
    port = args.port if args.port is not None else int(raw)
    try:
        sock = _listen(args.host, port)
    except (OSError, OverflowError) as exc:
        print(f"ibdata serve: cannot listen on {args.host}:{port} ({exc})", file=sys.stderr)
        return 2
    if not _is_loopback(args.host) and not os.environ.get("IBDATA_API_TOKEN"):
        print(
            f"\n*** WARNING: listening on {args.host} with no IBDATA_API_TOKEN set: anyone who"
            " can reach this address can use your IB session. Set IBDATA_API_TOKEN, or bind"
            " to 127.0.0.1. ***\n",
            file=sys.stderr,
            flush=True,
        )
    if not getattr(args, "verbose", False):
        logging.getLogger("ibapi").setLevel(logging.WARNING)  # it logs every message

    if args.max_range_requests < 0:
        print("ibdata serve: --max-range-requests must be 0 or more", file=sys.stderr)
        sock.close()
        return 2
    sim: Any = None
    options: dict[str, Any] = {
        "client_id": args.client_id,
        "cache": args.cache or os.environ.get("IBDATA_CACHE") or None,
        "timeout": args.timeout,
    }
    try:
        if args.simulate:
            from ibdata.sim import Simulator

            sim = Simulator(port=0).start()
            options |= {"host": sim.host, "port": sim.port}
            print(f"simulator listening on {sim.host}:{sim.port}", flush=True)
        else:
            options |= {"host": args.ib_host, "port": args.ib_port}
        client = Client.from_env(**{k: v for k, v in options.items() if v is not None})
    except (ValueError, OSError) as exc:
        sock.close()
        if sim is not None:
            sim.stop()
        print(f"ibdata serve: {exc}", file=sys.stderr)
        return 2

    app = create_app(client, manage_client=True, max_range_requests=args.max_range_requests or None)
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,  # the app writes its own JSON access log
        ws="none",
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
    )
    close_streams = app.close_streams  # type: ignore[attr-defined]  # create_app's app

    class _Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # Event streams never end by themselves: end them first, so the graceful
            # shutdown waits only for ordinary requests.
            close_streams()
            await super().shutdown(sockets)

    server = _Server(config)

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    previous = {}
    if threading.current_thread() is threading.main_thread():
        # uvicorn installs its own handlers while serving; these cover start-up and take the
        # signal uvicorn raises again after its shutdown.
        previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    host, bound = sock.getsockname()[:2]
    url = f"http://[{host}]:{bound}" if ":" in host else f"http://{host}:{bound}"
    print(f"ibdata REST adapter on {url} (TWS {client.host}:{client.port}; docs at {url}/docs)")
    print("press Ctrl+C to stop", flush=True)
    status = 0
    try:
        server.run(sockets=[sock])
    except SystemExit as exc:  # uvicorn exits when the app's start-up fails
        status = exc.code if isinstance(exc.code, int) else 1
    finally:
        client.close()
        if sim is not None:
            sim.stop()
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("ibdata serve stopped", flush=True)
    return status
