"""How patient data is shown where it must be recognisable but not readable: one rule per kind of value.

These are display rules (a page, a list, an operator's console). Logs never carry the value at all;
``bianjie.kit.logging`` redacts as a safety net.
"""

from __future__ import annotations


def mask_name(name: str | None) -> str | None:
    """张三 -> 张*, 王小明 -> 王*明, 欧阳娜娜 -> 欧**娜: the first and, from three characters on, the last
    character stay, as Chinese hospital pages show patients' names."""
    if not name:
        return None
    if len(name) <= 2:
        return name[0] + "*" * max(1, len(name) - 1)
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_phone(phone: str) -> str:
    """13812345678 -> 138****5678."""
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else "****"


def mask_account(account: str) -> str:
    """A bank card or channel account: only the last four characters, ``****0051``."""
    return f"****{account[-4:] if len(account) > 4 else ''}"


def mask_id(value: str) -> str:
    """An identifier an operator must tell apart from others (openid, ID number): ``oAbc…xyz``."""
    return value[:4] + "…" + value[-3:] if len(value) > 8 else "…"
