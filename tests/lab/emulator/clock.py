"""The emulator's notion of "now", shiftable at run time through ``POST /_lab/clock``.

Lab extensions (activation expiry, agent heartbeats, role-token lifetimes) read time from here
instead of the system clock, so a test can jump hours ahead without waiting or touching the
machine's clock.
"""

from __future__ import annotations

import datetime as _dt
import threading
import time as _time

_lock = threading.Lock()
_offset_seconds = 0.0


def set_offset(seconds: float) -> None:
    """Shift "now" by `seconds` relative to the real clock (replaces any earlier offset)."""
    global _offset_seconds
    with _lock:
        _offset_seconds = float(seconds)


def offset() -> float:
    """The current shift in seconds."""
    with _lock:
        return _offset_seconds


def time() -> float:
    """Shifted Unix time in seconds (like ``time.time()``)."""
    return _time.time() + offset()


def now() -> _dt.datetime:
    """Shifted current time as an aware UTC datetime."""
    return _dt.datetime.fromtimestamp(time(), tz=_dt.UTC)
