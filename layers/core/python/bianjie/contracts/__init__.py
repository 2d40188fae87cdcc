"""The domain events of every bianjie producer, as typed, versioned contracts.

One module per producer (``rx``, ``film``, ``pay``): the producer publishes only these models (through
its outbox) and owns their changes (policy: ``bianjie.kit.events``); consumers import them from here,
never from the producer's service package. ``REGISTRY`` knows every contract; a consumer may build a
smaller ``Registry`` of just the ones it reads.

A new producer adds ``contracts/<service>.py`` with its models and a ``CONTRACTS`` tuple, and lists it
below.
"""

from __future__ import annotations

from bianjie.contracts import consult, film, guide, pay, rx
from bianjie.kit.events import Registry

REGISTRY = Registry(*rx.CONTRACTS, *film.CONTRACTS, *pay.CONTRACTS, *guide.CONTRACTS, *consult.CONTRACTS)

__all__ = ["REGISTRY", "consult", "film", "guide", "pay", "rx"]
