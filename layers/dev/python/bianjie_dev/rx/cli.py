"""``bianjie rx ...``: the e-prescription demo on the local stack.

- ``bianjie rx walkthrough``: pre-check, sign, upload, release, pharmacy authorization, review, dispense,
  then a refused revoke; every request printed with its answer.
- ``bianjie rx e-credential``: a stand-in 医保电子凭证 token for the demo patient (or ``--id-number``).
- ``bianjie rx token doctor|pharmacist|patient``: a fresh demo token (the seeded ones last 12 hours).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bianjie_dev.cli.main import load_deployment, stack_file, use_deployment


def _state_dir(args: argparse.Namespace) -> Path:
    return stack_file(args).parent


def _ec_token(args: argparse.Namespace, id_number: str, name: str, ttl: int = 300) -> str:
    use_deployment(args)
    from bianjie.rx import wiring
    from bianjie.rx.ecredential import Person

    return str(wiring.rx_ecredentials().issue(Person("01", id_number, name), ttl=ttl))


def cmd_e_credential(args: argparse.Namespace) -> int:
    from bianjie_dev.rx.demo import PATIENT_ID, PATIENT_NAME

    print(_ec_token(args, args.id_number or PATIENT_ID, args.name or PATIENT_NAME, args.ttl))
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from bianjie.kit.tokens import MAX_TTL

    from bianjie_dev.cli.tokens import for_cli, issue_token

    path = _state_dir(args) / "rx" / f"demo-{args.who}.json"
    if not path.is_file():
        raise SystemExit(
            f"no rx demo {args.who} at {path}: the stack was started without rx's demo data (make run seeds it)"
        )
    demo = json.loads(path.read_text())
    issuer = for_cli(args)
    if args.who == "doctor":
        token = issue_token(issuer, demo["code"], "staff", ["doctor"], ttl_seconds=MAX_TTL, hospital=demo["hospital"])
    elif args.who == "pharmacist":
        token = issue_token(
            issuer, demo["code"], "staff", ["pharmacist"], ttl_seconds=MAX_TTL, hospital=demo["pharmacy"]
        )
    else:
        token = issue_token(issuer, "demo-patient", "patient", ttl_seconds=MAX_TTL, id_ref=demo["id_ref"])
    print(token)
    return 0


def cmd_walkthrough(args: argparse.Namespace) -> int:
    from bianjie_dev.rx.client import Demo, RxHttp, demo_prescription, settlement

    deployment = load_deployment(args)
    assert deployment is not None
    base = args.base or deployment.gateway_url
    if not base:
        raise SystemExit("the deployment names no gateway URL; pass --base")
    demo = Demo.load(_state_dir(args))
    http = RxHttp(base)
    now = datetime.now(UTC).astimezone().isoformat(timespec="seconds")
    hosp_rxno = args.hosp_rxno or f"WALK-{datetime.now(UTC):%H%M%S%f}"
    ok = True

    def show(step: str, answer: Any, expect: int = 200) -> Any:
        nonlocal ok
        mark = "ok " if answer.status == expect else "!! "
        ok = ok and answer.status == expect
        print(f"{mark}{step}: {answer.status}")
        print("    " + json.dumps(answer.body, ensure_ascii=False)[:600])
        return answer.body

    pre = show(
        "1 hospital pre-checks (POST /rx/precheck)",
        http.send("POST", "/rx/precheck", demo_prescription(demo, hosp_rxno, now), partner=demo.hospital),
    )
    if not ok:
        return 1
    rx_id = pre["rx_id"]
    show(
        "2 doctor signs (GET .../document, POST .../signature)", http.sign(rx_id, demo.doctor["token"], demo.doctor_key)
    )
    show(
        "3 hospital uploads (POST /rx/prescriptions)",
        http.send(
            "POST",
            "/rx/prescriptions",
            {"trace_code": pre["trace_code"], "hi_rxno": pre["hi_rxno"]},
            partner=demo.hospital,
        ),
    )
    show(
        "4 hospital releases it for an outside pharmacy (POST .../confirmation)",
        http.send("POST", f"/rx/prescriptions/{rx_id}/confirmation", {"mode": "external"}, partner=demo.hospital),
    )
    ec = _ec_token(args, demo.patient["id_number"], demo.patient["patient_name"])
    auth = show(
        "5 pharmacy reads the patient's e-credential (POST /rx/authorizations)",
        http.send("POST", "/rx/authorizations", {"ec_token": ec}, partner=demo.pharmacy),
    )
    auth_id = auth.get("authorization_id", "") if isinstance(auth, dict) else ""
    show(
        "6 pharmacist reviews (POST .../review)",
        http.send(
            "POST",
            f"/rx/prescriptions/{rx_id}/review",
            {"authorization_id": auth_id, "result": "pass"},
            token=demo.pharmacist["token"],
        ),
    )
    show(
        "7 pharmacy uploads the dispense result (POST .../dispense)",
        http.send(
            "POST",
            f"/rx/prescriptions/{rx_id}/dispense",
            {"authorization_id": auth_id, **settlement(f"SETL-{hosp_rxno}", now)},
            partner=demo.pharmacy,
        ),
    )
    show(
        "8 the doctor tries to revoke it now: refused (POST .../revoke)",
        http.send(
            "POST", f"/rx/prescriptions/{rx_id}/revoke", {"reason": "演示: 已取药后撤销"}, token=demo.doctor["token"]
        ),
        expect=409,
    )
    show(
        "9 the patient sees it (GET /rx/me/prescriptions)",
        http.send("GET", "/rx/me/prescriptions", token=demo.patient["token"]),
    )
    bundle = http.send("GET", f"/rx/prescriptions/{rx_id}/fhir", partner=demo.hospital)
    print(
        f"{'ok ' if bundle.status == 200 else '!! '}10 FHIR export: {bundle.status}, "
        f"{len((bundle.body or {}).get('entry', []))} resources"
    )
    print(f"prescription {rx_id}: audit trail with `bianjie audit verify --service rx`")
    return 0 if ok and bundle.status == 200 else 1


def register(subparsers: Any) -> None:
    from bianjie_dev.cli.main import _deployment_flags

    rx = subparsers.add_parser("rx", help="e-prescription demo (医保电子处方)").add_subparsers(
        dest="command", required=True
    )
    p = rx.add_parser("walkthrough", help="walk one prescription through the whole path on the local stack")
    p.add_argument("--base", help="gateway URL (default: the local stack's)")
    p.add_argument("--hosp-rxno", help="the hospital's prescription number (default: a fresh one)")
    _deployment_flags(p)
    p.set_defaults(func=cmd_walkthrough)
    p = rx.add_parser("e-credential", help="a stand-in 医保电子凭证 token (what a pharmacy scans)")
    p.add_argument("--id-number", help="the insured person's ID number (default: the demo patient)")
    p.add_argument("--name")
    p.add_argument("--ttl", type=int, default=300)
    _deployment_flags(p)
    p.set_defaults(func=cmd_e_credential)
    p = rx.add_parser("token", help="a fresh demo staff or patient token")
    p.add_argument("who", choices=["doctor", "pharmacist", "patient"])
    _deployment_flags(p)
    p.set_defaults(func=cmd_token)
