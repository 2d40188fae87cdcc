"""What a doctor signs: the canonical prescription and its printable PDF, and the text that binds them.

- ``canonical_json``: keys sorted, no whitespace, UTF-8 (not \\u-escaped). ``content_sm3`` is its SM3.
- ``render_pdf``: a one-page A4 PDF 1.4 written directly (no PDF library in the functions' layer). It
  uses the standard CJK font STSong-Light (UniGB-UCS2-H), which every PDF reader supplies, so nothing is
  embedded and the file stays ~3 KB. It is deterministic (no creation date), so the same prescription
  always gives the same bytes and the stored ``pdf_sm3`` can be re-checked at any time without keeping
  the file.
- ``signing_input``: the UTF-8 text the doctor's SM2 key signs (default user id 1234567812345678)::

      bianjie-rx-sign/1
      rx_id=<rx id>
      content_sm3=<hex>
      pdf_sm3=<hex>
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bianjie.kit.crypto import sm3

SIGN_VERSION = "bianjie-rx-sign/1"


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def content_sm3(content: Mapping[str, Any]) -> str:
    return sm3(canonical_json(dict(content))).hex()


def signing_input(rx_id: str, content_digest: str, pdf_digest: str) -> str:
    return f"{SIGN_VERSION}\nrx_id={rx_id}\ncontent_sm3={content_digest}\npdf_sm3={pdf_digest}\n"


def _pdf_text(text: str) -> str:
    # UCS-2 cannot carry characters beyond the BMP; a prescription has no reason to hold them
    safe = "".join(ch if ord(ch) < 0x10000 else "?" for ch in text)
    return "<" + safe.encode("utf-16-be").hex().upper() + ">"


def render_pdf(lines: list[tuple[float, str]]) -> bytes:
    """A one-page PDF with ``(font size, text)`` lines from the top of the page."""
    ops = ["BT", "/F1 12 Tf", "50 790 Td"]
    first = True
    for size, text in lines:
        step = size * 1.6
        ops.append(f"/F1 {size:g} Tf")
        if not first:
            ops.append(f"0 {-step:g} Td")
        first = False
        ops.append(f"{_pdf_text(text)} Tj")
    ops.append("ET")
    stream = "\n".join(ops).encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> "
        b"/Contents 4 0 R >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UCS2-H /DescendantFonts [6 0 R] >>",
        b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light "
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (GB1) /Supplement 2 >> /FontDescriptor 7 0 R /DW 1000 >>",
        b"<< /Type /FontDescriptor /FontName /STSong-Light /Flags 6 /FontBBox [-25 -254 1000 880] "
        b"/ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 880 /StemV 93 >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def prescription_pdf(content: Mapping[str, Any], drug_names: Mapping[str, str], hospital_name: str) -> bytes:
    """The printable prescription (处方笺) of the canonical content."""
    insured = content["insured"]
    doctor = content["doctor"]
    lines: list[tuple[float, str]] = [
        (16, f"{hospital_name}  医保电子处方笺"),
        (10, f"医保处方编号 {content['hi_rxno']}   院内处方号 {content['hosp_rxno']}"),
        (
            10,
            f"开方时间 {content['prescribed_at']}   有效期 {content['valid_days']} 天"
            + ("   长期处方" if content.get("long_term") else "")
            + (
                f"   可重复使用 {content['max_uses']} 次, 间隔至少 {content['min_interval_days']} 天"
                if content.get("reusable")
                else ""
            ),
        ),
        (11, f"姓名 {insured['name']}   证件号码 {insured['cert_no']}"),
        (11, f"科室 {doctor['dept_name']}   就诊号 {content['visit']['visit_id']}"),
        (11, "诊断 " + "；".join(f"{d['name']} ({d['code']})" for d in content["diagnoses"])),
        (13, "Rp."),
    ]
    for n, line in enumerate(content["drugs"], start=1):
        name = drug_names.get(line["med_code"], line["med_code"])
        lines.append(
            (
                11,
                f"{n}. {name}  × {line['quantity']}   用法 {line['route']} 每次 {line['dose']:g} "
                f"{line['frequency']}  {line['days']} 天",
            )
        )
    lines += [
        (11, f"医师 {doctor['name']} ({doctor['code']})   {'可外购' if content['circulation'] else '限院内'}"),
        (9, "本处方经医师 SM2 数字签名; 签名覆盖本文件的 SM3 摘要。"),
    ]
    return render_pdf(lines)
