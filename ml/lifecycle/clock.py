"""Where lifecycle code gets the time: a Clock (epoch seconds, UTC), never time.time() itself.

Why: the simulation replays weeks of trading in minutes and tests check cron fires, backoff
and lease expiry without waiting, so every lifecycle decision reads the injected clock.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Epoch seconds (UTC) and a sleep measured on the same clock."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The machine's wall clock."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, float(seconds)))


class SimulatedClock:
    """A clock that moves only when told: sleep advances it and returns at once."""

    def __init__(self, start: float):
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError(f"SimulatedClock.advance: seconds must be >= 0, got {seconds}")
        self._now += float(seconds)
        return self._now

    def set(self, t: float) -> None:
        self._now = float(t)

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, float(seconds)))
        await asyncio.sleep(0)


def iso(t: float) -> str:
    """Epoch seconds as an ISO 8601 UTC timestamp (what status and the audit log show)."""
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat()


def utc(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc)
