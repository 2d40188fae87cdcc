"""The insured person's e-credential (医保电子凭证): the port.

In production a pharmacy scans the QR code the national 医保 app shows; the code carries an opaque
``ecToken`` that only the NHSA platform can resolve to the person (a 二维码解码 call, one of the pharmacy
interfaces 7201-7211 whose field list is unverified, see docs/rx.md). This service only needs "token
in, person out", so that is the port. The local stand-in is ``bianjie_dev.rx.ecredential``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Person:
    cert_type: str
    cert_no: str
    name: str


class Ecredentials(Protocol):
    def verify(self, token: str) -> Person:
        """The person a token stands for; 401 EC_TOKEN_INVALID / EC_TOKEN_EXPIRED."""
        ...
