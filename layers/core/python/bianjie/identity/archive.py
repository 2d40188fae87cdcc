"""The unified archive (统一建档) and card binding (统一绑卡): one platform person per resident.

A person is found by the blind index (HMAC-SM3) of the ID number (``idref#<index>``); the ID number and
name are kept only as SM4 ciphertext bound to the person's id. Upstream accounts (随申办 user, WeChat
unionid, Alipay user_id) link to the person, so a second login through another channel reaches the
same person once that account has been linked by a real-name login. Hospitals' own patient ids link
per hospital; cards (医保电子凭证, 电子健康卡, 就诊卡) bind per hospital after the hospital's adapter
verifies them. Duplicates merge into a survivor with history; FHIR ``Patient`` export carries the
identifiers and ``link`` (replaced-by / replaces).
"""

from __future__ import annotations

import re
import secrets
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from bianjie.identity.store import IdentityStore
from bianjie.identity.upstream import UpstreamIdentity
from bianjie.kit.actor import Actor
from bianjie.kit.documents.port import Cond, Put
from bianjie.kit.errors import BadRequest, Conflict, NotFound
from bianjie.kit.masking import mask_id, mask_name

CardType = Literal["medical_insurance", "health_card", "visit_card"]
CARD_NAMES = {"medical_insurance": "医保电子凭证", "health_card": "电子健康卡", "visit_card": "就诊卡"}
ID_NUMBER_RE = re.compile(r"^\d{17}[\dX]$")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def valid_id_number(value: str) -> bool:
    """GB 11643 check digit of an 18-digit resident ID number."""
    if not ID_NUMBER_RE.fullmatch(value):
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == value[17]


class Cipher(Protocol):
    def encrypt(self, plaintext: str, context: str) -> str: ...

    def decrypt(self, token: str, context: str) -> str: ...


class BlindIndex(Protocol):
    def digest(self, value: str, kind: str) -> str: ...


class Audit(Protocol):
    def record(self, **kwargs: Any) -> Any: ...


class CardVerifier(Protocol):
    """The hospital's adapter: does this card belong to this person at this hospital?"""

    def verify(self, hospital: str, card_type: str, card_no: str, id_number: str) -> str | None:
        """The hospital's own patient id when the card is the person's; else None."""


class BindCardRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hospital: str = Field(min_length=1, max_length=64)
    card_type: CardType
    card_no: str = Field(min_length=4, max_length=64, pattern=r"^[A-Za-z0-9-]+$")


class CardView(BaseModel):
    hospital: str
    card_type: CardType
    card_name: str
    card_no_masked: str
    bound_at: int


class PersonView(BaseModel):
    person_id: str
    name_masked: str | None
    id_number_masked: str | None
    hospitals: dict[str, str] = Field(description="hospital -> that hospital's patient id")
    cards: list[CardView]
    accounts: list[str] = Field(description="upstreams linked (随申办, 微信 ...)")


class Archive:
    def __init__(self, store: IdentityStore, cipher: Cipher, blind: BlindIndex, audit: Audit) -> None:
        self.store, self.cipher, self.blind, self.audit = store, cipher, blind, audit

    # -- finding the person ---------------------------------------------------------------------
    def id_ref(self, id_number: str) -> str:
        return self.blind.digest(id_number, "id_number")

    def _follow(self, person_id: str | None) -> str | None:
        for _ in range(5):  # merged persons point at their survivor
            if person_id is None:
                return None
            record = self.store.get(f"person#{person_id}", "person")
            if record is None:
                return None
            if not record.get("merged_into"):
                return person_id
            person_id = str(record["merged_into"])
        return person_id

    def person_of_ref(self, id_ref: str) -> str | None:
        record = self.store.get(f"idref#{id_ref}", "idref")
        return self._follow(str(record["person_id"])) if record else None

    def person_of_account(self, upstream: str, subject: str) -> str | None:
        record = self.store.get(f"account#{upstream}#{subject}", "account")
        return self._follow(str(record["person_id"])) if record else None

    def resolve(self, identity: UpstreamIdentity) -> str | None:
        """The person behind an upstream login, creating one on a first real-name login; None when the
        account carries no ID number and is not linked yet (the login page then asks for a real-name login)."""
        person = self.person_of_account(identity.upstream, identity.subject)
        if person is not None:
            return person
        if not identity.id_number:
            return None
        if not valid_id_number(identity.id_number):
            raise BadRequest("上游返回的身份证号无效", code="UPSTREAM_ID_INVALID")
        ref = self.id_ref(identity.id_number)
        person = self.person_of_ref(ref)
        if person is None:
            person = self._create(ref, identity)
        self.link_account(person, identity.upstream, identity.subject)
        return person

    def _create(self, ref: str, identity: UpstreamIdentity) -> str:
        person_id = "p-" + secrets.token_hex(8)
        now = self.store.now()
        record = {
            "pk": f"person#{person_id}",
            "sk": "person",
            "person_id": person_id,
            "id_ref": ref,
            "id_number_enc": self.cipher.encrypt(identity.id_number or "", f"identity/id_number/{person_id}"),
            "name_enc": self.cipher.encrypt(identity.name, f"identity/name/{person_id}") if identity.name else None,
            "created_at": now,
        }
        pointer = {"pk": f"idref#{ref}", "sk": "idref", "person_id": person_id}
        try:
            self.store.transact([Put(self.store.table, pointer, Cond.absent()), Put(self.store.table, record)])
        except Exception:
            existing = self.person_of_ref(ref)  # a concurrent first login created them: use that person
            if existing is None:
                raise
            return existing
        self.audit.record(
            actor="system:identity",
            action="identity.person.create",
            resource=f"identity.person:{person_id}",
            patient_ref=ref,
        )
        return person_id

    def link_account(self, person_id: str, upstream: str, subject: str) -> None:
        self.store.put(
            {
                "pk": f"account#{upstream}#{subject}",
                "sk": "account",
                "person_id": person_id,
                "linked_at": self.store.now(),
            }
        )
        self.store.put({"pk": f"person#{person_id}", "sk": f"account#{upstream}", "subject": subject})

    def record(self, person_id: str) -> dict[str, Any]:
        record = self.store.get(f"person#{person_id}", "person")
        if record is None:
            raise NotFound("没有这个人的档案", code="PERSON_NOT_FOUND")
        return record

    def id_number(self, person_id: str) -> str:
        return self.cipher.decrypt(self.record(person_id)["id_number_enc"], f"identity/id_number/{person_id}")

    def name(self, person_id: str) -> str | None:
        enc = self.record(person_id).get("name_enc")
        return self.cipher.decrypt(enc, f"identity/name/{person_id}") if enc else None

    # -- hospitals and cards --------------------------------------------------------------------
    def link_hospital(self, person_id: str, hospital: str, hospital_patient_id: str) -> None:
        self.store.put(
            {
                "pk": f"person#{person_id}",
                "sk": f"link#{hospital}",
                "hospital": hospital,
                "hospital_patient_id": hospital_patient_id,
                "linked_at": self.store.now(),
            }
        )

    def bind_card(self, actor: Actor, person_id: str, request: BindCardRequest, verifier: CardVerifier) -> CardView:
        record = self.record(person_id)
        id_number = self.id_number(person_id)
        hospital_patient_id = verifier.verify(request.hospital, request.card_type, request.card_no, id_number)
        if hospital_patient_id is None:
            self.audit.record(
                actor=actor,
                action="identity.card.bind",
                resource=f"identity.person:{person_id}",
                patient_ref=record["id_ref"],
                outcome="failure",
                details={"hospital": request.hospital, "card_type": request.card_type},
            )
            # the same answer whether the card does not exist or is someone else's
            raise BadRequest("医院未能核验这张卡属于您", code="CARD_NOT_VERIFIED")
        now = self.store.now()
        context = f"identity/card/{person_id}/{request.hospital}/{request.card_type}"
        self.store.put(
            {
                "pk": f"person#{person_id}",
                "sk": f"card#{request.hospital}#{request.card_type}",
                "hospital": request.hospital,
                "card_type": request.card_type,
                "card_no_enc": self.cipher.encrypt(request.card_no, context),
                "card_no_masked": _mask_card(request.card_no),
                "bound_at": now,
            }
        )
        self.link_hospital(person_id, request.hospital, hospital_patient_id)
        self.audit.record(
            actor=actor,
            action="identity.card.bind",
            resource=f"identity.person:{person_id}",
            patient_ref=record["id_ref"],
            details={"hospital": request.hospital, "card_type": request.card_type},
        )
        return CardView(
            hospital=request.hospital,
            card_type=request.card_type,
            card_name=CARD_NAMES[request.card_type],
            card_no_masked=_mask_card(request.card_no),
            bound_at=now,
        )

    def view(self, actor: Actor, person_id: str) -> PersonView:
        record = self.record(person_id)
        rows = self.store.query(f"person#{person_id}", limit=200)
        hospitals = {r["hospital"]: r["hospital_patient_id"] for r in rows if r["sk"].startswith("link#")}
        cards = [
            CardView(
                hospital=r["hospital"],
                card_type=r["card_type"],
                card_name=CARD_NAMES[r["card_type"]],
                card_no_masked=r["card_no_masked"],
                bound_at=int(r["bound_at"]),
            )
            for r in rows
            if r["sk"].startswith("card#")
        ]
        accounts = sorted(r["sk"].split("#", 1)[1] for r in rows if r["sk"].startswith("account#"))
        self.audit.record(
            actor=actor,
            action="identity.person.read",
            resource=f"identity.person:{person_id}",
            patient_ref=record["id_ref"],
        )
        name = self.name(person_id)
        return PersonView(
            person_id=person_id,
            name_masked=mask_name(name) if name else None,
            id_number_masked=mask_id(self.id_number(person_id)),
            hospitals=hospitals,
            cards=cards,
            accounts=accounts,
        )

    # -- merge and export -----------------------------------------------------------------------
    def merge(self, actor: Actor, survivor: str, duplicate: str, reason: str) -> dict[str, Any]:
        """Fold ``duplicate`` into ``survivor``: its links, cards and accounts move; it keeps a pointer."""
        if survivor == duplicate:
            raise BadRequest("不能把档案合并到自身", code="MERGE_SELF")
        keep, gone = self.record(survivor), self.record(duplicate)
        if gone.get("merged_into"):
            raise Conflict("该档案已合并过", code="ALREADY_MERGED")
        now = self.store.now()
        moved = 0
        for row in self.store.query(f"person#{duplicate}", limit=200):
            if row["sk"] == "person" or row["sk"].startswith("history#"):
                continue
            item = dict(row, pk=f"person#{survivor}")
            for key in ("card_no_enc",):
                if item.get(key):  # ciphertext is bound to the person's id: re-encrypt under the survivor's
                    old_ctx = f"identity/card/{duplicate}/{row['hospital']}/{row['card_type']}"
                    new_ctx = f"identity/card/{survivor}/{row['hospital']}/{row['card_type']}"
                    item[key] = self.cipher.encrypt(self.cipher.decrypt(row[key], old_ctx), new_ctx)
            self.store.put(item)
            if row["sk"].startswith("account#"):
                self.store.put(
                    {
                        "pk": f"account#{row['sk'].split('#', 1)[1]}#{row['subject']}",
                        "sk": "account",
                        "person_id": survivor,
                        "linked_at": now,
                    }
                )
            moved += 1
        self.store.put(dict(gone, merged_into=survivor, merged_at=now))
        # the duplicate's ID number keeps pointing somewhere valid (it may differ from the survivor's)
        self.store.put({"pk": f"idref#{gone['id_ref']}", "sk": "idref", "person_id": survivor})
        for pid, other in ((survivor, duplicate), (duplicate, survivor)):
            self.store.put(
                {
                    "pk": f"person#{pid}",
                    "sk": f"history#{now}#{secrets.token_hex(3)}",
                    "action": "merge",
                    "survivor": survivor,
                    "duplicate": duplicate,
                    "other": other,
                    "reason": reason[:200],
                    "by": actor.audit_name,
                    "at": now,
                }
            )
        self.audit.record(
            actor=actor,
            action="identity.person.merge",
            resource=f"identity.person:{survivor}",
            patient_ref=keep["id_ref"],
            details={"duplicate": duplicate, "moved": moved},
        )
        return {"survivor": survivor, "duplicate": duplicate, "moved": moved}

    def history(self, person_id: str) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in r.items() if k not in ("pk", "sk")}
            for r in self.store.query(f"person#{person_id}", "history#", limit=200)
        ]

    def fhir_patient(self, actor: Actor, person_id: str, system_base: str) -> dict[str, Any]:
        """FHIR R4 ``Patient``: identifiers (platform id, each hospital's MRN, the ID number only masked)."""
        record = self.record(person_id)
        view = self.view(actor, person_id)
        identifiers: list[dict[str, Any]] = [
            {"use": "official", "system": f"{system_base}/person", "value": person_id},
        ]
        for hospital, mrn in sorted(view.hospitals.items()):
            identifiers.append(
                {
                    "use": "usual",
                    "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                    "system": f"{system_base}/hospital/{hospital}/patient",
                    "value": mrn,
                }
            )
        resource: dict[str, Any] = {
            "resourceType": "Patient",
            "id": person_id,
            "active": not record.get("merged_into"),
            "identifier": identifiers,
        }
        if view.name_masked:
            resource["name"] = [{"text": view.name_masked}]
        links = [
            {"other": {"reference": f"Patient/{h['duplicate']}"}, "type": "replaces"}
            for h in self.history(person_id)
            if h.get("survivor") == person_id
        ]
        if record.get("merged_into"):
            links.append({"other": {"reference": f"Patient/{record['merged_into']}"}, "type": "replaced-by"})
        if links:
            resource["link"] = links
        return resource


def _mask_card(card_no: str) -> str:
    return card_no[:2] + "*" * max(len(card_no) - 6, 2) + card_no[-4:]
