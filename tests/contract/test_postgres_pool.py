"""The PostgreSQL adapter's pool (``open_pool``), against the real server: connections go back to the pool
in the caller's thread, and one left idle is probed before it is handed out again, so a server that
dropped it (a restart, a failover) costs no failed request."""

from __future__ import annotations

import contextlib
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


def test_a_server_that_cannot_be_reached_is_store_unavailable_not_a_500(postgres_dsn: str) -> None:
    """No server at the address (PostgreSQL stopped): every call is ``StoreUnavailable`` (503
    ``STORE_UNAVAILABLE``, Retry-After) once the pool's timeout passes, never psycopg's own error."""
    from bianjie.kit.documents.port import StoreUnavailable
    from bianjie.kit.documents.postgres import PostgresDocumentStore
    from bianjie_dev.runtime.child import free_port
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(postgres_dsn)
    nowhere = make_conninfo(**{**params, "port": str(free_port()), "connect_timeout": "1"})
    pool = open_pool(nowhere, min_size=1, max_size=1, timeout=1.0)
    store = PostgresDocumentStore(pool)
    try:
        began = time.monotonic()
        try:
            store.get("anything", {"pk": "x"})
        except StoreUnavailable as exc:
            assert exc.status == 503 and exc.code == "STORE_UNAVAILABLE"
            assert exc.headers == {"Retry-After": "5"}
            assert exc.body("r1")["error"]["code"] == "STORE_UNAVAILABLE"
        else:
            raise AssertionError("a read with no server answered")
        assert time.monotonic() - began < 10  # the caller is answered, not held
        # the pool timed out: for the next second every call is refused at once, none queues behind it
        began = time.monotonic()
        for _ in range(20):
            with contextlib.suppress(StoreUnavailable):
                store.get("anything", {"pk": "x"})
        assert time.monotonic() - began < 0.5
    finally:
        pool.close()


def test_connections_cut_by_a_restart_are_store_unavailable_once_then_replaced(postgres_dsn: str) -> None:
    """A server restart cuts every pooled connection (``pg_ctl stop -m fast``): a request on a cut
    connection is ``StoreUnavailable`` (its caller retries), and the pool replaces the connection, so
    the next request works without any restart of ours."""
    from bianjie.kit.documents.port import KeyCond, StoreUnavailable, TableSpec
    from bianjie.kit.documents.postgres import PostgresDocumentStore

    pool = open_pool(postgres_dsn, min_size=1, max_size=1, check_after=3600)  # no probe: the cut is seen
    store = PostgresDocumentStore(pool)
    try:
        store.ensure_table(TableSpec("outage_t", "pk"))
        store.put("outage_t", {"pk": "a", "n": 1})
        with pool.connection() as conn:
            pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        time.sleep(0.2)
        try:
            store.get("outage_t", {"pk": "a"})
        except StoreUnavailable:
            pass
        else:
            raise AssertionError("a read on a terminated connection answered")
        assert store.get("outage_t", {"pk": "a"}) == {"pk": "a", "n": 1}
        assert [i["pk"] for i in store.query("outage_t", KeyCond.of("pk", "a")).items] == ["a"]
    finally:
        pool.close()
