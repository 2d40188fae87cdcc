"""Fakes shared across test tiers."""

from __future__ import annotations


class Clock:
    """A clock the test moves by hand: ``clock.t = ...``; calling it returns the time (epoch seconds)."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t
