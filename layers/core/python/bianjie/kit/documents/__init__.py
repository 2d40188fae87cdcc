"""Documents (state) port: get, conditional put, query by index with paging, transactions, TTL.

Adapters: ``memory`` (unit tests), ``dynamodb`` (AWS and the local stack on moto), ``postgres``
(on premises). All three pass ``tests/contract/test_documents_contract.py``.
"""

from bianjie.kit.documents.port import (
    MAX_TRANSACT_OPERATIONS,
    Check,
    Cond,
    ConditionFailed,
    Delete,
    DocumentStore,
    IndexSpec,
    KeyCond,
    Page,
    Put,
    TableNotFound,
    TableSpec,
    TransactionCanceled,
)

__all__ = [
    "MAX_TRANSACT_OPERATIONS",
    "Check",
    "Cond",
    "ConditionFailed",
    "Delete",
    "DocumentStore",
    "IndexSpec",
    "KeyCond",
    "Page",
    "Put",
    "TableNotFound",
    "TableSpec",
    "TransactionCanceled",
]
