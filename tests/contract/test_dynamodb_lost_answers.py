"""The DynamoDB adapter when the SDK retries a write whose first attempt was applied but whose answer was
lost (a read timeout under load): the retry fails its own condition, and the store must report the
write as done, not as a conflict. Specific to the DynamoDB adapter: the other adapters do not retry.
The lost answer is reproduced by telling botocore, through its needs-retry hook, to retry once after
the first attempt succeeded."""

from __future__ import annotations

from typing import Any

import pytest
from bianjie.kit.documents.dynamodb import DynamoDocumentStore
from bianjie.kit.documents.port import Cond, ConditionFailed, Put, TableSpec, TransactionCanceled


class LoseFirstAnswer:
    """Makes botocore retry the named operation once, after its first attempt got through."""

    def __init__(self, client: Any, operation: str) -> None:
        self.armed = False
        client.meta.events.register_first(f"needs-retry.dynamodb.{operation}", self)

    def __call__(self, attempts: int, **kwargs: Any) -> float | None:
        if self.armed and attempts == 1:
            self.armed = False
            return 0.0  # retry now
        return None


@pytest.fixture
def store(moto_dynamodb: Any) -> DynamoDocumentStore:
    docs = DynamoDocumentStore(moto_dynamodb)
    docs.ensure_table(TableSpec(name="lost_answers", partition_key="pk", key_types={"pk": "S"}))
    return docs


def test_a_conditional_put_whose_answer_was_lost_is_reported_done(
    moto_dynamodb: Any, store: DynamoDocumentStore
) -> None:
    lose = LoseFirstAnswer(moto_dynamodb, "PutItem")
    lose.armed = True
    store.put("lost_answers", {"pk": "nonce-1", "claim": "mine"}, condition=Cond.absent())
    assert not lose.armed  # the retry happened, and its condition failed against our own write
    assert store.get("lost_answers", {"pk": "nonce-1"}) == {"pk": "nonce-1", "claim": "mine"}


def test_a_retried_put_that_meets_another_write_still_fails(moto_dynamodb: Any, store: DynamoDocumentStore) -> None:
    store.put("lost_answers", {"pk": "nonce-2", "claim": "theirs"})
    lose = LoseFirstAnswer(moto_dynamodb, "PutItem")
    lose.armed = True
    with pytest.raises(ConditionFailed):
        store.put("lost_answers", {"pk": "nonce-2", "claim": "mine"}, condition=Cond.absent())
    assert store.get("lost_answers", {"pk": "nonce-2"}) == {"pk": "nonce-2", "claim": "theirs"}


def test_a_versioned_replace_whose_answer_was_lost_is_reported_done(
    moto_dynamodb: Any, store: DynamoDocumentStore
) -> None:
    store.put("lost_answers", {"pk": "rx-1", "version": 1, "status": "valid"})
    lose = LoseFirstAnswer(moto_dynamodb, "PutItem")
    lose.armed = True
    store.put("lost_answers", {"pk": "rx-1", "version": 2, "status": "reviewed"}, condition=Cond.eq("version", 1))
    assert not lose.armed
    assert store.get("lost_answers", {"pk": "rx-1"}) == {"pk": "rx-1", "version": 2, "status": "reviewed"}


def test_a_transaction_whose_answer_was_lost_is_reported_done(moto_dynamodb: Any, store: DynamoDocumentStore) -> None:
    lose = LoseFirstAnswer(moto_dynamodb, "TransactWriteItems")
    lose.armed = True
    store.transact(
        [
            Put("lost_answers", {"pk": "rec-1", "n": 1}, Cond.absent()),
            Put("lost_answers", {"pk": "head-1", "seq": 1}, Cond.absent()),
        ]
    )
    assert not lose.armed
    assert store.get("lost_answers", {"pk": "head-1"}) == {"pk": "head-1", "seq": 1}


def test_a_retried_transaction_that_meets_another_write_still_fails(
    moto_dynamodb: Any, store: DynamoDocumentStore
) -> None:
    store.put("lost_answers", {"pk": "head-2", "seq": 7})
    lose = LoseFirstAnswer(moto_dynamodb, "TransactWriteItems")
    lose.armed = True
    with pytest.raises(TransactionCanceled):
        store.transact(
            [
                Put("lost_answers", {"pk": "rec-2", "n": 1}, Cond.absent()),
                Put("lost_answers", {"pk": "head-2", "seq": 1}, Cond.absent()),
            ]
        )
    assert store.get("lost_answers", {"pk": "rec-2"}) is None


def test_a_conditional_delete_whose_answer_was_lost_is_reported_done(
    moto_dynamodb: Any, store: DynamoDocumentStore
) -> None:
    store.put("lost_answers", {"pk": "claim-1", "owner": "me"})
    lose = LoseFirstAnswer(moto_dynamodb, "DeleteItem")
    lose.armed = True
    store.delete("lost_answers", {"pk": "claim-1"}, condition=Cond.eq("owner", "me"))
    assert not lose.armed
    assert store.get("lost_answers", {"pk": "claim-1"}) is None


def test_a_retried_delete_that_meets_another_owner_still_fails(moto_dynamodb: Any, store: DynamoDocumentStore) -> None:
    store.put("lost_answers", {"pk": "claim-2", "owner": "them"})
    lose = LoseFirstAnswer(moto_dynamodb, "DeleteItem")
    lose.armed = True
    with pytest.raises(ConditionFailed):
        store.delete("lost_answers", {"pk": "claim-2"}, condition=Cond.eq("owner", "me"))
    assert store.get("lost_answers", {"pk": "claim-2"}) == {"pk": "claim-2", "owner": "them"}
