"""The medical dictionary the segmenter is given and the synonym table queries and documents are folded
through (中风 -> 脑卒中): kept here, in the code, so the tokenizer is the same in every backend and every
function. Words are those the default dictionary splits wrongly (慢阻肺 -> 慢阻 / 肺) or too finely."""

from __future__ import annotations

MEDICAL_WORDS: tuple[str, ...] = (
    "慢阻肺",
    "脑卒中",
    "糖尿病足",
    "妊娠糖尿病",
    "高血压",
    "高血脂",
    "冠心病",
    "心肌梗死",
    "心梗",
    "房颤",
    "脑梗",
    "脑梗死",
    "阿尔茨海默病",
    "帕金森病",
    "骨质疏松",
    "甲状腺结节",
    "乳腺癌",
    "肺结节",
    "幽门螺杆菌",
    "慢性肾病",
    "痛风",
    "哮喘",
    "流感",
    "手足口病",
    "近视",
    "抑郁症",
    "带状疱疹",
    "胃食管反流",
    "宫颈癌",
    "HPV疫苗",
)

# alias -> the canonical term; both are indexed, a query for either finds both
SYNONYMS: dict[str, str] = {
    "中风": "脑卒中",
    "脑中风": "脑卒中",
    "卒中": "脑卒中",
    "心梗": "心肌梗死",
    "心肌梗塞": "心肌梗死",
    "脑梗": "脑梗死",
    "脑梗塞": "脑梗死",
    "慢阻肺": "慢性阻塞性肺疾病",
    "老年痴呆": "阿尔茨海默病",
    "老年痴呆症": "阿尔茨海默病",
    "血糖高": "糖尿病",
    "三高": "高血压",
    "幽门杆菌": "幽门螺杆菌",
    "缠腰龙": "带状疱疹",
    "蛇串疮": "带状疱疹",
    "房颤": "心房颤动",
    "肾病": "慢性肾病",
}

STOPWORDS: frozenset[str] = frozenset(
    "的 了 和 与 及 或 是 在 有 也 就 都 而 把 被 让 给 怎么 怎么办 如何 什么 哪些 为什么 吗 呢 吧 啊 要 会 能 可以 一个 这 那 之 其 "
    "等 对 从 向 于 上 下 中 里 后 前 时 啥 么".split()
)
