"""Runs template.yaml without Docker: the HTTP gateway, the event pump, the scheduler, the local stack.

The gateway is production code: every on-premises function container runs it (Knative,
``containerConcurrency: 1``); the local stack runs all functions in one process with it.
"""
