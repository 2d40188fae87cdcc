"""Partner request signatures: canonical form, every rejection code, rotation, nonce handling."""

from __future__ import annotations

import base64

import pytest
from bianjie.kit.crypto import DEFAULT_SM2_USER_ID, Sm2PrivateKey, backend, sm2_generate_key, sm2_verify, sm3
from bianjie.kit.crypto.sm2_curve import z_value
from bianjie.kit.documents.memory import MemoryDocumentStore
from bianjie.kit.errors import AppError
from bianjie.kit.partners import PartnerRegistry
from bianjie.kit.signing import (
    NonceStore,
    PartnerVerifier,
    canonical_path,
    canonical_query,
    canonical_request,
    format_authorization,
    iter_reason_codes,
    parse_authorization,
    sign_request,
)
from bianjie.kit.tables import table_spec

from tests.fakes import Clock

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z


# ------------------------------------------------------------------ the worked example (docs/partner-api.md)

EXAMPLE_PRIVATE_KEY = "3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8"
EXAMPLE_PUBLIC_KEY = (
    "0409f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020"
    "ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13"
)
EXAMPLE_METHOD = "POST"
EXAMPLE_PATH = "/film/v1/links"
EXAMPLE_QUERY = "tag=%E8%83%B8%E9%83%A8&lang=zh-CN&note=CT+chest&tag=a%20b&empty="
EXAMPLE_BODY = b'{"study_uid":"1.2.840.113619.2.55.3.604688119","expires_in":3600}'
EXAMPLE_APP, EXAMPLE_SERIAL, EXAMPLE_TS, EXAMPLE_NONCE = "demo-hospital", "1", 1767225600, "Qm9yZWFsLW5vbmNlLTAwMQ"
EXAMPLE_BODY_SM3 = "0256a445027ff99b975f353f8e53bbdc1e2fb93ca17c1f8583269328455d0bf6"
EXAMPLE_CANONICAL = (
    "SM2-SM3\n"
    "POST\n"
    "/film/v1/links\n"
    "empty=&lang=zh-CN&note=CT%20chest&tag=%E8%83%B8%E9%83%A8&tag=a%20b\n"
    "demo-hospital\n"
    "1\n"
    "1767225600\n"
    "Qm9yZWFsLW5vbmNlLTAwMQ\n"
    "0256a445027ff99b975f353f8e53bbdc1e2fb93ca17c1f8583269328455d0bf6"
)
# One signature made with the key above (SM2 signatures are randomised; any valid one verifies).
EXAMPLE_SIGNATURE = "MEYCIQClKTC2lSKYuTDRCncah9bT8kBpPr0MeuS/SQLVqIADsAIhAKwSIV5a6wSv1rmTWfE6ylZmThIBnk8AFZUMZLSH+osh"
EXAMPLE_AUTHORIZATION = (
    'SM2-SM3 app_id="demo-hospital", serial="1", timestamp="1767225600", '
    'nonce="Qm9yZWFsLW5vbmNlLTAwMQ", signature="' + EXAMPLE_SIGNATURE + '"'
)


def test_worked_example_intermediate_values() -> None:
    key = Sm2PrivateKey.from_hex(EXAMPLE_PRIVATE_KEY)
    assert key.public_key.to_hex() == EXAMPLE_PUBLIC_KEY
    assert sm3(EXAMPLE_BODY).hex() == EXAMPLE_BODY_SM3
    canonical = canonical_request(
        EXAMPLE_METHOD,
        EXAMPLE_PATH,
        EXAMPLE_QUERY,
        EXAMPLE_BODY,
        EXAMPLE_APP,
        EXAMPLE_SERIAL,
        EXAMPLE_TS,
        EXAMPLE_NONCE,
    )
    assert canonical.decode("utf-8") == EXAMPLE_CANONICAL
    signature = base64.b64decode(EXAMPLE_SIGNATURE)
    assert sm2_verify(key.public_key, canonical, signature)
    # the pure-Python second implementation agrees (what a from-scratch partner implementation does)
    assert backend("gmssl").sm2_verify(key.public_key, canonical, signature)
    assert parse_authorization(EXAMPLE_AUTHORIZATION).signature == signature


def test_worked_example_z_and_e_for_from_scratch_implementations() -> None:
    """Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA), e = SM3(Z || M): printed in the docs."""
    pub = Sm2PrivateKey.from_hex(EXAMPLE_PRIVATE_KEY).public_key
    z = z_value(DEFAULT_SM2_USER_ID, pub.x, pub.y, sm3)
    e = sm3(z + EXAMPLE_CANONICAL.encode())
    # Z of this key is the one GM/T 0003.5 prints for its example key
    assert z.hex() == "b2e14c5c79c6df5b85f4fe7ed8db7a262b9da7e07ccb0ea9f4747b8ccda8a4f3"
    assert e.hex() == "01d36cd97cdcc6a5408b2c2c01384219ba7948d24f3146e03cb9d9da48862afc"


def test_worked_example_verifies_through_the_verifier() -> None:
    v = make_verifier(clock=Clock(EXAMPLE_TS + 10))
    v.registry.add(EXAMPLE_APP, "Demo Hospital", EXAMPLE_PUBLIC_KEY, ["10.0.0.0/8"])
    verified = v.verifier.verify(
        EXAMPLE_METHOD,
        EXAMPLE_PATH,
        {"tag": ["胸部", "a b"], "lang": ["zh-CN"], "note": ["CT chest"], "empty": [""]},  # as API Gateway decodes
        {"authorization": EXAMPLE_AUTHORIZATION},
        EXAMPLE_BODY,
        "10.1.2.3",
    )
    assert (verified.app_id, verified.serial) == (EXAMPLE_APP, "1")


# ------------------------------------------------------------------ canonical query


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (None, ""),
        ("", ""),
        ({}, ""),
        ("a=1", "a=1"),
        ("b=2&a=1", "a=1&b=2"),
        # spaces: %20 and + both mean a space; canonical form is %20
        ("q=a%20b", "q=a%20b"),
        ("q=a+b", "q=a%20b"),
        ({"q": ["a b"]}, "q=a%20b"),
        # a literal plus must be sent as %2B
        ("q=1%2B1", "q=1%2B1"),
        ({"q": "1+1"}, "q=1%2B1"),
        # unicode: UTF-8 bytes, upper-case hex
        ("name=%e5%bc%a0", "name=%E5%BC%A0"),
        ({"name": ["张"]}, "name=%E5%BC%A0"),
        ({"城市": ["上海"]}, "%E5%9F%8E%E5%B8%82=%E4%B8%8A%E6%B5%B7"),
        # repeated names: sorted by value too
        ("t=b&t=a&t=c", "t=a&t=b&t=c"),
        ({"t": ["b", "a"]}, "t=a&t=b"),
        # empty values: "a", "a=" and "" all become "a="
        ("a&b=", "a=&b="),
        ({"a": [""], "b": None}, "a=&b="),
        # unreserved characters stay, reserved ones are encoded
        ({"k": ["-._~"]}, "k=-._~"),
        ({"k": ["a/b?c&d=e"]}, "k=a%2Fb%3Fc%26d%3De"),
        ({"k": ["*'()!"]}, "k=%2A%27%28%29%21"),
        # over-encoded unreserved characters are normalised
        ("k=%41%7E", "k=A~"),
        # sorting is by ENCODED name, byte-wise: "B" < "a" and "a" < "a%20" < "a_" ...
        ({"a": ["1"], "B": ["2"], "a_": ["3"], "a b": ["4"]}, "B=2&a=1&a%20b=4&a_=3"),
        # leading "?" and stray "&" are ignored
        ("?x=1&&y=2&", "x=1&y=2"),
    ],
)
def test_canonical_query(query: object, expected: str) -> None:
    assert canonical_query(query) == expected  # type: ignore[arg-type]


def test_canonical_query_raw_and_decoded_forms_agree() -> None:
    raw = "z=%E4%B8%AD+%E6%96%87&a=x%2By&a=&m=~"
    decoded = {"z": ["中 文"], "a": ["x+y", ""], "m": ["~"]}
    assert canonical_query(raw) == canonical_query(decoded) == "a=&a=x%2By&m=~&z=%E4%B8%AD%20%E6%96%87"


def test_canonical_request_layout() -> None:
    lines = canonical_request("get", "/p/a%2Fb", "", None, "app", "2", "123", "n" * 16).decode().split("\n")
    # servers see decoded paths (ASGI, API Gateway), so %2F cannot be told from "/" and signs as it
    assert lines == ["SM2-SM3", "GET", "/p/a/b", "", "app", "2", "123", "n" * 16, sm3(b"").hex()]
    assert lines[-1] == "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b"


@pytest.mark.parametrize("raw", ["/echo/%E5%BC%A0 x", "/echo/张 x", "/echo/%e5%bc%a0%20x"])
def test_paths_canonicalise_the_same_decoded_or_encoded(raw: str) -> None:
    assert canonical_path(raw) == "/echo/%E5%BC%A0%20x"


# ------------------------------------------------------------------ header parsing


def test_parse_authorization_tolerates_spacing() -> None:
    header = 'SM2-SM3 app_id="a1",serial="1" ,  timestamp="1" , nonce="abcdefghijklmnop",signature="AAAAAAAAAAA="'
    params = parse_authorization(header)
    assert (params.app_id, params.serial, params.timestamp, params.nonce) == ("a1", "1", "1", "abcdefghijklmnop")


@pytest.mark.parametrize(
    "header",
    [
        'HMAC-SHA256 app_id="a"',
        'SM2-SM3 app_id="a", serial="1", timestamp="1", nonce="abcdefghijklmnop"',  # no signature
        'SM2-SM3 app_id="a", serial="1", timestamp="1", nonce="short", signature="AAAAAAAAAAA="',
        'SM2-SM3 app_id="a", serial="x", timestamp="1", nonce="abcdefghijklmnop", signature="AAAAAAAAAAA="',
        'SM2-SM3 app_id="a", serial="0", timestamp="1", nonce="abcdefghijklmnop", signature="AAAAAAAAAAA="',
        'SM2-SM3 app_id="a", serial="1", timestamp="-1", nonce="abcdefghijklmnop", signature="AAAAAAAAAAA="',
        'SM2-SM3 app_id="a", serial="1", timestamp="1.5", nonce="abcdefghijklmnop", signature="AAAAAAAAAAA="',
        'SM2-SM3 app_id="a", serial="1", timestamp="1", nonce="abcdefghijklmnop!", signature="AAAAAAAAAAA="',
        'SM2-SM3 app_id="a", serial="1", timestamp="1", nonce="abcdefghijklmnop", signature="not base64!"',
        'SM2-SM3 app_id="a", serial="1", timestamp="1", nonce="abcdefghijklmnop", signature="AAAA"',  # too short
        'SM2-SM3 app_id="a b", serial="1", timestamp="1", nonce="abcdefghijklmnop", signature="AAAAAAAAAAA="',
        'SM2-SM3 app_id="a", app_id="b", serial="1", timestamp="1", nonce="abcdefghijklmnop", signature="AAAAAAAAAAA="',
        'SM2-SM3 app_id="a", serial="1", timestamp="1", nonce="abcdefghijklmnop", signature="AAAAAAAAAAA=", x="1"',
        "SM2-SM3 app_id=a, serial=1, timestamp=1, nonce=abcdefghijklmnop, signature=AAAAAAAAAAA=",  # unquoted
        "SM2-SM3",
        "SM2-SM3 " + "x" * 2000,
    ],
)
def test_malformed_headers(header: str) -> None:
    with pytest.raises(AppError) as err:
        parse_authorization(header)
    assert (err.value.status, err.value.code) == (401, "SIGNATURE_MALFORMED")


@pytest.mark.parametrize("header", [None, "", "   ", "Bearer abc.def.ghi"])
def test_missing_header(header: str | None) -> None:
    with pytest.raises(AppError) as err:
        parse_authorization(header)
    assert (err.value.status, err.value.code) == (401, "SIGNATURE_MISSING")


# ------------------------------------------------------------------ verifier


class Setup:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.store = MemoryDocumentStore(
            table_spec("PARTNERS_TABLE", "partners"), table_spec("NONCES_TABLE", "nonces"), clock=clock
        )
        self.registry = PartnerRegistry(self.store, "partners", clock=clock, cache_ttl=0)
        self.nonces = NonceStore(self.store, "nonces", clock=clock)
        self.verifier = PartnerVerifier(self.registry, self.nonces, clock=clock)

    def nonce_count(self) -> int:
        return len(self.store.items("nonces"))


def make_verifier(clock: Clock | None = None) -> Setup:
    return Setup(clock or Clock(NOW))


@pytest.fixture
def env() -> Setup:
    return make_verifier()


@pytest.fixture(scope="module")
def key1() -> Sm2PrivateKey:
    return sm2_generate_key()


@pytest.fixture(scope="module")
def key2() -> Sm2PrivateKey:
    return sm2_generate_key()


def signed(
    key: Sm2PrivateKey,
    *,
    app: str = "his-1",
    serial: str = "1",
    method: str = "POST",
    path: str = "/rx/v1/prescriptions",
    query: str = "hospital=h1",
    body: bytes = b'{"a":1}',
    timestamp: int = NOW,
    nonce: str | None = None,
) -> dict[str, str]:
    return sign_request(key, method, path, query, body, app, serial, timestamp=timestamp, nonce=nonce)


def verify(
    env: Setup,
    headers: dict[str, str],
    *,
    ip: str = "10.1.2.3",
    body: bytes = b'{"a":1}',
    query: object = "hospital=h1",
    method: str = "POST",
    path: str = "/rx/v1/prescriptions",
):
    return env.verifier.verify(method, path, query, headers, body, ip)  # type: ignore[arg-type]


def rejects(env: Setup, headers: dict[str, str], status: int, code: str, **kw: object) -> AppError:
    with pytest.raises(AppError) as err:
        verify(env, headers, **kw)  # type: ignore[arg-type]
    assert (err.value.status, err.value.code) == (status, code), err.value.message
    return err.value


def test_valid_request_verifies(env: Setup, key1: Sm2PrivateKey) -> None:
    env.registry.add("his-1", "HIS", key1.public_key.to_hex(), ["10.0.0.0/8"])
    verified = verify(env, signed(key1))
    assert (verified.app_id, verified.serial, verified.partner.name) == ("his-1", "1", "HIS")
    assert env.nonce_count() == 1


def test_query_as_decoded_mapping_or_raw_string(env: Setup, key1: Sm2PrivateKey) -> None:
    env.registry.add("his-1", "HIS", key1.public_key.to_hex(), ["0.0.0.0/0"])
    headers = signed(key1, query="b=%E4%B8%AD&a=1&a=2")
    verify(env, headers, query={"a": ["2", "1"], "b": ["中"]})
    headers = signed(key1, query="b=%E4%B8%AD&a=1&a=2")
    verify(env, headers, query="a=1&a=2&b=%e4%b8%ad")


def test_header_lookup_is_case_insensitive(env: Setup, key1: Sm2PrivateKey) -> None:
    env.registry.add("his-1", "HIS", key1.public_key.to_hex(), ["0.0.0.0/0"])
    verify(env, {"AUTHORIZATION": signed(key1)["Authorization"]})


def test_every_code_is_documented_once() -> None:
    codes = [c for c, _ in iter_reason_codes()]
    assert len(codes) == len(set(codes)) == 9


def test_rejects_missing_and_malformed(env: Setup) -> None:
    rejects(env, {}, 401, "SIGNATURE_MISSING")
    rejects(env, {"Authorization": "SM2-SM3 nonsense"}, 401, "SIGNATURE_MALFORMED")


@pytest.mark.parametrize("skew", [-301, 301, -10_000, 10**9])
def test_rejects_timestamp_outside_window(env: Setup, key1: Sm2PrivateKey, skew: int) -> None:
    env.registry.add("his-1", "HIS", key1.public_key.to_hex(), ["0.0.0.0/0"])
    err = rejects(env, signed(key1, timestamp=NOW + skew), 401, "TIMESTAMP_OUT_OF_WINDOW")
    assert err.details == {"server_time": NOW}
    assert env.nonce_count() == 0


@pytest.mark.parametrize("skew", [-300, 300, 0])
def test_accepts_timestamp_at_window_edges(env: Setup, key1: Sm2PrivateKey, skew: int) -> None:
    env.registry.add("his-1", "HIS", key1.public_key.to_hex(), ["0.0.0.0/0"])
    verify(env, signed(key1, timestamp=NOW + skew))


def test_rejects_unknown_app(env: Setup, key1: Sm2PrivateKey) -> None:
    rejects(env, signed(key1, app="nobody"), 401, "APP_UNKNOWN")


def test_rejects_disabled_app_and_reenables(env: Setup, key1: Sm2PrivateKey) -> None:
    env.registry.add("his-1", "HIS", key1.public_key.to_hex(), ["0.0.0.0/0"])
    env.registry.disable("his-1")
    rejects(env, signed(key1), 403, "APP_DISABLED")
    env.registry.enable("his-1")
    verify(env, signed(key1))


def test_rejects_ip_outside_allowlist(env: Setup, key1: Sm2PrivateKey) -> None:
    env.registry.add("his-1", "HIS", key1.public_key.to_hex(), ["10.0.0.0/8", "2001:db8::/32"])
    rejects(env, signed(key1), 403, "IP_NOT_ALLOWED", ip="192.168.1.1")
    rejects(env, signed(key1), 403, "IP_NOT_ALLOWED", ip="2001:db9::1")
    rejects(env, signed(key1), 403, "IP_NOT_ALLOWED", ip="not-an-ip")
    rejects(env, signed(key1), 403, "IP_NOT_ALLOWED", ip="")
    verify(env, signed(key1), ip="2001:db8::5")
    verify(env, signed(key1), ip="::ffff:10.9.9.9")  # IPv4-mapped IPv6 matches the IPv4 CIDR


def test_ip_check_happens_before_signature_verification(env: Setup, key1: Sm2PrivateKey) -> None:
    env.registry.add("his-1", "HIS", key1.public_key.to_hex(), ["10.0.0.0/8"])
    headers = signed(key1, body=b"other body")  # the signature would not verify either
    rejects(env, headers, 403, "IP_NOT_ALLOWED", ip="8.8.8.8")


def test_rejects_unknown_serial(env: Setup, key1: Sm2PrivateKey) -> None:
    env.registry.add("his-1", "HIS", key1.public_key.to_hex(), ["0.0.0.0/0"])
    rejects(env, signed(key1, serial="7"), 401, "KEY_UNKNOWN")


@pytest.mark.parametrize(
    "tamper",
    [
        {"body": b'{"a":2}'},
        {"query": "hospital=h2"},
        {"query": "hospital=h1&extra=1"},
        {"method": "PUT"},
        {"path": "/rx/v1/prescriptions/1"},
    ],
)
def test_rejects_tampered_request(env: Setup, key1: Sm2PrivateKey, tamper: dict) -> None:
    env.registry.add("his-1", "HIS", key1.public_key.to_hex(), ["0.0.0.0/0"])
    rejects(env, signed(key1), 401, "SIGNATURE_INVALID", **tamper)
    assert env.nonce_count() == 0


def test_rejects_signature_by_another_key(env: Setup, key1: Sm2PrivateKey, key2: Sm2PrivateKey) -> None:
    env.registry.add("his-1", "HIS", key1.public_key.to_hex(), ["0.0.0.0/0"])
    rejects(env, signed(key2), 401, "SIGNATURE_INVALID")


def test_rejects_tampered_header_fields(env: Setup, key1: Sm2PrivateKey) -> None:
    env.registry.add("his-1", "HIS", key1.public_key.to_hex(), ["0.0.0.0/0"])
    good = parse_authorization(signed(key1, nonce="n" * 20)["Authorization"])
    sig = base64.b64encode(good.signature).decode()
    for ts, nonce in ((str(NOW + 1), "n" * 20), (str(NOW), "m" * 20)):
        header = format_authorization("his-1", "1", ts, nonce, sig)
        rejects(env, {"Authorization": header}, 401, "SIGNATURE_INVALID")
    garbage = base64.b64encode(b"\x30\x06\x02\x01\x01\x02\x01\x01").decode()
    rejects(
        env,
        {"Authorization": format_authorization("his-1", "1", str(NOW), "n" * 20, garbage)},
        401,
        "SIGNATURE_INVALID",
    )


def test_rejects_replayed_nonce(env: Setup, key1: Sm2PrivateKey) -> None:
    env.registry.add("his-1", "HIS", key1.public_key.to_hex(), ["0.0.0.0/0"])
    headers = signed(key1, nonce="replay-me-0123456789")
    verify(env, headers)
    rejects(env, headers, 401, "NONCE_REPLAYED")
    # same nonce, freshly signed: still a replay
    rejects(env, signed(key1, nonce="replay-me-0123456789", timestamp=NOW + 1), 401, "NONCE_REPLAYED")


def test_nonces_are_per_app(env: Setup, key1: Sm2PrivateKey, key2: Sm2PrivateKey) -> None:
    env.registry.add("his-1", "HIS", key1.public_key.to_hex(), ["0.0.0.0/0"])
    env.registry.add("his-2", "HIS 2", key2.public_key.to_hex(), ["0.0.0.0/0"])
    verify(env, signed(key1, nonce="shared-nonce-000001"))
    verify(env, signed(key2, app="his-2", nonce="shared-nonce-000001"))


def test_nonce_forgotten_after_ttl(env: Setup, key1: Sm2PrivateKey) -> None:
    env.registry.add("his-1", "HIS", key1.public_key.to_hex(), ["0.0.0.0/0"])
    verify(env, signed(key1, nonce="ttl-nonce-00000001", timestamp=NOW))
    env.clock.t = NOW + 601  # past 2 * window: the timestamp can no longer pass, so the nonce may go
    rejects(env, signed(key1, nonce="ttl-nonce-00000001", timestamp=NOW), 401, "TIMESTAMP_OUT_OF_WINDOW")
    verify(env, signed(key1, nonce="ttl-nonce-00000001", timestamp=NOW + 601))


def test_nonce_is_recorded_only_after_a_valid_signature(env: Setup, key1: Sm2PrivateKey, key2: Sm2PrivateKey) -> None:
    """A forger who knows a nonce cannot burn it: failed checks record nothing."""
    env.registry.add("his-1", "HIS", key1.public_key.to_hex(), ["10.0.0.0/8"])
    nonce = "future-nonce-000001"
    rejects(env, signed(key2, nonce=nonce), 401, "SIGNATURE_INVALID")  # forged
    rejects(env, signed(key1, nonce=nonce, body=b"x"), 401, "SIGNATURE_INVALID")  # tampered
    rejects(env, signed(key1, nonce=nonce), 403, "IP_NOT_ALLOWED", ip="1.1.1.1")
    rejects(env, signed(key1, nonce=nonce, serial="9"), 401, "KEY_UNKNOWN")
    rejects(env, signed(key1, nonce=nonce, timestamp=NOW - 1000), 401, "TIMESTAMP_OUT_OF_WINDOW")
    assert env.nonce_count() == 0
    verify(env, signed(key1, nonce=nonce))  # the real partner's request still goes through
    assert env.nonce_count() == 1


# ------------------------------------------------------------------ key rotation


def test_key_rotation_overlap_and_retirement(env: Setup, key1: Sm2PrivateKey, key2: Sm2PrivateKey) -> None:
    env.registry.add("his-1", "HIS", key1.public_key.to_hex(), ["0.0.0.0/0"])
    serial2 = env.registry.rotate_key("his-1", key2.public_key.to_pem())
    assert serial2 == "2"
    # overlap: both serials verify, each with its own key
    verify(env, signed(key1, serial="1"))
    verify(env, signed(key2, serial="2"))
    # a signature must match the serial it names
    rejects(env, signed(key2, serial="1"), 401, "SIGNATURE_INVALID")
    env.registry.retire_key("his-1", "1")
    rejects(env, signed(key1, serial="1"), 401, "KEY_UNKNOWN")
    verify(env, signed(key2, serial="2"))


def test_registry_cache_is_short_lived() -> None:
    clock = Clock(NOW)
    mono = Clock(0.0)
    store = MemoryDocumentStore(
        table_spec("PARTNERS_TABLE", "partners"), table_spec("NONCES_TABLE", "nonces"), clock=clock
    )
    admin = PartnerRegistry(store, "partners", clock=clock)  # another container's registry
    cached = PartnerRegistry(store, "partners", clock=clock, cache_ttl=5.0, monotonic=mono)
    verifier = PartnerVerifier(cached, NonceStore(store, "nonces", clock=clock), clock=clock)
    key = sm2_generate_key()
    admin.add("his-1", "HIS", key.public_key.to_hex(), ["0.0.0.0/0"])
    verifier.verify("GET", "/x", None, signed(key, method="GET", path="/x", query="", body=b""), b"", "1.2.3.4")
    admin.disable("his-1")
    # within the TTL this container still has the old record...
    verifier.verify("GET", "/x", None, signed(key, method="GET", path="/x", query="", body=b""), b"", "1.2.3.4")
    mono.t = 5.1  # ...and sees the change once it expires
    with pytest.raises(AppError) as err:
        verifier.verify("GET", "/x", None, signed(key, method="GET", path="/x", query="", body=b""), b"", "1.2.3.4")
    assert err.value.code == "APP_DISABLED"


def test_docs_carry_the_worked_example() -> None:
    """docs/partner-api.md prints these values; keep it in step with the code."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[3] / "docs" / "partner-api.md").read_text(encoding="utf-8")
    for value in (
        EXAMPLE_PRIVATE_KEY,
        EXAMPLE_PUBLIC_KEY,
        EXAMPLE_QUERY,
        EXAMPLE_BODY.decode(),
        EXAMPLE_BODY_SM3,
        EXAMPLE_CANONICAL,
        EXAMPLE_AUTHORIZATION,
        base64.b64decode(EXAMPLE_SIGNATURE).hex()[:70],
    ):
        assert value in doc, value
    hex_block = doc.split("The same bytes in hex, to compare with yours:")[1].split("```")[1]
    assert hex_block.replace("\n", "") == EXAMPLE_CANONICAL.encode().hex()
