"""``Ingest.commit``: a batch's instance and source rows in as few transactions as the limit allows."""

from __future__ import annotations

from typing import Any

from bianjie.film.catalog import Catalog
from bianjie.film.ingest import Ingest, Outcome
from bianjie.kit.documents.memory import MemoryDocumentStore
from bianjie.kit.documents.port import MAX_TRANSACT_OPERATIONS
from bianjie.kit.tables import table_spec


class CountingCatalog(Catalog):
    def __init__(self) -> None:
        super().__init__(MemoryDocumentStore(table_spec("FILM_STUDIES_TABLE", "film")), "film")
        self.transactions: list[int] = []

    def transact(self, operations: Any) -> None:
        self.transactions.append(len(operations))
        super().transact(operations)


def prepared(sop: str, source: str) -> Outcome:
    rows = [
        {"pk": "study#1", "sk": f"inst#2#{sop}", "sop_uid": sop, "source": source},
        {"pk": f"source#{source}", "sk": "source", "sop_uid": sop},
    ]
    return Outcome("ingested", "1", "2", sop_uid=sop, rows=rows)


def ingest(catalog: Catalog) -> Ingest:
    return Ingest(
        objects=None,
        catalog=catalog,
        derived_bucket="d",
        cipher=None,
        blind_index=None,
        audit=None,
        dead_letters=None,  # type: ignore[arg-type]
    )


def test_a_batch_of_ten_is_one_transaction_and_rows_are_written() -> None:
    catalog = CountingCatalog()
    outcomes = [prepared(f"s{n}", f"h{n}") for n in range(10)] + [Outcome("duplicate", "1", "2", sop_uid="s0")]
    ingest(catalog).commit(outcomes)
    assert catalog.transactions == [20]
    assert len(catalog.instances("1", "2")) == 10 and catalog.source("h3")["sop_uid"] == "s3"
    assert all(o.rows == [] for o in outcomes)


def test_transactions_respect_the_limit_and_keep_an_instance_whole() -> None:
    catalog = CountingCatalog()
    ingest(catalog).commit([prepared(f"s{n}", f"h{n}") for n in range(30)])
    per_tx = MAX_TRANSACT_OPERATIONS // 2 * 2
    assert sum(catalog.transactions) == 60 and all(n % 2 == 0 and n <= per_tx for n in catalog.transactions)
    assert len(catalog.instances("1", "2")) == 30


def test_one_instance_from_two_keys_goes_to_two_transactions() -> None:
    catalog = CountingCatalog()
    ingest(catalog).commit([prepared("s0", "h0"), prepared("s1", "h1"), prepared("s0", "h9")])
    assert catalog.transactions == [4, 2]
    assert catalog.source("h0")["sop_uid"] == catalog.source("h9")["sop_uid"] == "s0"


def test_large_instance_rows_split_by_size() -> None:
    """A transaction is capped at 4 MB: instances with large DICOM JSON (enhanced multi-frame) spread out."""
    catalog = CountingCatalog()
    outcomes = [prepared(f"s{n}", f"h{n}") for n in range(6)]
    for o in outcomes:
        o.rows[0]["metadata"] = "x" * 300_000
    ingest(catalog).commit(outcomes)
    assert len(catalog.transactions) >= 2 and sum(catalog.transactions) == 12
    assert len(catalog.instances("1", "2")) == 6
