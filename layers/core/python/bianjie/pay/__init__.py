"""Credit pay-later payment (医保信用就医无感支付): agreements, charges, channel callbacks, refunds,
hospital webhooks, the pending-charge sweeper and daily reconciliation. See docs/pay.md."""
