"""Collaboration scope (协作接入机构的协作功能范围认证): agreements between institutions and doctors'
credentials, stored in ConsultScopeTable (pk, sk)::

    pk "agreements"            sk <agreement_id>            the agreement (admin list)
    pk "party#<org>"           sk <agreement_id>            one row per party: which agreements name it
    pk "org#<org>"             sk "doctor#<doctor_code>"    the doctor's credential

An agreement and its party rows change in one transaction, conditioned on the agreement's version.

The rule (``Scope``): a doctor may be invited to, or see, a case of an applicant's institution when the
doctor's credential is active, and either both work at the same institution (or the doctor filed
多点执业 there), or an agreement naming both institutions is active today, covers the MDT service and
(when it lists departments) the doctor's department.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from bianjie.kit.documents.port import Cond, Delete, DocumentStore, KeyCond, Put, TransactionCanceled
from bianjie.kit.errors import Conflict, NotFound
from bianjie.kit.timefmt import BEIJING

SAME_ORG = "same-institution"


def today(now: float) -> date:
    return datetime.fromtimestamp(now, BEIJING).date()


def agreement_active(item: dict[str, Any], now: float) -> bool:
    day = today(now).isoformat()
    return item.get("status") == "active" and item["valid_from"] <= day <= item["valid_to"]


def covers(item: dict[str, Any], now: float, a: str, b: str, department: str, service: str = "mdt") -> bool:
    departments = item.get("departments") or []
    return (
        agreement_active(item, now)
        and a in item["parties"]
        and b in item["parties"]
        and service in item["services"]
        and (not departments or department in departments)
    )


@dataclass
class ScopeRepository:
    store: DocumentStore
    table: str

    # -- agreements
    def agreement(self, agreement_id: str) -> dict[str, Any] | None:
        return self.store.get(self.table, {"pk": "agreements", "sk": agreement_id})

    def agreements(self) -> list[dict[str, Any]]:
        return _all(lambda c: self.store.query(self.table, KeyCond.of("pk", "agreements"), cursor=c))

    def agreements_of(self, org: str) -> list[dict[str, Any]]:
        rows = _all(lambda c: self.store.query(self.table, KeyCond.of("pk", f"party#{org}"), cursor=c))
        found = (self.agreement(r["sk"]) for r in rows)
        return [a for a in found if a is not None]

    def save_agreement(self, item: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
        new = {**item, "pk": "agreements", "version": int(previous["version"]) + 1 if previous else 1}
        cond = Cond.eq("version", previous["version"]) if previous else Cond.absent()
        ops: list[Any] = [Put(self.table, new, cond)]
        for party in new["parties"]:
            ops.append(Put(self.table, {"pk": f"party#{party}", "sk": new["sk"]}))

        for gone in set(previous["parties"] if previous else ()) - set(new["parties"]):
            ops.append(Delete(self.table, {"pk": f"party#{gone}", "sk": new["sk"]}))
        try:
            self.store.transact(ops)
        except TransactionCanceled as exc:
            if exc.reasons and exc.reasons[0]:
                raise Conflict("协议已被他人修改，请刷新后重试", code="AGREEMENT_CHANGED") from exc
            raise
        return new

    @staticmethod
    def new_agreement_id() -> str:
        return "agr-" + secrets.token_hex(6)

    # -- credentials
    def credential(self, org: str, doctor_code: str) -> dict[str, Any] | None:
        return self.store.get(self.table, {"pk": f"org#{org}", "sk": f"doctor#{doctor_code}"})

    def credentials(self, org: str) -> list[dict[str, Any]]:
        return _all(
            lambda c: self.store.query(
                self.table, KeyCond.of("pk", f"org#{org}").begins_with("sk", "doctor#"), cursor=c
            )
        )

    def save_credential(self, item: dict[str, Any]) -> None:
        self.store.put(self.table, {**item, "pk": f"org#{item['org']}", "sk": f"doctor#{item['doctor_code']}"})


def _all(page: Callable[[str | None], Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        result = page(cursor)
        out.extend(result.items)
        cursor = result.cursor
        if cursor is None:
            return out


@dataclass
class Scope:
    repo: ScopeRepository

    def credential(self, org: str, code: str) -> dict[str, Any] | None:
        return self.repo.credential(org, code)

    def active_credential(self, org: str | None, code: str) -> dict[str, Any] | None:
        if not org:
            return None
        cred = self.repo.credential(org, code)
        return cred if cred is not None and cred.get("status") == "active" else None

    def via(self, applicant_org: str, cred: dict[str, Any], now: float) -> str | None:
        """The reason ``cred``'s doctor may consult on a case of ``applicant_org``: ``SAME_ORG``, or the id
        of an agreement covering it; None when out of scope."""
        if cred.get("status") != "active":
            return None
        if cred["org"] == applicant_org or applicant_org in (cred.get("multi_site") or []):
            return SAME_ORG
        for agreement in self.repo.agreements_of(applicant_org):
            if covers(agreement, now, applicant_org, cred["org"], cred["department"]):
                return str(agreement["sk"])
        return None

    def still_covers(self, via: str, applicant_org: str, cred: dict[str, Any], now: float) -> bool:
        """Whether the reason recorded at invitation still holds (or another one does)."""
        if cred.get("status") != "active":
            return False
        if via == SAME_ORG:
            return True
        agreement = self.repo.agreement(via)
        if agreement is not None and covers(agreement, now, applicant_org, cred["org"], cred["department"]):
            return True
        return self.via(applicant_org, cred, now) is not None

    def colleagues(self, applicant_org: str, now: float) -> list[tuple[dict[str, Any], str]]:
        """Everyone the applicant's institution may invite now, with the reason."""
        out: list[tuple[dict[str, Any], str]] = []
        orgs: dict[str, str] = {applicant_org: SAME_ORG}
        for agreement in self.repo.agreements_of(applicant_org):
            if agreement_active(agreement, now) and "mdt" in agreement["services"]:
                for party in agreement["parties"]:
                    orgs.setdefault(party, str(agreement["sk"]))
        for org in orgs:
            for cred in self.repo.credentials(org):
                via = self.via(applicant_org, cred, now)
                if via is not None:
                    out.append((cred, via))
        return out


def require_agreement(repo: ScopeRepository, agreement_id: str) -> dict[str, Any]:
    item = repo.agreement(agreement_id)
    if item is None:
        raise NotFound("没有这份协作协议", code="AGREEMENT_NOT_FOUND")
    return item


__all__ = ["SAME_ORG", "Scope", "ScopeRepository", "agreement_active", "covers", "require_agreement", "today"]
