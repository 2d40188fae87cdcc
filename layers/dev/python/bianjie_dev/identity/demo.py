"""Demo data for ``make run``: the provider's relying parties and the hospitals' entries.

Clients (secrets written to ``.local/identity/clients.json`` for the CLI, tests and the benchmark):
- ``demo-hospital-web``: 示范医院's internet hospital, a confidential RP (back-channel logout, token exchange);
- ``demo-hospital-workbench``: the same hospital's staff workbench (staff log in through the directory);
- ``bianjie-entry``: the platform's entry pages (``web/identity``, served at ``/pages/entry``; a public
  client: PKCE only, redirect ``<gateway>/pages/entry-callback``).
Entries: 示范医院 (an OIDC relying party: third-party-initiated login) and 第二医院 (no OIDC: launch tickets).
我的影像: a small chest CT with a report of the demo resident 张三 (the stand-in's ID number in the DICOM's
OtherPatientIDs, as a hospital's modality writes it), ingested into film, so the entry's 云影像 lists it.
"""

from __future__ import annotations

import json
from typing import Any

DEMO_RP_REDIRECT = "https://demo-hospital.example/oidc/callback"


def seed(stack: Any) -> None:
    from bianjie.identity import wiring
    from bianjie.identity.clients import Client
    from bianjie.identity.launch import Entry, MiniProgram
    from bianjie.kit.actor import Actor

    gateway = stack.gateway_url.rstrip("/")
    registry = wiring.clients()
    web_secret, web_digest = registry.new_secret()
    staff_secret, staff_digest = registry.new_secret()
    registry.register(
        Client(
            client_id="demo-hospital-web",
            name="示范医院互联网医院",
            hospital="demo-hospital",
            redirect_uris=(DEMO_RP_REDIRECT,),
            post_logout_redirect_uris=("https://demo-hospital.example/",),
            initiate_login_uri="https://demo-hospital.example/oidc/initiate",
            # back-channel logout to the STAND-IN receiver (records the logout token, answers 200)
            backchannel_logout_uri=f"{gateway}/identity/standin/backchannel/demo-hospital",
            secret_digest=web_digest,
            may_exchange=True,
        )
    )
    registry.register(
        Client(
            client_id="demo-hospital-workbench",
            name="示范医院医生工作台",
            hospital="demo-hospital",
            redirect_uris=(DEMO_RP_REDIRECT,),
            secret_digest=staff_digest,
            staff=True,
        )
    )
    registry.register(
        Client(
            client_id="bianjie-entry",
            name="上海市级医院互联网总平台",
            hospital=None,
            redirect_uris=(f"{gateway}/pages/entry-callback",),
            post_logout_redirect_uris=(f"{gateway}/pages/entry",),
        )
    )
    entries = wiring.entries()
    services = ("云影像", "先诊疗后付费", "检查报告", "多学科会诊", "云陪诊", "智能导诊", "院内导航")
    operator = Actor.system("demo")
    entries.put(
        operator,
        Entry(
            hospital="demo-hospital",
            name="示范医院",
            client_id="demo-hospital-web",
            h5_url="https://demo-hospital.example/ih",
            wechat=MiniProgram(app_id="wxdemo0001", path="pages/index/index"),
            alipay=MiniProgram(app_id="2021000000000001", path="pages/index/index"),
            app_scheme="demohospital://ih",
            services=services,
        ),
    )
    entries.put(
        operator,
        Entry(
            hospital="hospital-b",
            name="第二医院",
            h5_url="https://hospital-b.example/ih",
            wechat=MiniProgram(app_id="wxdemo0002", path="pages/home"),
            services=services[:3],
        ),
    )
    out = stack.options.local_dir / "identity"
    out.mkdir(parents=True, exist_ok=True)
    (out / "clients.json").write_text(
        json.dumps(
            {
                "demo-hospital-web": {"secret": web_secret, "redirect_uri": DEMO_RP_REDIRECT},
                "demo-hospital-workbench": {"secret": staff_secret, "redirect_uri": DEMO_RP_REDIRECT},
                "bianjie-entry": {"secret": None, "redirect_uri": f"{gateway}/pages/entry-callback"},
            },
            indent=2,
        )
    )
    _seed_resident_study(stack)
    stack.demo_urls.append(
        f"{gateway}/pages/entry   (随申办入口：登录、选医院、进入互联网医院、绑卡、云影像、授权管理、先诊疗后付费; "
        "?channel=wechat|alipay|app 换渠道)"
    )
    stack.demo_urls.append(f"{gateway}/identity/oidc/.well-known/openid-configuration   (申康统一认证 OIDC discovery)")
    stack.demo_urls.append(f"{gateway}/identity/entries   (互联网医院入口登记; `bianjie identity login` walks a login)")
    stack.demo_urls.append(
        f"{gateway}/identity/entries/demo-hospital/check   (联调自检与实测: demo-hospital-web's secret in "
        ".local/identity/clients.json)"
    )


RESIDENT_STUDY_ACCESSION = "SSB0001"


def _seed_resident_study(stack: Any) -> None:
    """A study of the stand-in resident 张三 at demo-hospital, ingested into film as any study is (the
    ingest bucket, then film's ingest), found by 我的影像 through the ID number's blind index."""
    import datetime as dt
    import tempfile
    from pathlib import Path

    from bianjie.film import assets
    from bianjie.film import wiring as film

    from bianjie_dev.film import testdata
    from bianjie_dev.identity.standin import RESIDENTS

    resident = RESIDENTS[0]
    objects = film.film_objects()
    dist = stack.options.root / "web" / "film" / "dist"
    if (dist / assets.ENTRY).is_file():  # the viewer bundle (film's own demo publishes it too; idempotent)
        assets.publish(objects, stack.deployment.ref("FilmWebBucket"), dist)
    spec = testdata.StudySpec(
        patient=testdata.Patient(name="Zhang^San=张^三", mrn="MRN-SSB-0001", id_card=resident.id_number),
        hospital="demo-hospital",
        accession=RESIDENT_STUDY_ACCESSION,
        description="胸部CT平扫",
        date=dt.date(2026, 9, 18),
        study_uid=testdata.UID_ROOT + "12.1",
    )
    bucket = stack.deployment.ref("FilmIngestBucket")
    ingest = film.film_ingest()
    with tempfile.TemporaryDirectory() as tmp:
        paths = testdata.write_study(Path(tmp), spec, ct_slices=8, mr_slices=0, us_frames=0)
        paths += testdata.write_reports(Path(tmp), spec, pdf=False, sr=True)
        keys = []
        for path in paths:
            key = f"demo-hospital/{spec.accession}/{path.name}"
            objects.client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
            keys.append(key)
    ingest.aggregate([ingest.ingest_object(bucket, k) for k in keys])
    out = stack.options.local_dir / "identity"
    out.mkdir(parents=True, exist_ok=True)
    (out / "resident-study.json").write_text(json.dumps({"study_uid": spec.study_uid, "resident": resident.key}))
