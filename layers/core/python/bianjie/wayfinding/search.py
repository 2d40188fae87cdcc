"""POIs (the places people look for) and their text search: Chinese names, aliases (B超), pinyin
(chaosheng), initials (csk), tolerant of one typo (two in long words).

Search keys are computed when a POI is written (publish, an edit, an import), in the functions that
carry pypinyin (imported lazily); search itself is pure Python over the stored keys.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

CATEGORIES: dict[str, tuple[str, str]] = {
    # category: (Chinese label, group)
    "department": ("科室", "就医服务"),
    "medtech": ("医技检查", "就医服务"),
    "kiosk": ("自助机", "就医服务"),
    "pharmacy": ("取药窗口", "就医服务"),
    "cashier": ("收费窗口", "就医服务"),
    "information": ("咨询台", "就医服务"),
    "entrance": ("出入口", "就医服务"),
    "toilet": ("卫生间", "便民服务"),
    "water": ("饮水处", "便民服务"),
    "shop": ("便利店", "便民服务"),
    "rental": ("租借服务", "便民服务"),
    "other": ("其他", "便民服务"),
}
AMENITY_CATEGORY = {
    "restroom": "toilet",
    "restroom.male": "toilet",
    "restroom.female": "toilet",
    "restroom.unisex": "toilet",
    "restroom.family": "toilet",
    "drinkingfountain": "water",
    "kiosk": "kiosk",
    "kiosk.selfservice": "kiosk",
    "cashier": "cashier",
    "pharmacy": "pharmacy",
    "shop": "shop",
    "vendingmachine": "shop",
    "wheelchairassist": "rental",
    "rental": "rental",
    "information": "information",
}
MEDTECH_WORDS = ("检验", "放射", "超声", "B超", "心电", "内镜", "磁共振", "CT", "病理", "核医学", "影像")
_PUNCT = re.compile(r"[\s\-_/·・,，。.（）()【】\[\]、:：;；'\"“”]+")


def normalize(text: str) -> str:
    return _PUNCT.sub("", unicodedata.normalize("NFKC", text)).lower()


def default_category(kind: str, imdf_category: str, name: str) -> str:
    if kind == "amenity":
        return AMENITY_CATEGORY.get(imdf_category, "other")
    if kind == "opening":
        return "entrance"
    if kind == "kiosk":
        return "kiosk"
    if imdf_category == "pharmacy":
        return "pharmacy"
    if any(word in name for word in MEDTECH_WORDS):
        return "medtech"
    return "department"


def name_aliases(name: str) -> list[str]:
    """Parts of a name in brackets are aliases: 超声科（B超室） -> 超声科, B超室."""
    parts = [p for p in re.split(r"[（）()/]", name) if p.strip()]
    return [p.strip() for p in parts if p.strip() != name] if len(parts) > 1 else []


def pinyin_keys(text: str) -> list[str]:
    """Full pinyin and initials of ``text`` (pypinyin; imported here only)."""
    from pypinyin import Style, lazy_pinyin

    syllables = [s for s in (normalize(x) for x in lazy_pinyin(text, style=Style.NORMAL, errors="default")) if s]
    if not syllables:
        return []
    full = "".join(syllables)
    initials = "".join(s[0] for s in syllables)
    return [k for k in dict.fromkeys([full, initials]) if k]


def search_keys(name: str, aliases: list[str]) -> list[str]:
    keys: list[str] = []
    for text in [name, *name_aliases(name), *aliases]:
        keys.append(normalize(text))
        keys.extend(pinyin_keys(text))
    return [k for k in dict.fromkeys(keys) if k]


def _distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance, or limit + 1 once it exceeds ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]


def score(query: str, keys: list[str], fuzzy: bool = True) -> float:
    """How well a normalised query matches a POI's keys: exact 100, prefix 90, inside 70, one or two
    typos 50/40 (against the whole key or its prefix of the query's length; only with ``fuzzy``), else 0."""
    best = 0.0
    for k in keys:
        if query == k:
            return 100.0
        if k.startswith(query):
            best = max(best, 90.0 - min(len(k) - len(query), 20) * 0.1)
        elif query in k:
            best = max(best, 70.0)
    if best or not fuzzy or len(query) < 3:
        return best
    limit = 2 if len(query) >= 7 else 1
    for k in keys:
        d = min(_distance(query, k, limit), _distance(query, k[: len(query)], limit))
        if d <= limit:
            best = max(best, 50.0 - 10 * (d - 1))
    return best


def search(
    pois: list[dict[str, Any]], text: str, category: str | None = None, limit: int = 10
) -> list[tuple[float, dict[str, Any]]]:
    query = normalize(text)
    live = [
        p
        for p in pois
        if p.get("enabled", True) and p.get("present", True) and (not category or p["category"] == category)
    ]
    out: list[tuple[float, dict[str, Any]]] = []
    # exact, prefix and substring matches first; typo tolerance only when they find fewer than ``limit``
    for fuzzy in (False, True):
        matched = {id(p) for _, p in out}
        for poi in live:
            if id(poi) in matched:
                continue
            s = score(query, poi["keys"], fuzzy) if query else 1.0
            if s > 0:
                out.append((s, poi))
        if len(out) >= limit or not query:
            break
    out.sort(key=lambda sp: (-sp[0], sp[1]["name"]))
    return out[:limit]
