"""The invitation link as a QR code, made in the function (segno: pure Python, no I/O)."""

from __future__ import annotations

import io

import segno


def _code(text: str) -> segno.QRCode:
    return segno.make(text, error="m", micro=False)


def png(text: str, scale: int = 6) -> bytes:
    out = io.BytesIO()
    _code(text).save(out, kind="png", scale=scale, border=2)
    return out.getvalue()


def svg(text: str, scale: int = 6) -> str:
    out = io.BytesIO()
    _code(text).save(out, kind="svg", scale=scale, border=2, xmldecl=False, svgns=True, title="陪诊邀请二维码")
    return out.getvalue().decode("utf-8")
