"""The PostgreSQL adapter's pool (``open_pool``), against the real server: connections go back to the pool
in the caller's thread, and one left idle is probed before it is handed out again, so a server that
dropped it (a restart, a failover) costs no failed request."""

from __future__ import annotations

import time

import psycopg
from bianjie.kit.documents.postgres import open_pool


def test_an_idle_connection_the_server_dropped_is_replaced_before_use(postgres_dsn: str) -> None:
    pool = open_pool(postgres_dsn, min_size=1, max_size=1, check_after=0.2)
    try:
        pool.wait(10)
        with pool.connection() as conn:
            pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        time.sleep(0.3)  # idle past check_after: the next getconn probes it, finds it dead, replaces it
        with pool.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert conn.execute("SELECT pg_backend_pid()").fetchone()[0] != pid
    finally:
        pool.close()


def test_a_returned_connection_is_back_in_the_pool_at_once(postgres_dsn: str) -> None:
    # with a ``reset`` callback psycopg_pool returns connections through a worker thread, so right after
    # the block none is available yet (0 of 50 when measured); the adapter's pool returns it inline
    pool = open_pool(postgres_dsn, min_size=1, max_size=1, check_after=30)
    try:
        pool.wait(10)
        available = []
        for _ in range(20):
            with pool.connection() as conn:
                conn.execute("SELECT 1")
            available.append(pool.get_stats().get("pool_available", 0))
        assert available == [1] * 20
    finally:
        pool.close()
