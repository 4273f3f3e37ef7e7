"""Serving a FastAPI app with uvicorn in a thread, on a free port, for the HTTP tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI


@contextmanager
def serving(
    app: FastAPI, *, timeout: float = 15, **options: Any
) -> Iterator[tuple[httpx.Client, uvicorn.Server]]:
    """Serve ``app`` on a free loopback port (``options`` go to :class:`uvicorn.Config`);
    an HTTP client for it, whose requests time out after ``timeout`` seconds, and the
    server. On exit the client is closed and the server shut down gracefully and waited
    for."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", log_config=None, ws="none", **options
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive(), "uvicorn did not start"
        assert time.monotonic() < deadline, "uvicorn start-up timed out"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=timeout) as http:
            yield http, server
    finally:
        server.should_exit = True
        thread.join(15)
        assert not thread.is_alive(), "uvicorn did not stop"
