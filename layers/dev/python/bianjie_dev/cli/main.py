"""``bianjie``: the operator CLI. Works against the local stack by default (``.local/stack.json``)
and against any deployment with ``--aws-endpoint`` / ``--region`` / ``--table`` flags or the environment.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from bianjie.runtime import serve
from bianjie.runtime.deployment import Deployment
from bianjie.runtime.serve import project_root


def stack_file(args: argparse.Namespace) -> Path:
    state = os.environ.get("BIANJIE_STATE_DIR")
    return (
        Path(args.stack)
        if getattr(args, "stack", None)
        else (Path(state) / "stack.json" if state else project_root() / ".local" / "stack.json")
    )


def load_deployment(args: argparse.Namespace, required: bool = True) -> Deployment | None:
    path = stack_file(args)
    if not path.is_file():
        if required:
            raise SystemExit(f"no local stack state at {path}: start it with `make run`, or pass --stack")
        return None
    return Deployment.load(path)


def use_deployment(args: argparse.Namespace) -> None:
    """Point the kit's adapters at a deployment: the local stack's, or the one the flags name."""
    if getattr(args, "aws_endpoint", None) or getattr(args, "region", None) or os.environ.get("PARTNERS_TABLE"):
        if args.aws_endpoint:
            os.environ["BIANJIE_AWS_ENDPOINT_URL"] = args.aws_endpoint
        if args.region:
            os.environ["AWS_REGION"] = args.region
        for name, value in getattr(args, "table", None) or []:
            os.environ[name] = value
    else:
        from bianjie.runtime.template import load_template

        deployment = load_deployment(args)
        assert deployment is not None
        template = load_template(project_root() / "template.yaml")
        os.environ.update(deployment.function_environment(template))
        os.environ["AWS_REGION"] = deployment.region
        if deployment.aws_endpoint_url:
            os.environ["BIANJIE_AWS_ENDPOINT_URL"] = deployment.aws_endpoint_url
        # the local emulator enforces IAM: the CLI is the stack's operator principal
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.update(deployment.admin_credentials)
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            os.environ.setdefault(name, "local")
    from bianjie.kit import aws, deps
    from bianjie.kit.config import reset_settings

    reset_settings()
    aws.reset_clients()
    deps.reset()


# -- stack ------------------------------------------------------------------------------------------


def cmd_stack_run(args: argparse.Namespace) -> int:
    import logging

    from bianjie.kit.logging import configure_logging

    from bianjie_dev.runtime.stack import LocalStack, StackOptions

    configure_logging(os.environ.get("BIANJIE_LOG_LEVEL", "INFO"))
    logging.getLogger("botocore").setLevel(logging.WARNING)
    root = project_root()
    options = StackOptions.from_env(root, Path(args.template) if args.template else None)
    options.seed = not args.no_seed
    options.keep_emulator = args.keep_emulator
    options.resume = args.resume
    if args.seed is not None:
        options.seed_only = tuple(name.strip() for name in args.seed.split(",") if name.strip())
    stack = LocalStack(options)
    try:
        stack.start()
    except BaseException:
        stack.stop()
        raise
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a developer stops it: no traceback
        stack.run_forever()
    # The stack's work is stopped and its state file written; tearing down the interpreter's heap (a
    # second or more per gigabyte) would only delay the prompt and every test's teardown
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _get_json(url: str, method: str = "GET") -> Any:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def cmd_stack_info(args: argparse.Namespace) -> int:
    deployment = load_deployment(args)
    assert deployment is not None
    info: dict[str, Any] = {
        "gateway_url": deployment.gateway_url,
        "aws_endpoint_url": deployment.aws_endpoint_url,
        "region": deployment.region,
        "resources": {k: v["ref"] for k, v in deployment.resources.items()},
    }
    try:
        info["status"] = _get_json(f"{deployment.gateway_url}/_local/status")
    except (urllib.error.URLError, OSError):
        info["status"] = "not running"
    print(json.dumps(info, indent=2, ensure_ascii=False))
    return 0


def cmd_stack_fire(args: argparse.Namespace) -> int:
    deployment = load_deployment(args)
    assert deployment is not None
    try:
        query = urlencode({"name": args.name, **({"time": args.time} if args.time else {})})
        result = _get_json(f"{deployment.gateway_url}/_local/fire?{query}", method="POST")
    except urllib.error.HTTPError as exc:
        print(exc.read().decode(), file=sys.stderr)
        return 1
    print(json.dumps(result, ensure_ascii=False))
    return 0 if result.get("failures", 0) == 0 else 1


# -- partners ---------------------------------------------------------------------------------------


def _is_file(value: str) -> bool:
    # A long literal (a JSON body, a PEM) is not a file name; the OS says so with ENAMETOOLONG.
    try:
        return Path(value).is_file()
    except (OSError, ValueError):
        return False


def _file_or_literal(value: str) -> bytes:
    """A command-line value naming a file is the file's bytes; anything else is the text itself."""
    return Path(value).read_bytes() if _is_file(value) else value.encode("utf-8")


def _key_for(args: argparse.Namespace) -> tuple[str, Path | None]:
    """The public key to register: given, or generated with the private key written to --key-out."""
    from bianjie.kit.crypto import Sm2PublicKey, sm2_generate_key

    if args.public_key:
        text = _file_or_literal(args.public_key).decode("utf-8")
        key = Sm2PublicKey.from_pem(text) if "BEGIN" in text else Sm2PublicKey.from_hex(text.strip())
        return key.to_hex(), None
    private = sm2_generate_key()
    out = Path(args.key_out or f"{args.app_id}.key.pem")
    out.write_text(private.to_pem())
    os.chmod(out, 0o600)
    return private.public_key.to_hex(), out


def _audit_admin(action: str, app_id: str, **details: Any) -> None:
    """Partner registry changes are security events (等保: administrator actions are logged)."""
    import getpass

    from bianjie.kit import deps

    deps.audit_log("platform").record(
        actor=f"system:cli.{getpass.getuser()}",
        action=action,
        resource=f"partner:{app_id}",
        details={k: v for k, v in details.items() if v is not None},
    )


def cmd_partner_add(args: argparse.Namespace) -> int:
    use_deployment(args)
    from bianjie.kit import deps

    public_key, written = _key_for(args)
    serial = deps.partner_registry().add(args.app_id, args.name or args.app_id, public_key, args.cidr)
    _audit_admin("partner.add", args.app_id, key_serial=serial, cidrs=",".join(args.cidr))
    print(
        json.dumps(
            {
                "app_id": args.app_id,
                "key_serial": serial,
                "public_key": public_key,
                "private_key_file": str(written) if written else None,
                "allowed_cidrs": args.cidr,
            }
        )
    )
    return 0


def cmd_partner_list(args: argparse.Namespace) -> int:
    use_deployment(args)
    from bianjie.kit import deps

    registry = deps.partner_registry()
    partners, cursor = [], None
    while True:
        page = registry.list(limit=100, cursor=cursor)
        partners.extend(page.items)
        if not (cursor := page.cursor):
            break
    for partner in partners:
        serials = ",".join(f"{s}:{k.status}" for s, k in partner.keys.items())
        print(
            f"{partner.app_id}\t{partner.status}\tkeys={serials}\tcidrs={','.join(partner.allowed_cidrs)}\t"
            f"{partner.name}"
        )
    return 0


def cmd_partner_status(args: argparse.Namespace) -> int:
    use_deployment(args)
    from bianjie.kit import deps

    registry = deps.partner_registry()
    (registry.disable if args.command == "disable" else registry.enable)(args.app_id)
    _audit_admin(f"partner.{args.command}", args.app_id)
    print(f"{args.app_id}: {'disabled' if args.command == 'disable' else 'enabled'}")
    return 0


def cmd_partner_rotate(args: argparse.Namespace) -> int:
    use_deployment(args)
    from bianjie.kit import deps

    public_key, written = _key_for(args)
    serial = deps.partner_registry().rotate_key(args.app_id, public_key)
    _audit_admin("partner.rotate_key", args.app_id, key_serial=serial)
    print(
        json.dumps(
            {
                "app_id": args.app_id,
                "key_serial": serial,
                "public_key": public_key,
                "private_key_file": str(written) if written else None,
                "note": "older serials stay valid until `bianjie partner retire-key`",
            }
        )
    )
    return 0


def cmd_partner_retire(args: argparse.Namespace) -> int:
    use_deployment(args)
    from bianjie.kit import deps

    deps.partner_registry().retire_key(args.app_id, args.serial)
    _audit_admin("partner.retire_key", args.app_id, key_serial=args.serial)
    print(f"{args.app_id}: key serial {args.serial} retired")
    return 0


def cmd_partner_cidrs(args: argparse.Namespace) -> int:
    use_deployment(args)
    from bianjie.kit import deps

    deps.partner_registry().set_cidrs(args.app_id, args.cidr)
    _audit_admin("partner.set_cidrs", args.app_id, cidrs=",".join(args.cidr))
    print(f"{args.app_id}: allowed {', '.join(args.cidr)}")
    return 0


# -- signed requests --------------------------------------------------------------------------------


def _load_partner_key(args: argparse.Namespace) -> tuple[Any, str, str | None]:
    from bianjie.kit.crypto import Sm2PrivateKey

    if args.key_file:
        text = Path(args.key_file).read_text()
        if text.lstrip().startswith("{"):
            data = json.loads(text)
            return Sm2PrivateKey.from_pem(data["private_key_pem"]), str(data["key_serial"]), data.get("gateway_url")
        return Sm2PrivateKey.from_pem(text), args.serial or "1", None
    state = os.environ.get("BIANJIE_STATE_DIR")
    path = (Path(state) if state else project_root() / ".local") / "partners" / f"{args.app}.json"
    if not path.is_file():
        raise SystemExit(f"no key for {args.app}: pass --key-file (PEM or the partner JSON), looked in {path}")
    data = json.loads(path.read_text())
    return (
        Sm2PrivateKey.from_pem(data["private_key_pem"]),
        args.serial or str(data["key_serial"]),
        data.get("gateway_url"),
    )


def cmd_request(args: argparse.Namespace) -> int:
    from bianjie.kit.signing import sign_request

    key, serial, default_base = _load_partner_key(args)
    url = args.url
    if url.startswith("/"):
        base = (
            args.base
            or default_base
            or (load_deployment(args, required=False) or Deployment("", "", None, "http://127.0.0.1:3000")).gateway_url
        )
        if not base:
            raise SystemExit("the deployment names no gateway URL; pass --base")
        url = base.rstrip("/") + url
    parts = urlsplit(url)
    sign_path = parts.path
    if args.base and parts.path.startswith(urlsplit(args.base).path.rstrip("/")):
        sign_path = parts.path[len(urlsplit(args.base).path.rstrip("/")) :] or "/"
    if args.data == "-":
        body = sys.stdin.buffer.read()
    elif args.data:
        body = _file_or_literal(args.data)
    else:
        body = b""
    headers = sign_request(
        key,
        args.method.upper(),
        sign_path,
        parts.query,
        body,
        args.app,
        serial,
        timestamp=args.timestamp,
        nonce=args.nonce,
    )
    if body:
        headers.setdefault("Content-Type", "application/json")
    for item in args.header or []:
        name, _, value = item.partition(":")
        headers[name.strip()] = value.strip()
    request = urllib.request.Request(url, data=body or None, method=args.method.upper(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    print(status)
    print(payload.decode("utf-8", errors="replace"))
    return 0 if status < 400 else 1


# -- audit, keys, db --------------------------------------------------------------------------------


def cmd_audit_verify(args: argparse.Namespace) -> int:
    use_deployment(args)
    from bianjie.kit import deps

    audit = deps.audit_log("platform")
    reports = [audit.verify(args.chain)] if args.chain else audit.verify_all(args.service)
    ok = True
    for report in reports:
        print(json.dumps({**report.model_dump(mode="json"), "ok": report.ok}, ensure_ascii=False))
        ok = ok and report.ok
    print("audit chains intact" if ok else "AUDIT CHAIN PROBLEMS FOUND", file=sys.stderr)
    return 0 if ok else 2


def cmd_keys_init(args: argparse.Namespace) -> int:
    """Template parameters: the wrapped blind-index key (never printed clear) and, with --token-key, TokenJwks."""
    import base64

    import boto3

    kms = boto3.client("kms", region_name=args.region, endpoint_url=args.aws_endpoint)
    blob = kms.generate_data_key_without_plaintext(KeyId=args.kms_key_id, NumberOfBytes=32)["CiphertextBlob"]
    out = {"BlindIndexKeyWrapped": base64.b64encode(blob).decode()}
    if args.token_key:
        out["TokenJwks"] = _jwks_of_kms_keys(kms, args.token_key)
    print(json.dumps(out, indent=2))
    return 0


def _jwks_of_kms_keys(kms: Any, key_ids: list[str]) -> str:
    from bianjie.kit.tokenkeys import PublicKeySet, public_key_of_kms_key

    return PublicKeySet(public_key_of_kms_key(kms, key_id) for key_id in key_ids).to_json()


def cmd_keys_jwks(args: argparse.Namespace) -> int:
    """The TokenJwks parameter: the public keys of the token signing keys to accept (KMS key ids or
    on-premises public-key files), in rotation order: the current key, the next one, the retiring one."""
    from bianjie.kit.tokenkeys import PublicKeySet

    sets = []
    if args.kms_key_id:
        import boto3

        kms = boto3.client("kms", region_name=args.region, endpoint_url=args.aws_endpoint)
        sets.append(PublicKeySet.from_jwks(_jwks_of_kms_keys(kms, args.kms_key_id)))
    for path in args.jwk or []:
        sets.append(PublicKeySet.from_jwks(Path(path).read_text()))
    if not sets:
        raise SystemExit("name at least one --kms-key-id or --jwk")
    print(sets[0].merged(*sets[1:]).to_json())
    return 0


def cmd_keys_token_key(args: argparse.Namespace) -> int:
    """On premises: a new token signing key. Prints the private key wrapped by the master key (for the
    issuer's BIANJIE_TOKEN_SIGNING_KEY_WRAPPED only) and writes its public JWKS to --jwk-out."""
    import base64

    from bianjie.kit.keys import LocalKeyPort
    from bianjie.kit.tokenkeys import LocalTokenSigner, PublicKeySet

    signer = LocalTokenSigner.generate(args.alg)
    wrapped = LocalKeyPort.from_file(args.master_key_file).wrap(signer.to_pem().encode("ascii"))
    out = Path(args.jwk_out or f"token-key-{signer.public_key.kid}.jwks.json")
    out.write_text(PublicKeySet([signer.public_key]).to_json() + "\n")
    print(
        json.dumps(
            {
                "kid": signer.public_key.kid,
                "BIANJIE_TOKEN_SIGNING_KEY_WRAPPED": base64.b64encode(wrapped).decode(),
                "jwks": str(out),
            },
            indent=2,
        )
    )
    return 0


def cmd_db_migrate(args: argparse.Namespace) -> int:
    """Creates the PostgreSQL tables (on premises) for every DynamoDB table template.yaml declares."""
    from bianjie.kit.documents.postgres import PostgresDocumentStore
    from bianjie.kit.documents.schema import spec_from_template
    from bianjie.runtime.deployment import physical_name
    from bianjie.runtime.template import load_template

    template = load_template(
        Path(args.template) if args.template else project_root() / "template.yaml", serve.stage_parameters(args)
    )
    store = PostgresDocumentStore(args.dsn)
    for logical_id, resource in template.resources_of_type("AWS::DynamoDB::Table").items():
        name = physical_name(args.stack_name, logical_id, "table")
        store.ensure_table(spec_from_template(resource.get("Properties") or {}, name))
        print(f"{logical_id}\t{name}")
    return 0


def cmd_openapi(args: argparse.Namespace) -> int:
    from bianjie.runtime.template import load_template

    from bianjie_dev.runtime.openapi import write_openapi

    root = project_root()
    out = Path(args.out) if args.out else root / "docs" / "openapi.yaml"
    write_openapi(load_template(root / "template.yaml"), out)
    print(out)
    return 0


def cmd_tables(args: argparse.Namespace) -> int:
    """Writes bianjie/tables.json, the table specs functions register (keys, indexes, TTL), from the templates."""
    from bianjie.kit.tables import MANIFEST
    from bianjie.runtime.tables import write_table_manifest
    from bianjie.runtime.template import load_template

    out = Path(args.out) if args.out else MANIFEST
    write_table_manifest(load_template(project_root() / "template.yaml"), out)
    print(out)
    return 0


# -- parser -----------------------------------------------------------------------------------------


def _deployment_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stack", help="path of a stack.json (default: .local/stack.json)")
    p.add_argument("--aws-endpoint", help="AWS endpoint URL of a deployment (instead of the local stack)")
    p.add_argument("--region", help="AWS region of a deployment")
    p.add_argument(
        "--table",
        nargs=2,
        action="append",
        metavar=("ENV_NAME", "TABLE"),
        help="physical table name, e.g. --table PARTNERS_TABLE bianjie-prod-PartnersTable",
    )


def _register_service_commands(sub: Any) -> None:
    """Each service may add its commands through ``bianjie.<service>.cli.register(subparsers)``."""
    from bianjie_dev.runtime.services import service_modules

    for module in service_modules("cli"):
        module.register(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bianjie", description="bianjie operator CLI")
    sub = parser.add_subparsers(dest="group", required=True)

    stack = sub.add_parser("stack", help="the local stack").add_subparsers(dest="command", required=True)
    p = stack.add_parser("run", help="start moto, provision template.yaml, seed, serve (Ctrl-C stops)")
    p.add_argument("--template", help="another SAM template (default: template.yaml of the project)")
    p.add_argument("--no-seed", action="store_true", help="skip the demo data")
    p.add_argument("--seed", metavar="SERVICES", help="only these services' demo data, comma-separated (tests)")
    p.add_argument(
        "--keep-emulator",
        action="store_true",
        help="leave moto's server running when the stack stops or dies (its pid in emulator.json)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="attach to the emulator a --keep-emulator stack left (same state dir and ports): no provisioning",
    )
    p.set_defaults(func=cmd_stack_run)
    p = stack.add_parser("info", help="URLs, resources and live status of the local stack")
    p.add_argument("--stack")
    p.set_defaults(func=cmd_stack_info)
    p = stack.add_parser("fire", help="run a scheduled function now (name: Function or Function.Event)")
    p.add_argument("name")
    p.add_argument("--time", help="the scheduled event's time (ISO 8601 UTC), to run a schedule 'as of' then")
    p.add_argument("--stack")
    p.set_defaults(func=cmd_stack_fire)

    partner = sub.add_parser("partner", help="partner apps").add_subparsers(dest="command", required=True)
    p = partner.add_parser("add", help="register a partner app")
    p.add_argument("app_id")
    p.add_argument("--name")
    p.add_argument("--public-key", help="SM2 public key: hex 04||X||Y, PEM text, or a file; omit to generate")
    p.add_argument("--key-out", help="where to write a generated private key (PEM)")
    p.add_argument("--cidr", action="append", required=True, help="allowed source network (repeatable)")
    _deployment_flags(p)
    p.set_defaults(func=cmd_partner_add)
    p = partner.add_parser("list")
    _deployment_flags(p)
    p.set_defaults(func=cmd_partner_list)
    for command in ("disable", "enable"):
        p = partner.add_parser(command)
        p.add_argument("app_id")
        _deployment_flags(p)
        p.set_defaults(func=cmd_partner_status)
    p = partner.add_parser("rotate-key", help="add a new key serial; older serials keep working until retired")
    p.add_argument("app_id")
    p.add_argument("--public-key")
    p.add_argument("--key-out")
    _deployment_flags(p)
    p.set_defaults(func=cmd_partner_rotate)
    p = partner.add_parser("retire-key", help="stop accepting a key serial")
    p.add_argument("app_id")
    p.add_argument("serial")
    _deployment_flags(p)
    p.set_defaults(func=cmd_partner_retire)
    p = partner.add_parser("set-cidrs", help="replace the allowlist")
    p.add_argument("app_id")
    p.add_argument("--cidr", action="append", required=True)
    _deployment_flags(p)
    p.set_defaults(func=cmd_partner_cidrs)

    p = sub.add_parser("request", help="sign and send a partner request; prints status and body")
    p.add_argument("method")
    p.add_argument("url", help="absolute URL, or a path on the local gateway")
    p.add_argument("--app", required=True, help="partner app id")
    p.add_argument("--data", help="body: a file, '-' for stdin, or literal text")
    p.add_argument("--key-file", help="private key PEM, or a partner JSON from .local/partners")
    p.add_argument("--serial", help="key serial (default: from the partner JSON, else 1)")
    p.add_argument("--nonce")
    p.add_argument("--timestamp", type=int)
    p.add_argument("--base", help="API base URL (e.g. with a stage); the signed path is relative to it")
    p.add_argument("--header", action="append", help="extra header 'Name: value'")
    p.add_argument("--timeout", type=float, default=30)
    p.add_argument("--stack")
    p.set_defaults(func=cmd_request)

    audit = sub.add_parser("audit", help="the audit log").add_subparsers(dest="command", required=True)
    p = audit.add_parser("verify", help="check the SM3 chains; exit 2 if any record was edited/removed/reordered")
    p.add_argument("--chain", help="one chain, e.g. platform#2026-11-22")
    p.add_argument("--service", help="only this service's chains")
    _deployment_flags(p)
    p.set_defaults(func=cmd_audit_verify)

    keys = sub.add_parser("keys", help="deployment secrets").add_subparsers(dest="command", required=True)
    p = keys.add_parser("init", help="template parameters: wrapped blind-index key, and TokenJwks")
    p.add_argument("--kms-key-id", required=True, help="the master key (MasterKey)")
    p.add_argument("--token-key", action="append", help="a token signing KMS key (TokenSigningKey); repeatable")
    p.add_argument("--region")
    p.add_argument("--aws-endpoint")
    p.set_defaults(func=cmd_keys_init)
    p = keys.add_parser("jwks", help="the TokenJwks parameter from the token signing keys to accept")
    p.add_argument("--kms-key-id", action="append", help="a KMS signing key (repeatable)")
    p.add_argument("--jwk", action="append", help="a JWKS file (on premises: from `keys token-key`; repeatable)")
    p.add_argument("--region")
    p.add_argument("--aws-endpoint")
    p.set_defaults(func=cmd_keys_jwks)
    p = keys.add_parser("token-key", help="on premises: a new token signing key, wrapped by the master key")
    p.add_argument("--master-key-file", required=True)
    p.add_argument("--alg", choices=["SM2-SM3", "ES256"], default="SM2-SM3")
    p.add_argument("--jwk-out", help="where to write the public JWKS")
    p.set_defaults(func=cmd_keys_token_key)

    db = sub.add_parser("db", help="PostgreSQL (on premises)").add_subparsers(dest="command", required=True)
    p = db.add_parser("migrate", help="create the tables template.yaml declares")
    p.add_argument("--dsn", required=True)
    p.add_argument("--stack-name", default="bianjie")
    p.add_argument("--template")
    p.add_argument("--stage", help="the template's Stage (default: $BIANJIE_STAGE, else the template's default)")
    p.set_defaults(func=cmd_db_migrate)
    p = sub.add_parser("serve", help="on-premises gateway: serve functions of the template over HTTP")
    serve.add_arguments(p)  # the production entry is `python -m bianjie.runtime.serve`; same code
    p.set_defaults(func=serve.run)

    _register_service_commands(sub)
    from bianjie_dev.ops import cli as ops_cli  # operations (issue 20): not a service, so named here

    ops_cli.register(sub)

    p = sub.add_parser("openapi", help="write the OpenAPI document of every HTTP function")
    p.add_argument("--out", help="default: docs/openapi.yaml")
    p.set_defaults(func=cmd_openapi)

    p = sub.add_parser(
        "tables", help="write bianjie/tables.json (table specs by environment variable) from the templates"
    )
    p.add_argument("--out", help="default: layers/core/python/bianjie/tables.json")
    p.set_defaults(func=cmd_tables)
    return parser


def main(argv: list[str] | None = None) -> int:
    import logging

    logging.getLogger("botocore").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
