"""A synthetic health-video library and the labelled query set search quality is held to (P@10, recall;
target P@10 >= 0.9), for unit tests and ``scripts/bench/content.py``. Items come from the city
hospitals, about diseases named the way hospitals title them (a disease may appear under its alias), on
seven topics; a query's relevant items are those about its disease (and topic, where it names one)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from bianjie.content.search import SearchDoc

HOSPITALS = [f"h{n:02d}" for n in range(1, 38)]
# code, name as indexed in tags, ways a title may call it
DISEASES: list[tuple[str, str, list[str]]] = [
    ("E11", "糖尿病", ["糖尿病", "2型糖尿病", "糖尿病"]),
    ("E11.5", "糖尿病足", ["糖尿病足"]),
    ("O24", "妊娠糖尿病", ["妊娠糖尿病"]),
    ("I10", "高血压", ["高血压", "原发性高血压"]),
    ("I63", "脑卒中", ["脑卒中", "脑卒中"]),
    ("J44", "慢阻肺", ["慢阻肺", "慢性阻塞性肺疾病"]),
    ("I25", "冠心病", ["冠心病"]),
    ("M81", "骨质疏松", ["骨质疏松"]),
    ("K21", "胃食管反流", ["胃食管反流"]),
    ("F32", "抑郁症", ["抑郁症"]),
    ("J45", "哮喘", ["哮喘", "支气管哮喘"]),
    ("M10", "痛风", ["痛风"]),
]
TOPICS: list[tuple[str, str]] = [
    ("饮食", "饮食"),
    ("运动", "运动康复"),
    ("用药", "合理用药"),
    ("识别", "早期识别"),
    ("护理", "居家护理"),
    ("筛查", "筛查与体检"),
    ("误区", "常见误区"),
]
DIABETES = {"E11", "E11.5", "O24"}


@dataclass(frozen=True)
class LabelledQuery:
    query: str
    relevant: frozenset[str]


def library(count: int, seed: int = 19) -> list[SearchDoc]:
    rng = random.Random(seed)
    docs = []
    for n in range(count):
        code, name, titles = DISEASES[n % len(DISEASES)]
        topic, topic_text = TOPICS[(n // len(DISEASES)) % len(TOPICS)]
        title = f"{rng.choice(titles)}的{topic_text}"
        docs.append(
            SearchDoc(
                id=f"v-{n:016x}",
                kind="video",
                column="video",
                hospital=HOSPITALS[rng.randrange(len(HOSPITALS))],
                title=title,
                summary=f"{HOSPITALS[n % 37]}专家讲解{title}，帮助患者和家属掌握要点。",
                body="",
                tags=[name, topic],
                diseases=[code],
                url=f"/content/site/videos/v-{n:016x}",
                published_at=f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}",
            )
        )
    return docs


def labelled(docs: list[SearchDoc]) -> list[LabelledQuery]:
    def about(codes: set[str], topic: str | None = None) -> frozenset[str]:
        return frozenset(d.id for d in docs if d.diseases[0] in codes and (topic is None or topic in d.tags))

    return [
        LabelledQuery("高血压 饮食", about({"I10"}, "饮食")),
        LabelledQuery("糖尿病足", about({"E11.5"})),
        LabelledQuery("糖尿病", about(DIABETES)),
        LabelledQuery("tnb", about(DIABETES)),
        LabelledQuery("tangniaobing", about(DIABETES)),
        LabelledQuery("tangniaobing yinshi", about(DIABETES, "饮食")),
        LabelledQuery("中风", about({"I63"})),
        LabelledQuery("中风 运动", about({"I63"}, "运动")),
        LabelledQuery("慢阻肺", about({"J44"})),
        LabelledQuery("糖尿病 饮食", about(DIABETES, "饮食")),
        LabelledQuery("骨质疏松 筛查", about({"M81"}, "筛查")),
        LabelledQuery("痛风 用药", about({"M10"}, "用药")),
    ]


def precision_recall(
    hits: list[str], total_ids: list[str], relevant: frozenset[str], k: int = 10
) -> tuple[float, float]:
    top = hits[:k]
    precision = sum(h in relevant for h in top) / min(k, len(relevant)) if relevant else 1.0
    recall = len(set(total_ids) & relevant) / len(relevant) if relevant else 1.0
    return precision, recall
