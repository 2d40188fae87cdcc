"""The channel stand-in's ledger rules that its charge path relies on without a pre-read: one debit per
out_trade_no, and a retried charge whose agreement has since ended still gets its trade back."""

from __future__ import annotations

import pytest
from bianjie.pay.models import Channel
from bianjie_dev.pay.standin import _Reject

from tests.unit.pay.conftest import World

OK = "6222000000001234"


def test_one_debit_per_out_trade_no_and_a_retry_after_termination_gets_its_trade(world: World) -> None:
    bank = world.standins[Channel.UNIONPAY]
    agreement = bank._sign({"account": OK, "user_ref": "u1"})["agreement_no"]
    first = bank._charge({"out_trade_no": "T-1", "agreement_no": agreement, "amount": 500})
    assert first["trade_state"] == "SUCCESS"
    again = bank._charge({"out_trade_no": "T-1", "agreement_no": agreement, "amount": 500})
    assert again == first  # the same trade, not a second debit
    bank._terminate({"agreement_no": agreement})
    assert bank._charge({"out_trade_no": "T-1", "agreement_no": agreement, "amount": 500}) == first
    with pytest.raises(_Reject) as refused:
        bank._charge({"out_trade_no": "T-2", "agreement_no": agreement, "amount": 500})
    assert refused.value.code == "AGREEMENT_TERMINATED"
    with pytest.raises(_Reject) as unknown:
        bank._charge({"out_trade_no": "T-3", "agreement_no": "NO-SUCH", "amount": 500})
    assert unknown.value.code == "AGREEMENT_NOT_FOUND"
    assert bank._trade("T-2") is None and bank._trade("T-3") is None
