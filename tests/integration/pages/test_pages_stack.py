"""The patient and staff pages on the local stack as `make run` starts it, in headless Chromium
(web/pages/browser/flows.mjs): what a person sees (text present, nothing drawn over other text at
375 px, nothing wider than the phone), axe-core with zero serious violations, no script error and
nothing the Content-Security-Policy blocked, and each flow's effect on the services' own APIs."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bianjie.guide.model import CST
from bianjie_dev.cli.tokens import issue_token, via_gateway
from bianjie_dev.runtime.child import StackProcess, project_root

ROOT = project_root()
BROWSER = ROOT / "web" / "pages" / "browser"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    subprocess.run(["make", "-s", "web"], cwd=ROOT, check=True, capture_output=True, timeout=600)
    proc = StackProcess(tmp_path_factory.mktemp("pages-stack"), seed=["pages"])
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def chromium() -> str:
    done = subprocess.run([str(ROOT / "scripts" / "chromium.sh")], capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def node() -> str:
    found = shutil.which("node")
    assert found, "node is needed for the browser tests (README: Node 20)"
    return found


def patient_token(stack: StackProcess, subject: str) -> str:
    return issue_token(via_gateway(stack.url), subject, "patient", requested_by="system:test.pages")


def flow(stack: StackProcess, chromium: str, name: str, token: str, shots: Path) -> dict[str, Any]:
    done = subprocess.run(
        [
            node(),
            "flows.mjs",
            name,
            "--base",
            stack.url,
            "--token",
            token,
            "--chromium",
            chromium,
            "--shots",
            str(shots),
        ],
        cwd=BROWSER,
        capture_output=True,
        text=True,
        timeout=180,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def assert_clean(result: dict[str, Any]) -> None:
    assert result["ok"], result["errors"]
    assert result["errors"] == [], result["errors"]
    assert result["csp_violations"] == [], result["csp_violations"]
    for name, seen in result["looks"].items():
        assert seen["axe"] == [], (name, seen["axe"])
        assert seen["layout"]["overlaps"] == [], (name, seen["layout"])
        assert not seen["layout"]["too_wide"], (name, seen["layout"])
        assert seen["layout"]["text_runs"] > 3, (name, "the page shows almost nothing")


def post_events(stack: StackProcess, events: list[dict[str, Any]]) -> None:
    path = stack.state_dir / f"events-{uuid.uuid4().hex}.json"
    path.write_text(json.dumps({"events": events}, ensure_ascii=False), encoding="utf-8")
    done = stack.cli("request", "POST", "/guide/events", "--app", "demo-hospital", "--data", str(path))
    assert done.stdout.startswith("200"), done.stdout + done.stderr


def test_pages_are_served_with_a_nonce_policy_and_no_inline_script(stack: StackProcess) -> None:
    with urllib.request.urlopen(f"{stack.url}/pages/home", timeout=30) as response:
        policy = response.headers["Content-Security-Policy"]
        body = response.read().decode()
    nonce = policy.split("'nonce-")[1].split("'")[0]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    scripts = body.count("<script")
    assert scripts >= 1 and body.count(f'<script nonce="{nonce}"') == scripts
    assert 'src="./assets/' in body and "<script>" not in body  # nothing inline: every script is a file
    with urllib.request.urlopen(f"{stack.url}/pages/home", timeout=30) as again:
        assert again.headers["Content-Security-Policy"] != policy  # a fresh nonce per response
    try:
        urllib.request.urlopen(f"{stack.url}/pages/no-such-page", timeout=30)
        raise AssertionError("an unknown page was served")
    except urllib.error.HTTPError as exc:
        assert exc.code == 404 and "页面不存在" in exc.read().decode()


def test_the_banner_links_each_page_with_a_demo_identity_in_the_fragment(stack: StackProcess) -> None:
    banner = (stack.state_dir / "stack.log").read_text(errors="replace")
    links = [line.split()[1] for line in banner.splitlines() if "/pages/" in line and line.strip().startswith("open")]
    names = {link.split("#")[0].rsplit("/", 1)[1] for link in links}
    # this service's pages, each with the demo patient's token; other services add their own pages
    # (identity's entry logs in itself; escort, wayfinding, consult... are tested by their own suites)
    assert {"home", "prefs", "pay", "rx"} <= names
    for link in links:
        path, _, fragment = link.partition("#")
        assert "token=" not in path  # a token never in the path or query: it would reach logs
        if path.rsplit("/", 1)[1] in {"home", "prefs", "pay", "rx", "rx-doctor", "rx-hospital", "rx-pharmacy"}:
            assert fragment.startswith("token=")
    staff = {link.split("#")[0].rsplit("/", 1)[1]: link.partition("#")[2] for link in links}
    assert {"rx-doctor", "rx-hospital", "rx-pharmacy"} <= set(staff)  # the desk: doctor, clerk, pharmacist
    assert "&key=" in staff["rx-doctor"]  # the stand-in of the doctor's USB key, local stage only


def test_patient_home_shows_todo_cards_and_the_board_moves_when_an_event_arrives(
    stack: StackProcess, chromium: str, tmp_path: Path
) -> None:
    patient, visit = f"p-pages-{uuid.uuid4().hex[:6]}", f"V-PAGES-{uuid.uuid4().hex[:6]}"
    now = datetime.now(CST).replace(microsecond=0)

    def ev(n: int, type_: str, minutes_ago: int, **data: Any) -> dict[str, Any]:
        return {
            "event_id": f"{visit}-{n}",
            "type": type_,
            "visit_id": visit,
            "occurred_at": (now - timedelta(minutes=minutes_ago)).isoformat(),
            "data": data,
        }

    booked = ev(
        1,
        "visit.booked",
        120,
        department="心内科",
        doctor="李医生",
        appointment_at=(now - timedelta(minutes=30)).isoformat(),
        place_poi="rj.out.3f.cardio",
        place_name="门诊楼3楼心内科",
    )
    booked["patient_id"] = patient
    post_events(stack, [booked, ev(2, "visit.checked_in", 40), ev(3, "queue.updated", 38, queue_position=2)])

    proc = subprocess.Popen(
        [
            node(),
            "flows.mjs",
            "guide",
            "--base",
            stack.url,
            "--token",
            patient_token(stack, patient),
            "--chromium",
            chromium,
            "--shots",
            str(tmp_path),
        ],
        cwd=BROWSER,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin and proc.stdout
    first = proc.stdout.readline()
    if not first.startswith("READY"):
        proc.kill()
        raise AssertionError(first + proc.stdout.read() + (proc.stderr.read() if proc.stderr else ""))
    before = json.loads(first.split(" ", 1)[1])
    assert "候诊中" in before["state"] and "前面还有2位" in before["next"].replace(" ", ""), before
    # the doctor has seen the patient and the HIS bills ¥56.00: the open page must show it by itself
    post_events(
        stack,
        [
            ev(4, "visit.consulted", 5),
            ev(
                5,
                "payment.pending",
                1,
                order_id=f"{visit}-O1",
                amount_fen=5600,
                place_poi="rj.out.1f.cashier",
                place_name="门诊楼1楼收费处",
            ),
        ],
    )
    proc.stdin.write("go\n")
    proc.stdin.flush()
    out, _ = proc.communicate(timeout=120)
    result = json.loads(out.strip().splitlines()[-1])
    assert_clean(result)
    steps = result["steps"]
    assert steps["url_after_token"].endswith("/pages/home") and steps["token_in_session"]  # the fragment is gone
    assert "待缴费" in steps["after"]["state"] and "¥56.00" in steps["after"]["next"], steps["after"]
    assert any("¥56.00" in card and "门诊楼1楼收费处" in card for card in steps["after"]["cards"]), steps["after"]
    assert any("已就诊" in line for line in steps["after"]["timeline"]), steps["after"]["timeline"]
    assert "已更新" in steps["after"]["announced"], steps["after"]  # screen readers hear the change
    assert steps["update_ms"] < 20000
    home = result["looks"]["home-updated"]["text"]
    for words in (
        "待办",
        "就诊动态",
        "下一步",
        "去往：门诊楼1楼收费处",
        "签到",
        "预问诊",
        "缴费",
        "电子发票",
        "就诊进度",
    ):
        assert words in home, words
    assert steps["font_px"][1] > steps["font_px"][0] and steps["pressed"] == ["true", "true"]
    assert steps["first_tab"] == "跳到主要内容" and steps["after_skip"] == "main"


def test_patient_sets_quiet_hours_answers_the_subscribe_sheet_and_keeps_typing_across_login(
    stack: StackProcess, chromium: str, tmp_path: Path
) -> None:
    result = flow(stack, chromium, "prefs", patient_token(stack, f"p-pages-{uuid.uuid4().hex[:6]}"), tmp_path)
    assert_clean(result)
    steps = result["steps"]
    assert steps["saved"]["quiet_hours"]["start"] == "21:30" and "survey" in steps["saved"]["muted"], steps["saved"]
    assert "便捷就医 申请" in steps["sheet"] and "允许" in steps["sheet"] and "总是保持以上选择" in steps["sheet"]
    ledger = " ".join(steps["ledger"])
    assert "待缴费提醒" in ledger and "可接收 1 条" in ledger, steps["ledger"]
    assert "登录" in steps["login"] and steps["login_url"].endswith("/pages/login"), steps
    assert steps["restored_end"] == "07:15"  # typed before the sign-in ran out, there again after


def test_patient_signs_two_agreements_reorders_them_and_terminates_one(
    stack: StackProcess, chromium: str, tmp_path: Path
) -> None:
    result = flow(stack, chromium, "pay", patient_token(stack, f"p-pages-{uuid.uuid4().hex[:6]}"), tmp_path)
    assert_clean(result)
    steps = result["steps"]
    assert steps["sign_url"].endswith("/pages/pay-sign?channel=UNIONPAY")
    assert steps["empty_errors"] == ["错误：请填写银行卡号", "错误：请先阅读并同意协议"]
    assert "CHANNEL_REJECTED" in steps["refused"]["slot"] and "渠道拒绝" in steps["refused"]["field"]
    assert "签约成功（****1234）" in steps["notice_1"]
    assert steps["order_signed"] == ["UNIONPAY", "HUIMIN"]  # the default order: bank card first
    assert steps["order_arrows"] == ["HUIMIN", "UNIONPAY"] and "第1位 惠民就医" in steps["announced"]
    assert steps["focus_after_move"], "focus is lost after moving an agreement"
    assert steps["order_drag"] == ["UNIONPAY", "HUIMIN"]
    assert steps["server_order"] == [[1, "UNIONPAY"], [2, "HUIMIN"]]  # what charges will try, in order
    assert "解约 惠民就医？" in steps["confirm"] and steps["after_cancel"] == ["UNIONPAY", "HUIMIN"]
    assert steps["after_terminate"] == ["UNIONPAY"] and "已解约" in steps["ended"][0]


def released_prescription(stack: StackProcess) -> tuple[Any, Any, str]:
    """A prescription for rx's demo patient, pre-checked, signed, uploaded and released for an outside
    pharmacy, the way the hospital HIS and the doctor's workstation do it."""
    from bianjie_dev.rx.client import Demo, RxHttp, demo_prescription

    demo, http = Demo.load(stack.state_dir), RxHttp(stack.url)
    now = datetime.now(CST).isoformat(timespec="seconds")
    pre = http.send(
        "POST", "/rx/precheck", demo_prescription(demo, f"PG-{uuid.uuid4().hex[:10]}", now), partner=demo.hospital
    )
    assert pre.status == 200, pre.body
    rx_id = pre.body["rx_id"]
    assert http.sign(rx_id, demo.doctor["token"], demo.doctor_key).status == 200
    upload = {"trace_code": pre.body["trace_code"], "hi_rxno": pre.body["hi_rxno"]}
    assert http.send("POST", "/rx/prescriptions", upload, partner=demo.hospital).status == 200
    released = http.send("POST", f"/rx/prescriptions/{rx_id}/confirmation", {"mode": "external"}, partner=demo.hospital)
    assert released.status == 200 and released.body["status"] == "released", released.body
    return demo, http, rx_id


def test_patient_shows_the_e_credential_code_and_sees_the_prescription_dispensed(
    stack: StackProcess, chromium: str, tmp_path: Path
) -> None:
    from bianjie_dev.rx.client import settlement

    demo, http, rx_id = released_prescription(stack)
    token = issue_token(
        via_gateway(stack.url),
        f"p-pages-{uuid.uuid4().hex[:6]}",
        "patient",
        requested_by="system:test.pages",
        id_ref=demo.patient["id_ref"],
    )
    proc = subprocess.Popen(
        [
            node(),
            "flows.mjs",
            "rx",
            "--rx",
            rx_id,
            "--base",
            stack.url,
            "--token",
            token,
            "--chromium",
            chromium,
            "--shots",
            str(tmp_path),
        ],
        cwd=BROWSER,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin and proc.stdout
    first = proc.stdout.readline()
    if not first.startswith("READY"):
        proc.kill()
        raise AssertionError(first + proc.stdout.read())
    ec_token = json.loads(first.split(" ", 1)[1])["ec_token"]
    # the pharmacy scans the code the page shows: it holds the prescription, the pharmacist reviews, it dispenses
    auth = http.send("POST", "/rx/authorizations", {"ec_token": ec_token}, partner=demo.pharmacy)
    assert auth.status == 200 and rx_id in [p["rx_id"] for p in auth.body["prescriptions"]], auth.body
    review = {"authorization_id": auth.body["authorization_id"], "result": "pass"}
    assert http.send("POST", f"/rx/prescriptions/{rx_id}/review", review, token=demo.pharmacist["token"]).status == 200
    now = datetime.now(CST).isoformat(timespec="seconds")
    dispense = {"authorization_id": auth.body["authorization_id"], **settlement(f"S-{uuid.uuid4().hex[:8]}", now)}
    done = http.send("POST", f"/rx/prescriptions/{rx_id}/dispense", dispense, partner=demo.pharmacy)
    assert done.status == 200 and done.body["status"] == "dispensed", done.body
    proc.stdin.write("go\n")
    proc.stdin.flush()
    out, _ = proc.communicate(timeout=120)
    result = json.loads(out.strip().splitlines()[-1])
    assert_clean(result)
    steps = result["steps"]
    assert (
        steps["status_before"] == "released" and "已流转，可院外购药" in steps["card"] and "院外购药" in steps["card"]
    )
    for words in ("处方笺", "张*", "内分泌科 / 王医生", "盐酸二甲双胍片", "每日2次"):
        assert words in steps["slip"], words
    assert steps["qr"]["w"] > 200 and "二维码" in steps["qr"]["alt"]
    assert steps["countdown"][0] != steps["countdown"][1] and "后刷新" in steps["countdown"][0]  # it counts down
    assert "已取药" in steps["card_after"], steps["card_after"]


def test_bought_in_hospital_the_home_page_shows_where_to_pick_up_and_the_prescription_dispensed(
    stack: StackProcess, chromium: str, tmp_path: Path
) -> None:
    from bianjie_dev.rx.client import Demo, RxHttp, demo_prescription, settlement

    demo, http = Demo.load(stack.state_dir), RxHttp(stack.url)
    patient, visit = f"p-pages-{uuid.uuid4().hex[:6]}", f"V-PAGES-{uuid.uuid4().hex[:6]}"
    now = datetime.now(CST).replace(microsecond=0)
    booked = {
        "event_id": f"{visit}-1",
        "type": "visit.booked",
        "visit_id": visit,
        "patient_id": patient,
        "occurred_at": (now - timedelta(hours=1)).isoformat(),
        "data": {"appointment_at": (now - timedelta(minutes=40)).isoformat(), "department": "内分泌科"},
    }
    post_events(
        stack,
        [
            booked,
            {
                "event_id": f"{visit}-2",
                "type": "visit.consulted",
                "visit_id": visit,
                "occurred_at": (now - timedelta(minutes=10)).isoformat(),
                "data": {},
            },
        ],
    )
    body = demo_prescription(
        demo,
        f"PG-{uuid.uuid4().hex[:10]}",
        now.isoformat(),
        visit={"visit_id": visit, "visit_time": (now - timedelta(minutes=30)).isoformat(), "biz_type": "01"},
    )
    pre = http.send("POST", "/rx/precheck", body, partner=demo.hospital)
    assert pre.status == 200, pre.body
    rx_id = pre.body["rx_id"]
    assert http.sign(rx_id, demo.doctor["token"], demo.doctor_key).status == 200
    upload = {"trace_code": pre.body["trace_code"], "hi_rxno": pre.body["hi_rxno"]}
    assert http.send("POST", "/rx/prescriptions", upload, partner=demo.hospital).status == 200
    token = issue_token(
        via_gateway(stack.url), patient, "patient", requested_by="system:test.pages", id_ref=demo.patient["id_ref"]
    )
    proc = subprocess.Popen(
        [
            node(),
            "flows.mjs",
            "pickup",
            "--rx",
            rx_id,
            "--base",
            stack.url,
            "--token",
            token,
            "--chromium",
            chromium,
            "--shots",
            str(tmp_path),
        ],
        cwd=BROWSER,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin and proc.stdout
    first = proc.stdout.readline()
    if not first.startswith("READY"):
        proc.kill()
        raise AssertionError(first + proc.stdout.read())
    # the patient pays at the cashier: the hospital settles it in the hospital (rx -> guide: medicine ready)
    confirm = {"mode": "in_hospital", **settlement(f"S-{uuid.uuid4().hex[:8]}", now.isoformat())}
    answer = http.send("POST", f"/rx/prescriptions/{rx_id}/confirmation", confirm, partner=demo.hospital)
    assert answer.status == 200 and answer.body["status"] == "dispensed", answer.body
    proc.stdin.write("go\n")
    proc.stdin.flush()
    out, _ = proc.communicate(timeout=120)
    result = json.loads(out.strip().splitlines()[-1])
    assert_clean(result)
    steps = result["steps"]
    assert any("取药" in card and "门诊楼1楼西药房" in card for card in steps["cards"]), steps["cards"]
    assert "待取药" in steps["state"], steps["state"]
    assert steps["rx_status"] == "dispensed" and "已取药" in steps["rx_card"], steps["rx_card"]
    assert result["looks"]["home-desktop"]["layout"]["width"] == 1280  # the desktop look, nothing wider


def test_patient_chooses_in_hospital_or_outside_purchase(stack: StackProcess, chromium: str, tmp_path: Path) -> None:
    from bianjie_dev.rx.client import Demo, RxHttp, demo_prescription

    demo, http = Demo.load(stack.state_dir), RxHttp(stack.url)
    now = datetime.now(CST).isoformat(timespec="seconds")
    pre = http.send(
        "POST", "/rx/precheck", demo_prescription(demo, f"PG-{uuid.uuid4().hex[:10]}", now), partner=demo.hospital
    )
    assert pre.status == 200, pre.body
    rx_id = pre.body["rx_id"]
    assert http.sign(rx_id, demo.doctor["token"], demo.doctor_key).status == 200
    upload = {"trace_code": pre.body["trace_code"], "hi_rxno": pre.body["hi_rxno"]}
    assert http.send("POST", "/rx/prescriptions", upload, partner=demo.hospital).status == 200
    token = issue_token(
        via_gateway(stack.url),
        f"p-pages-{uuid.uuid4().hex[:6]}",
        "patient",
        requested_by="system:test.pages",
        id_ref=demo.patient["id_ref"],
    )
    result = flow_args(stack, chromium, "choice", token, tmp_path, "--rx", rx_id)
    assert_clean(result)
    steps = result["steps"]
    assert steps["status_before"] == "valid" and steps["choices"] == ["在本院药房取药", "到院外定点药店购买"]
    assert "收费处结算" in steps["in_hospital"] and steps["pressed"] == "true"
    assert "已流转" in steps["card_after"] and steps["code_offered"]
    view = http.send("GET", f"/rx/prescriptions/{rx_id}", partner=demo.hospital)
    assert view.body["status"] == "released" and view.body["history"][-1]["by"].startswith("patient:")


def test_the_hospital_desk_settles_a_prescription_in_the_hospital(
    stack: StackProcess, chromium: str, tmp_path: Path
) -> None:
    from bianjie_dev.rx.client import Demo, RxHttp, demo_prescription

    demo, http = Demo.load(stack.state_dir), RxHttp(stack.url)
    now = datetime.now(CST).isoformat(timespec="seconds")
    pre = http.send(
        "POST", "/rx/precheck", demo_prescription(demo, f"PG-{uuid.uuid4().hex[:10]}", now), partner=demo.hospital
    )
    assert pre.status == 200, pre.body
    rx_id = pre.body["rx_id"]
    assert http.sign(rx_id, demo.doctor["token"], demo.doctor_key).status == 200
    upload = {"trace_code": pre.body["trace_code"], "hi_rxno": pre.body["hi_rxno"]}
    assert http.send("POST", "/rx/prescriptions", upload, partner=demo.hospital).status == 200
    clerk = banner_links(stack)["rx-hospital"].partition("#")[2].removeprefix("token=")
    result = flow_args(stack, chromium, "settle", clerk, tmp_path, "--rx", rx_id)
    assert_clean(result)
    steps = result["steps"]
    assert steps["button"].startswith("确认院内结算（¥") and "已院内结算" in steps["done"], steps
    assert steps["still_pending"] == 0
    view = http.send("GET", f"/rx/prescriptions/{rx_id}", partner=demo.hospital)
    assert view.body["status"] == "dispensed", view.body
    assert view.body["history"][-1]["by"].startswith("staff:demo-hospital/"), view.body["history"][-1]


def flow_args(stack: StackProcess, chromium: str, name: str, token: str, shots: Path, *args: str) -> dict[str, Any]:
    proc = run_flow(stack, chromium, shots, name, "--token", token, *args)
    out, err = proc.communicate(timeout=180)
    assert out.strip(), err
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def banner_links(stack: StackProcess) -> dict[str, str]:
    """The page links of the `make run` banner, by page name, fragment included."""
    banner = (stack.state_dir / "stack.log").read_text(errors="replace")
    links = [line.split()[1] for line in banner.splitlines() if "/pages/" in line and line.strip().startswith("open")]
    return {link.split("#")[0].rsplit("/", 1)[1]: link for link in links}


def run_flow(stack: StackProcess, chromium: str, shots: Path, name: str, *args: str) -> subprocess.Popen[str]:
    cmd = [node(), "flows.mjs", name, "--base", stack.url, "--chromium", chromium, "--shots", str(shots), *args]
    return subprocess.Popen(
        cmd, cwd=BROWSER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_done_when_a_new_user_follows_the_banner(stack: StackProcess, chromium: str, tmp_path: Path) -> None:
    """Issue 13's Done-when, from the banner's links: the demo patient's to-dos and dashboard move on a
    guidance event; they sign two agreements and reorder them; the demo doctor issues, with a pre-check
    problem fixed on the way, signs and uploads; the hospital releases it; the patient sees it and its QR
    code (and the pick-up to-do); the demo pharmacist authorizes from the code, reviews and dispenses; the
    patient sees it dispensed. Patients at 375 px, staff at 1280 px; every look clean and axe-clean."""
    from bianjie_dev.rx.demo import PATIENT_ID
    from bianjie_dev.rx.demo import PATIENT_NAME as RX_PATIENT_NAME

    links = banner_links(stack)
    assert {"rx-doctor", "rx-hospital", "rx-pharmacy"} <= set(links), sorted(links)
    fragment = {name: link.partition("#")[2] for name, link in links.items()}
    patient = fragment["home"].removeprefix("token=")
    assert RX_PATIENT_NAME == "张三"

    # 1. today's to-dos and the dashboard move when the medicine bill is paid (docs/pages.md's example)
    proc = run_flow(stack, chromium, tmp_path, "guide", "--token", patient)
    assert proc.stdin and proc.stdout
    first = proc.stdout.readline()
    if not first.startswith("READY"):
        proc.kill()
        raise AssertionError(first + proc.stdout.read())
    before = json.loads(first.split(" ", 1)[1])
    assert before["cards"], before  # today's to-do cards are there from the start
    paid = {
        "event_id": f"V-DEMO-TODAY-{uuid.uuid4().hex[:6]}",
        "type": "payment.paid",
        "visit_id": "V-DEMO-TODAY",
        "occurred_at": datetime.now(CST).replace(microsecond=0).isoformat(),
        "data": {"order_id": "V-DEMO-TODAY-O2"},
    }
    post_events(stack, [paid])
    proc.stdin.write("go\n")
    proc.stdin.flush()
    out, _ = proc.communicate(timeout=120)
    guide = json.loads(out.strip().splitlines()[-1])
    assert_clean(guide)
    assert (guide["steps"]["after"]["state"], guide["steps"]["after"]["next"]) != (before["state"], before["next"])

    # 2. two agreements signed and reordered
    pay = flow(stack, chromium, "pay", patient, tmp_path)
    assert_clean(pay)
    assert pay["steps"]["order_signed"] == ["UNIONPAY", "HUIMIN"]
    assert pay["steps"]["order_arrows"] == ["HUIMIN", "UNIONPAY"]
    assert pay["steps"]["server_order"] == [[1, "UNIONPAY"], [2, "HUIMIN"]]
    assert "处理中" in pay["steps"]["charge_states"] and "请不要重复缴费" in pay["steps"]["charge_states"]
    assert pay["steps"]["bills"], "the bills still to pay (or that there are none) are listed"

    # 3. the desk and the patient around it
    proc = run_flow(
        stack,
        chromium,
        tmp_path,
        "desk",
        "--token",
        patient,
        "--doctor",
        fragment["rx-doctor"],
        "--clerk",
        fragment["rx-hospital"].removeprefix("token="),
        "--pharmacist",
        fragment["rx-pharmacy"].removeprefix("token="),
        "--pid",
        PATIENT_ID,
        "--visit",
        "V-DEMO-TODAY",
    )
    out, _ = proc.communicate(timeout=240)
    desk = json.loads(out.strip().splitlines()[-1])
    assert_clean(desk)
    steps = desk["steps"]
    assert "身份证号不正确" in steps["problem"] and steps["problem_invalid"] == "true", steps["problem"]
    assert steps["problem_after"] and "事前审核通过" in steps["passed"]
    assert steps["signing_input"].startswith("bianjie-rx-sign/1") and "pdf_sm3=" in steps["signing_input"]
    assert "验签通过" in steps["verify"] and len(steps["signature"]) > 80
    assert "已上传医保" in steps["uploaded"]
    assert "盐酸二甲双胍片" in steps["hospital_card"] and "已流转" in steps["hospital_done"]
    assert steps["patient_released"] == "released" and steps["qr"]["w"] > 200
    assert any("取药" in card for card in steps["pickup_cards"]), steps["pickup_cards"]
    assert "张*" in steps["pharmacy_card"] and "驳回时请填写原因" in steps["reject_empty"]
    assert "已发药" in steps["pharmacy_done"] and "已取药" in steps["patient_after"]
    assert "撤销原因" in steps["revoke_empty"] and "已撤销" in steps["revoked"]
    for name in ("doctor-signed", "hospital-valid", "pharmacy-authorized"):
        assert desk["looks"][name]["layout"]["width"] == 1280, name  # the desktop layout, nothing wider
    from bianjie_dev.rx.client import Demo, RxHttp

    demo = Demo.load(stack.state_dir)
    view = RxHttp(stack.url).send("GET", f"/rx/prescriptions/{steps['rx_id']}", partner=demo.hospital)
    assert view.status == 200 and view.body["status"] == "dispensed", view.body
    assert [h["op"] for h in view.body["history"]][:4] == ["precheck", "sign", "upload", "release"]
    assert view.body["history"][0]["by"] == "staff:demo-hospital/D310001"  # the desk, audited as the doctor
