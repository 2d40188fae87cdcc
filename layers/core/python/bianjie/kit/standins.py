"""One switch for "the real system or its stand-in", for every service.

A stand-in plays an external system we cannot reach locally (the NHSA prescription center, the payment
channels, WeChat and Aliyun SMS, the 医联 imaging cloud). Stand-ins are for the local stage only: a
deployment on any other stage that asks for one fails at wiring with ``StandinNotAllowed``, before any
request is served, instead of quietly answering patients from a double.

``BIANJIE_STANDINS`` names the systems that use their stand-in: ``all``, ``none``, or a comma list of
system names (below). Unset, it is ``all`` on the local stage (``BIANJIE_STAGE=local``, the default)
and ``none`` elsewhere, so a production function reaches the real systems (and fails clearly if their
settings are missing).

Systems: ``rx.center`` (NHSA e-prescription center), ``rx.ecredential`` (the e-credential decoder),
``pay.channels`` (UnionPay, 惠民就医, 医保信用), ``guide.channels`` (WeChat, Aliyun SMS),
``film.imaging_cloud`` (医联), ``identity.upstreams`` (随申办, 一网通办, WeChat, Alipay, the hospital
staff directory), ``escort.sms`` (Aliyun SMS for escort's invitations and phone codes).
staff directory), ``consult.video`` (LiveKit),
``consult.signing`` (the hospital CA's signing service), ``consult.scanner`` (clamd).
"""

from __future__ import annotations

from bianjie.kit.config import env

SYSTEMS = frozenset(
    {
        "rx.center",
        "rx.ecredential",
        "pay.channels",
        "guide.channels",
        "film.imaging_cloud",
        "identity.upstreams",
        "escort.sms",
        "assistant.llm",
        "consult.video",
        "consult.signing",
        "consult.scanner",
        "content.wechat",
    }
)
LOCAL_STAGE = "local"


class StandinNotAllowed(RuntimeError):
    """A configuration error: a stand-in was asked for outside the local stage."""


def stage() -> str:
    return env("BIANJIE_STAGE", LOCAL_STAGE) or LOCAL_STAGE


def use_standin(system: str) -> bool:
    """Whether this deployment uses the stand-in for ``system``; raises ``StandinNotAllowed`` when it is
    configured to and the stage is not local."""
    if system not in SYSTEMS:
        raise ValueError(f"unknown system {system!r}; known: {', '.join(sorted(SYSTEMS))}")
    configured = env("BIANJIE_STANDINS")
    if configured is None:
        return stage() == LOCAL_STAGE
    names = {n.strip() for n in configured.split(",") if n.strip()}
    unknown = names - SYSTEMS - {"all", "none"}
    if unknown:
        raise ValueError(f"BIANJIE_STANDINS names unknown systems: {', '.join(sorted(unknown))}")
    wanted = "all" in names or system in names
    if wanted:
        require_local(system)
    return wanted


def require_local(system: str) -> None:
    """Refuse a stand-in outside the local stage (also for choices made by data, e.g. a pay channel
    record whose mode is ``standin``)."""
    if stage() != LOCAL_STAGE:
        raise StandinNotAllowed(
            f"the stand-in for {system} runs only on the local stage (BIANJIE_STAGE={stage()}); "
            "configure the real system, or remove it from BIANJIE_STANDINS"
        )
