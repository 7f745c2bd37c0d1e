"""Injected failures: the ``--faults`` spec and the seeded draw that decides each request's fate.

Spec: comma-separated ``kind=value`` items, e.g.
``429=0.1,503=0.05,500=0.02,reset=0.02,commit-then-500=0.02,commit-then-reset=0.02,latency=20ms``.

- ``429``, ``503``, ``500``: answer that status (with the error body) instead of
  handling the request; 429 and 503 carry ``Retry-After``.
- ``reset``: close the connection without any answer.
- ``commit-then-500``, ``commit-then-reset``: handle a write (POST, PUT, PATCH)
  and store it, then answer 500 / close the connection instead of the success.
- ``latency``: delay every API request by this long (``20ms``, ``0.5s``).
- ``retry-after``: the seconds 429 and 503 faults ask the client to wait
  (default 1).

Every value is a probability between 0 and 1, among the requests the kind can
apply to: 429, 503, 500 and reset apply to every API request (authenticated and
not throttled); commit-then-* apply to the writes that reached the service and
succeeded (nothing is stored otherwise), which is why they are drawn apart.
Each API request draws two numbers from ``random.Random(seed)``, whatever its
kind and fate: the first picks among 429, 503, 500 and reset, the second among
the commit-then kinds, each kind taking a slice of [0, 1) in the order above.
So the same seed and the same sequence of requests give the same faults, and
each kind happens at its configured rate; the probabilities of each group add
up to at most 1.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

#: The order of this tuple is the order of the slices of [0, 1): part of the
#: reproducibility contract, so append new kinds at the end.
KINDS = ("429", "503", "500", "reset", "commit-then-500", "commit-then-reset")
ANSWER_KINDS = KINDS[:4]
COMMIT_KINDS = KINDS[4:]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*$")


@dataclass(frozen=True)
class FaultSpec:
    rates: dict[str, float] = field(default_factory=dict)
    latency: float = 0.0  # seconds
    retry_after: int = 1  # seconds

    @property
    def active(self) -> bool:
        return any(self.rates.values())

    def describe(self) -> str:
        parts = [f"{k}={self.rates[k]:g}" for k in KINDS if self.rates.get(k)]
        if self.latency:
            parts.append(f"latency={self.latency * 1000:g}ms")
        # Always given, so that what GET /_sandbox/faults shows posts back unchanged.
        if self.retry_after != 1 or parts:
            parts.append(f"retry-after={self.retry_after}")
        return ",".join(parts) or "none"


def parse_faults(text: str | None) -> FaultSpec:
    """The spec in ``text``; raises ValueError with a message fit for the user."""
    rates: dict[str, float] = {}
    latency = 0.0
    retry_after = 1
    if (text or "").strip().lower() == "none":  # what describe() says of no faults
        return FaultSpec()
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not value:
            raise ValueError(f"'{item}' is not kind=value")
        if key == "latency":
            match = _DURATION.match(value)
            if not match:
                raise ValueError(f"latency '{value}' is not a duration such as 20ms or 0.5s")
            latency = float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)
        elif key == "retry-after":
            if not value.isdigit():
                raise ValueError(f"retry-after '{value}' is not a whole number of seconds")
            retry_after = int(value)
        elif key in KINDS:
            try:
                rate = float(value)
            except ValueError:
                raise ValueError(f"{key} '{value}' is not a probability between 0 and 1") from None
            if not 0 <= rate <= 1:
                raise ValueError(f"{key} '{value}' is not a probability between 0 and 1")
            rates[key] = rate
        else:
            known = ", ".join((*KINDS, "latency", "retry-after"))
            raise ValueError(f"unknown fault '{key}' (known: {known})")
    for group in (ANSWER_KINDS, COMMIT_KINDS):
        if sum(rates.get(kind, 0.0) for kind in group) > 1 + 1e-9:
            raise ValueError(f"the probabilities of {', '.join(group)} add up to more than 1")
    return FaultSpec(rates=rates, latency=latency, retry_after=retry_after)


class FaultDice:
    """One seeded generator per sandbox; the event loop is its only user, so no lock."""

    def __init__(self, spec: FaultSpec, seed: int | None) -> None:
        self.spec = spec
        self.seed = seed
        self._random = random.Random(seed)

    def draw(self) -> tuple[str | None, str | None]:
        """This request's fate: a fault instead of the answer, and a fault after
        a successful write (which the caller applies only to such writes)."""
        if not self.spec.active:
            return None, None
        return self._pick(ANSWER_KINDS), self._pick(COMMIT_KINDS)

    def _pick(self, kinds: tuple[str, ...]) -> str | None:
        point = self._random.random()
        edge = 0.0
        for kind in kinds:
            edge += self.spec.rates.get(kind, 0.0)
            if point < edge:
                return kind
        return None
