"""The drug catalogue (药品目录) with insurance codes, as the pre-check reads it.

Codes are shaped like the national 医保药品分类与代码 (23 characters: ``X`` 西药 / ``Z`` 中成药, an
ATC-like class, then form, specification and maker parts), but the values below are invented for the
demo; a deployment loads its province's published catalogue into ``RX_CATALOGUE_TABLE``.

Table (one item per drug): partition key ``med_code`` (S); the other attributes are ``Drug``'s fields.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from bianjie.kit.documents.port import DocumentStore


class Drug(BaseModel):
    model_config = ConfigDict(frozen=True)

    med_code: str = Field(pattern=r"^[XZ][A-Z0-9]{22}$")  # med_list_codg
    name: str  # 通用名 (generic name, Chinese)
    name_en: str
    spec: str  # 规格, e.g. "0.5g"
    form: str  # 剂型, e.g. "片剂"
    pack_units: int = Field(gt=0)  # smallest units (片, 粒, 支) per pack
    unit: str  # smallest unit
    pack_unit: str  # 盒, 瓶
    max_daily_units: float = Field(gt=0)  # above this a line is refused (DOSE_EXCEEDS_MAX)
    ins_class: str = Field(pattern="^[甲乙]$")  # 甲类 fully / 乙类 partly covered
    circulation: bool  # may leave the hospital on an e-prescription (circDrugQuery)
    controlled: bool = False  # 麻醉/精神药品: never on an e-prescription here
    chronic: bool = False  # may go on a long-term (长期处方) prescription
    price_cents: int = Field(gt=0)  # per pack
    atc: str = ""  # WHO ATC code, for the FHIR export


def _drug(
    code: str,
    name: str,
    name_en: str,
    spec: str,
    form: str,
    pack: int,
    unit: str,
    pack_unit: str,
    max_daily: float,
    ins: str,
    circ: bool,
    price: int,
    atc: str,
    *,
    chronic: bool = False,
    controlled: bool = False,
) -> Drug:
    return Drug(
        med_code=code,
        name=name,
        name_en=name_en,
        spec=spec,
        form=form,
        pack_units=pack,
        unit=unit,
        pack_unit=pack_unit,
        max_daily_units=max_daily,
        ins_class=ins,
        circulation=circ,
        price_cents=price,
        atc=atc,
        chronic=chronic,
        controlled=controlled,
    )


DEMO_CATALOGUE: tuple[Drug, ...] = (
    _drug(
        "XA10BAE024A001010100001",
        "盐酸二甲双胍片",
        "metformin hydrochloride",
        "0.5g",
        "片剂",
        20,
        "片",
        "盒",
        6,
        "甲",
        True,
        850,
        "A10BA02",
        chronic=True,
    ),
    _drug(
        "XC08CAA091A001010100002",
        "苯磺酸氨氯地平片",
        "amlodipine besylate",
        "5mg",
        "片剂",
        7,
        "片",
        "盒",
        2,
        "甲",
        True,
        1260,
        "C08CA01",
        chronic=True,
    ),
    _drug(
        "XC10AAA103A001010100003",
        "阿托伐他汀钙片",
        "atorvastatin calcium",
        "20mg",
        "片剂",
        7,
        "片",
        "盒",
        4,
        "乙",
        True,
        2150,
        "C10AA05",
        chronic=True,
    ),
    _drug(
        "XC09CAX217E001010100004",
        "缬沙坦胶囊",
        "valsartan",
        "80mg",
        "胶囊剂",
        7,
        "粒",
        "盒",
        4,
        "乙",
        True,
        1830,
        "C09CA03",
        chronic=True,
    ),
    _drug(
        "XB01ACA056A012010100005",
        "阿司匹林肠溶片",
        "acetylsalicylic acid",
        "100mg",
        "肠溶片",
        30,
        "片",
        "盒",
        3,
        "甲",
        True,
        1520,
        "B01AC06",
        chronic=True,
    ),
    _drug(
        "XB01ACL094A001010100006",
        "硫酸氢氯吡格雷片",
        "clopidogrel",
        "75mg",
        "片剂",
        7,
        "片",
        "盒",
        4,
        "乙",
        True,
        2890,
        "B01AC04",
        chronic=True,
    ),
    _drug(
        "XJ01CAA040E001010100007",
        "阿莫西林胶囊",
        "amoxicillin",
        "0.25g",
        "胶囊剂",
        24,
        "粒",
        "盒",
        16,
        "甲",
        True,
        960,
        "J01CA04",
    ),
    _drug(
        "XM01AEB082E004010100008",
        "布洛芬缓释胶囊",
        "ibuprofen (sustained release)",
        "0.3g",
        "缓释胶囊",
        20,
        "粒",
        "盒",
        4,
        "甲",
        True,
        1180,
        "M01AE01",
    ),
    _drug(
        "XA02BCA211E012010100009",
        "奥美拉唑肠溶胶囊",
        "omeprazole",
        "20mg",
        "肠溶胶囊",
        14,
        "粒",
        "盒",
        4,
        "甲",
        True,
        1460,
        "A02BC01",
        chronic=True,
    ),
    _drug(
        "XR03DCM117A001010100010",
        "孟鲁司特钠片",
        "montelukast sodium",
        "10mg",
        "片剂",
        5,
        "片",
        "盒",
        1,
        "乙",
        True,
        3120,
        "R03DC03",
        chronic=True,
    ),
    _drug(
        "XJ01MAZ038A001010100011",
        "左氧氟沙星片",
        "levofloxacin",
        "0.5g",
        "片剂",
        4,
        "片",
        "盒",
        2,
        "乙",
        True,
        2240,
        "J01MA12",
    ),
    _drug(
        "XB03BAJ073A001010100012",
        "甲钴胺片",
        "mecobalamin",
        "0.5mg",
        "片剂",
        20,
        "片",
        "盒",
        6,
        "乙",
        True,
        2460,
        "B03BA05",
        chronic=True,
    ),
    # cold chain: kept in hospital in this demo (a pharmacy network with cold-chain delivery would flip it)
    _drug(
        "XA10ABM048B002010100013",
        "门冬胰岛素注射液",
        "insulin aspart",
        "3ml:300单位",
        "注射剂",
        1,
        "支",
        "支",
        100,
        "乙",
        False,
        6980,
        "A10AB05",
        chronic=True,
    ),
    _drug(
        "XN02AAM063A010010100014",
        "盐酸吗啡缓释片",
        "morphine (sustained release)",
        "30mg",
        "缓释片",
        10,
        "片",
        "盒",
        6,
        "甲",
        False,
        3350,
        "N02AA01",
        controlled=True,
    ),
    _drug(
        "XN05BAD052A001010100015",
        "地西泮片",
        "diazepam",
        "2.5mg",
        "片剂",
        20,
        "片",
        "瓶",
        8,
        "甲",
        False,
        420,
        "N05BA01",
        controlled=True,
    ),
    _drug(
        "ZA12BAF031B006010100016",
        "复方丹参滴丸",
        "compound danshen dripping pills",
        "27mg",
        "滴丸剂",
        180,
        "丸",
        "瓶",
        30,
        "甲",
        True,
        2580,
        "",
        chronic=True,
    ),
)


class Catalogue(Protocol):
    def get(self, med_code: str) -> Drug | None: ...


class MemoryCatalogue:
    def __init__(self, drugs: Iterable[Drug] = DEMO_CATALOGUE) -> None:
        self._drugs = {d.med_code: d for d in drugs}

    def get(self, med_code: str) -> Drug | None:
        return self._drugs.get(med_code)

    def all(self) -> list[Drug]:
        return list(self._drugs.values())


class DocumentCatalogue:
    """The catalogue table, with a short per-process cache: the catalogue changes monthly, reads are per line."""

    def __init__(
        self, store: DocumentStore, table: str, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._table = table
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, Drug | None]] = {}
        self._lock = threading.Lock()

    def get(self, med_code: str) -> Drug | None:
        now = self._clock()
        hit = self._cache.get(med_code)
        if hit and hit[0] > now:
            return hit[1]
        item = self._store.get(self._table, {"med_code": med_code})
        drug = Drug.model_validate(item) if item else None
        with self._lock:
            self._cache[med_code] = (now + self._ttl, drug)
        return drug

    def put(self, drug: Drug) -> None:
        self._store.put(self._table, drug.model_dump())
        with self._lock:
            self._cache.pop(drug.med_code, None)


def drug_item(drug: Drug) -> dict[str, Any]:
    return drug.model_dump()
