"""pytest's root configuration: the PostgreSQL fixtures (tests/pg_fixtures.py) for every
test. Plugins may only be named here, at the root."""

pytest_plugins = ["tests.pg_fixtures"]
