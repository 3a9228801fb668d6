"""A database of its own for each benchmark or load test run."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit


class FreshDatabase:
    """An empty database for one run: a new PostgreSQL database, or None for SQLite."""

    def __init__(self, url: str | None):
        self.url, self.name = url, f"bench_{uuid.uuid4().hex[:10]}"

    def __enter__(self) -> str | None:
        if not self.url:
            return None
        import psycopg

        with psycopg.connect(self._admin(), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{self.name}"')
        return urlunsplit(urlsplit(self.url)._replace(path=f"/{self.name}"))

    def __exit__(self, *exc_info: object) -> None:
        if self.url:
            import psycopg

            with psycopg.connect(self._admin(), autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def _admin(self) -> str:
        return urlunsplit(urlsplit(self.url)._replace(path="/postgres"))
