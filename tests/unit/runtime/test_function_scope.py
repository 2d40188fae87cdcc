"""Each function's environment and what is built from it, while many functions share one process."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from bianjie.kit import aws, deps
from bianjie.kit.config import PROCESS, FunctionScope, env, function_scope, require_env, settings
from bianjie.runtime.invoke import Function, lambda_environment
from bianjie.runtime.template import FunctionSpec


def test_env_reads_the_current_functions_environment_not_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONLY_IN_PROCESS", "p")
    mine = FunctionScope("Mine", {"MINE": "1"})
    with function_scope(mine):
        assert env("MINE") == "1"
        assert env("ONLY_IN_PROCESS") is None
        with pytest.raises(RuntimeError, match="ONLY_IN_PROCESS"):
            require_env("ONLY_IN_PROCESS")
    assert env("ONLY_IN_PROCESS") == "p" and env("MINE") is None


def test_settings_singletons_and_clients_are_cached_per_function() -> None:
    built: list[str] = []

    @deps.singleton
    def thing() -> str:
        built.append(env("WHO") or "")
        return f"thing of {env('WHO')}"

    a = FunctionScope(
        "A", {"WHO": "a", "AWS_REGION": "cn-north-1", "AWS_ACCESS_KEY_ID": "AKA", "AWS_SECRET_ACCESS_KEY": "s"}
    )
    b = FunctionScope(
        "B", {"WHO": "b", "AWS_REGION": "cn-northwest-1", "AWS_ACCESS_KEY_ID": "AKB", "AWS_SECRET_ACCESS_KEY": "s"}
    )
    with function_scope(a):
        assert thing() == "thing of a" and thing() == "thing of a"
        assert settings().region == "cn-north-1"
        client_a = aws.client("sqs")
        assert client_a._request_signer._credentials.access_key == "AKA"
    with function_scope(b):
        assert thing() == "thing of b"
        assert settings().region == "cn-northwest-1"
        client_b = aws.client("sqs")
        assert client_b is not client_a and client_b._request_signer._credentials.access_key == "AKB"
    assert built == ["a", "b"]
    deps.reset()
    with function_scope(a):
        thing()
    assert built == ["a", "b", "a"]


def test_the_scope_is_per_thread_of_execution() -> None:
    seen: dict[str, str | None] = {}
    scope = FunctionScope("T", {"X": "inside"})

    def worker() -> None:
        seen["other thread"] = env("X")

    with function_scope(scope):
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        seen["this thread"] = env("X")
    assert seen == {"other thread": None, "this thread": "inside"}


def spec(tmp_path: Path) -> FunctionSpec:
    (tmp_path / "app.py").write_text(
        "from bianjie.kit.config import env\n"
        "AT_IMPORT = env('GREETING')\n"
        "def handler(event, context):\n"
        "    return {'now': env('GREETING'), 'at_import': AT_IMPORT, 'fn': env('AWS_LAMBDA_FUNCTION_NAME')}\n"
    )
    return FunctionSpec("GreetFunction", tmp_path, "app.handler", "python3.11", 3, 128, {}, [])


def test_a_function_is_invoked_and_imported_in_its_own_scope(tmp_path: Path) -> None:
    s = spec(tmp_path)
    environment = {"GREETING": "你好", **lambda_environment(s, "cn-north-1", "bianjie-GreetFunction")}
    fn = Function(s, "cn-north-1", "bianjie-GreetFunction", environment)
    assert fn.invoke({}) == {"now": "你好", "at_import": "你好", "fn": "bianjie-GreetFunction"}
    assert env("GREETING") is None


def test_without_an_environment_a_function_reads_the_process_as_on_lambda(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("GREETING", "hi")
    fn = Function(spec(tmp_path), "cn-north-1")
    assert fn.scope is PROCESS
    assert fn.invoke({})["now"] == "hi"


def test_work_handed_to_a_pool_carries_the_function_with_it() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from bianjie.kit.config import carry_scope

    with function_scope(FunctionScope("P", {"X": "mine"})), ThreadPoolExecutor(2) as pool:
        assert list(pool.map(lambda _: env("X"), range(2))) == [None, None]  # why carry_scope exists
        assert list(pool.map(carry_scope(lambda _: env("X")), range(2))) == ["mine", "mine"]
