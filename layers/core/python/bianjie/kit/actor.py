"""Who is calling: one ``Actor`` for every domain service and every audit record.

The web layer builds it from what it verified (``ServiceApp.partner_actor()`` from the SM2 signature,
``patient_actor()`` / ``staff_actor(*roles)`` / ``companion_actor()`` from the bearer token); event
handlers and schedules use ``Actor.system(name)``. Domain services take an ``Actor`` and decide with
it; they never see a signature, a token or a bare app id.

Kinds:
- ``partner``: a signed partner system (hospital HIS, pharmacy, 医联, a payment channel's app).
  ``id`` = ``org`` = the app id; ``settings`` = its registry settings (per service section).
- ``patient``: ``id`` = the token subject; ``patient_ref`` = blind index of the ID number (``id_ref``).
  Also the holder of a viewing link (``id`` = "link-<hash prefix>", ``org`` = the app that minted it).
- ``staff``: ``id`` = staff code; ``org`` = the hospital (or pharmacy) app id; ``roles`` per hospital.
- ``companion``: an escort accompanying a patient (陪诊); ``org`` = the hospital, ``roles`` as staff.
- ``system``: a schedule, a queue consumer or another service's event; ``id`` names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ActorKind = Literal["partner", "patient", "staff", "companion", "system"]


@dataclass(frozen=True)
class Origin:
    """Where an unauthenticated request came from (``ServiceApp.origin()``): for calls whose credential
    the domain checks itself (a viewing link), which then names the ``Actor``."""

    source_ip: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    id: str
    org: str | None = None
    roles: tuple[str, ...] = ()
    patient_ref: str | None = None
    source_ip: str | None = None
    request_id: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def system(cls, name: str, *, request_id: str | None = None) -> Actor:
        return cls(kind="system", id=name, request_id=request_id)

    @classmethod
    def partner(
        cls,
        app_id: str,
        *,
        settings: Mapping[str, Any] | None = None,
        source_ip: str | None = None,
        request_id: str | None = None,
    ) -> Actor:
        return cls(
            kind="partner", id=app_id, org=app_id, settings=settings or {}, source_ip=source_ip, request_id=request_id
        )

    @property
    def audit_name(self) -> str:
        """How audit records name the actor: ``partner:app-1``, ``staff:hospital-a/D1``, ``patient:p9``,
        ``system:rx-expiry-sweep``. Staff and companions are named with their hospital (codes are per
        hospital)."""
        if self.kind in ("staff", "companion") and self.org:
            return f"{self.kind}:{self.org}/{self.id}"
        return f"{self.kind}:{self.id}"

    def has_role(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)

    def setting(self, service: str, name: str, default: Any = None) -> Any:
        """A partner's registry setting (``settings[service][name]``)."""
        return (self.settings.get(service) or {}).get(name, default)
