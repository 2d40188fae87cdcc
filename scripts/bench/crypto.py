"""Per-operation cost of the crypto backends (native ``openssl`` vs pure-Python ``gmssl``), and of a
patient/staff token's verification as every request with a bearer token pays it (``token_*``: the whole
``TokenVerifier.verify``, JSON and claims parsing included, on the default backend).

Run: ``.venv/bin/python scripts/bench/crypto.py [--backend openssl|gmssl] [--quick]``

Prints a table and, as its last line, one JSON object whose keys are ``<backend>_<op>_ms``
(milliseconds per operation, median of the timed rounds). Each round runs an operation for a fixed
wall-clock slice, so fast and slow operations both get stable figures; the whole run stays well
under a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from bianjie.kit.crypto import CryptoBackend, backend

KB = bytes(range(256)) * 4
KEY = bytes(range(16))
IV = bytes(range(16, 32))
NONCE = bytes(12)
DATA_KEY = bytes(range(32))
USER_ID = b"1234567812345678"

# (rounds, seconds per round) per backend: gmssl ops take 10-30 ms, so it gets fewer, longer rounds.
PLAN = {"openssl": (5, 0.08), "gmssl": (3, 0.35)}
QUICK_PLAN = {"openssl": (3, 0.03), "gmssl": (2, 0.1)}

Op = Callable[[], object]


def operations(be: CryptoBackend) -> dict[str, Op]:
    key = be.sm2_generate_key()
    public = key.public_key
    message = KB[:200]
    sealed = be.sm4_gcm_encrypt(KEY, NONCE, KB, b"aad")
    cbc = be.sm4_cbc_encrypt(KEY, IV, KB)
    signature = be.sm2_sign(key, message, USER_ID)
    wrapped = be.sm2_encrypt(public, DATA_KEY)
    return {
        "sm3_1kb": lambda: be.sm3(KB),
        "hmac_sm3_1kb": lambda: be.hmac_sm3(KEY, KB),
        "sm4_gcm_encrypt_1kb": lambda: be.sm4_gcm_encrypt(KEY, NONCE, KB, b"aad"),
        "sm4_gcm_decrypt_1kb": lambda: be.sm4_gcm_decrypt(KEY, NONCE, sealed, b"aad"),
        "sm4_cbc_encrypt_1kb": lambda: be.sm4_cbc_encrypt(KEY, IV, KB),
        "sm4_cbc_decrypt_1kb": lambda: be.sm4_cbc_decrypt(KEY, IV, cbc),
        "sm2_sign": lambda: be.sm2_sign(key, message, USER_ID),
        "sm2_verify": lambda: be.sm2_verify(public, message, signature, USER_ID),
        "sm2_encrypt_32b": lambda: be.sm2_encrypt(public, DATA_KEY),
        "sm2_decrypt_32b": lambda: be.sm2_decrypt(key, wrapped),
    }


def token_operations() -> dict[str, Op]:
    from bianjie.kit.tokenkeys import ES256, SM2_SM3, LocalTokenSigner, PublicKeySet
    from bianjie.kit.tokens import TokenIssuer, TokenVerifier

    ops: dict[str, Op] = {}
    for alg, label in ((SM2_SM3, "sm2"), (ES256, "es256")):
        signer = LocalTokenSigner.generate(alg)
        issuer = TokenIssuer(signer)
        verifier = TokenVerifier(PublicKeySet([signer.public_key]))
        token = issuer.issue("p-1", "staff", ["doctor"], hospital="h-1")
        ops[f"token_verify_{label}"] = lambda v=verifier, t=token: v.verify(t)
        ops[f"token_issue_{label}"] = lambda i=issuer: i.issue("p-1", "staff", ["doctor"], hospital="h-1")
    return ops


def measure(op: Op, rounds: int, seconds: float) -> float:
    """Median seconds per call over ``rounds`` rounds of about ``seconds`` each."""
    op()  # warm caches (key objects, imports) outside the timing
    start = time.perf_counter()
    op()
    single = max(time.perf_counter() - start, 1e-7)
    calls = max(1, int(seconds / single))
    per_call = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            op()
        per_call.append((time.perf_counter() - start) / calls)
    return statistics.median(per_call)


def human(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:8.1f} µs"
    return f"{seconds * 1e3:8.2f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=sorted(PLAN), action="append", help="repeatable; default both")
    parser.add_argument("--quick", action="store_true", help="shorter rounds, noisier figures")
    args = parser.parse_args()
    names = args.backend or list(PLAN)
    plan = QUICK_PLAN if args.quick else PLAN

    print(f"# crypto benchmark {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"# {platform.platform()} cpus={os.cpu_count()} python={platform.python_version()}")

    began = time.perf_counter()
    results: dict[str, dict[str, float]] = {}
    for name in names:
        rounds, seconds = plan[name]
        results[name] = {op: measure(fn, rounds, seconds) for op, fn in operations(backend(name)).items()}

    rounds, seconds = plan["openssl"]
    tokens = {op: measure(fn, rounds, seconds) for op, fn in token_operations().items()}

    ops = list(next(iter(results.values())))
    header = f"{'operation':<22}" + "".join(f"{n + ' per op':>15}{n + ' ops/s':>15}" for n in names)
    if len(names) == 2:
        header += f"{'ratio':>9}"
    print(header)
    print("-" * len(header))
    for op in ops:
        line = f"{op:<22}"
        for n in names:
            t = results[n][op]
            line += f"{human(t):>15}{1 / t:>15,.0f}"
        if len(names) == 2:
            line += f"{results[names[1]][op] / results[names[0]][op]:>8.0f}x"
        print(line)
    print(f"{'token (default backend)':<22}{'per op':>15}{'ops/s':>15}")
    for op, t in tokens.items():
        print(f"{op:<22}{human(t):>15}{1 / t:>15,.0f}")
    print(f"# {time.perf_counter() - began:.1f} s total")

    figures = {f"{n}_{op}_ms": float(f"{results[n][op] * 1e3:.4g}") for n in names for op in ops}
    figures.update({f"{op}_ms": float(f"{t * 1e3:.4g}") for op, t in tokens.items()})
    print(json.dumps(figures, sort_keys=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
