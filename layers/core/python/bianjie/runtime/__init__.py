"""Runs template.yaml without Docker, in production: the HTTP gateway, API Gateway events, invocation,
template reading, the event pump, the scheduler and the on-premises entry (``python -m bianjie.runtime.serve``).

Every on-premises function container runs the gateway (Knative, ``containerConcurrency: 1``). The local
stack that runs all functions in one process over moto is tooling: ``bianjie_dev.runtime``.
"""
