"""pytest fixtures for tests that need a real PostgreSQL server (never a mock).

- ``postgres_server`` (session): the server. ``$IBDATA_TEST_POSTGRES``, the admin URL of a
  running server, if set; else a throwaway cluster of this session (tests/pg_cluster.py).
- ``postgres_url`` (function): the URL of a fresh database on it, dropped after the test.
- ``own_postgres`` (function): a private, started ``PostgresCluster`` for tests that stop,
  start or restart the server; closed after the test.

Without PostgreSQL these tests skip, saying how to get it; with ``IBDATA_REQUIRE_POSTGRES=1``
(CI sets it) they fail instead, so CI can never pass by skipping them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NoReturn

import pytest

from tests.pg_cluster import (
    PostgresCluster,
    PostgresUnavailable,
    create_database,
    drop_database,
)

__all__ = ["PostgresServer", "own_postgres", "postgres_server", "postgres_url", "unavailable"]


@dataclass(frozen=True)
class PostgresServer:
    """The session's server: ``url`` is a superuser's URL; ``cluster`` is None unless the
    server is this session's own (then tests may stop and start it, and must start it
    again before they end)."""

    url: str
    cluster: PostgresCluster | None = None


def unavailable(reason: str) -> NoReturn:
    """Skip the test for want of PostgreSQL, or fail it under ``IBDATA_REQUIRE_POSTGRES=1``."""
    if os.environ.get("IBDATA_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"IBDATA_REQUIRE_POSTGRES=1, but {reason}", pytrace=False)
    pytest.skip(reason)


def _require_psycopg() -> None:
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        reason = f"psycopg 3 is not installed ({exc}): pip install -e '.[postgres]'"
    else:
        return
    unavailable(reason)  # outside the except block: no "during handling of" noise


def _new_cluster() -> PostgresCluster:
    try:
        return PostgresCluster()
    except PostgresUnavailable as exc:
        reason = str(exc)
    unavailable(reason)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The PostgreSQL server of the session (see the module's documentation)."""
    _require_psycopg()
    url = os.environ.get("IBDATA_TEST_POSTGRES")
    if url:
        yield PostgresServer(url)
        return
    cluster = _new_cluster()
    try:
        yield PostgresServer(cluster.url, cluster)
    finally:
        cluster.close()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty database, dropped (its sessions cut) after the test."""
    url = create_database(postgres_server.url)
    try:
        yield url
    finally:
        _drop(postgres_server, url)


def _drop(server: PostgresServer, url: str) -> None:
    import psycopg

    try:
        drop_database(server.url, url)
    except psycopg.OperationalError:
        # A test stopped the session's own server and left it down: bring it back for
        # the tests after it, then drop.
        if server.cluster is None or server.cluster.running:
            raise
        server.cluster.start()
        drop_database(server.url, url)


@pytest.fixture
def own_postgres() -> Iterator[PostgresCluster]:
    """A started PostgreSQL cluster of this test alone, closed (files removed) after it."""
    _require_psycopg()
    cluster = _new_cluster()
    try:
        yield cluster
    finally:
        cluster.close()
