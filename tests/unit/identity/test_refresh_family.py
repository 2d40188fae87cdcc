"""Property: whatever order a client and a thief present a family's refresh tokens in, a spent token's
reuse revokes the whole family, and nothing of the family works afterwards."""

from __future__ import annotations

from bianjie.identity.errors import OAuthError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.identity.conftest import World


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=12))
def test_reuse_revokes_the_family(world: World, picks: list[int]) -> None:
    code, verifier, _ = world.code()
    issued = [world.redeem(code, verifier)["refresh_token"]]
    spent: set[str] = set()
    revoked = False
    for pick in picks:
        token = issued[min(pick, len(issued) - 1)]
        try:
            answer = world.refresh(token)
        except OAuthError as exc:
            assert exc.error == "invalid_grant"
            assert revoked or token in spent
            revoked = True
            spent.add(token)
            continue
        assert not revoked and token not in spent, "a spent token or a revoked family must never refresh"
        spent.add(token)
        issued.append(answer["refresh_token"])
    if revoked:
        for token in issued:
            try:
                world.refresh(token)
            except OAuthError:
                continue
            raise AssertionError("a revoked family still refreshed")
