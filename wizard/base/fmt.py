"""Small formatting helpers shared by the rules and the renderers."""

from __future__ import annotations


def size(n: float | None) -> str:
    """Bytes as a short human string: 1.9 GiB, 512 MiB, 900 KiB."""
    if n is None:
        return "?"
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            if unit == "B":
                return f"{int(n)} B"
            return f"{n:.1f} {unit}" if abs(n) < 10 else f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.0f} TiB"  # not reached; keeps linters happy


def duration(seconds: float | None) -> str:
    """Seconds as 45s, 12m, 3h 05m, 2d 4h."""
    if seconds is None:
        return "?"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def percent(part: float | None, whole: float | None) -> float | None:
    if part is None or not whole:
        return None
    return 100.0 * part / whole


def parse_duration(text: str) -> float:
    """'30m', '2h', '45s', '1d', '90' (seconds) -> seconds; ValueError otherwise."""
    text = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text and text[-1] in units:
        value, mult = text[:-1], units[text[-1]]
    else:
        value, mult = text, 1
    seconds = float(value) * mult
    if seconds < 0 or seconds != seconds:
        raise ValueError(text)
    return seconds


def parse_size(text: str) -> int:
    """'500M', '2G', '1.5GiB', '100000' (bytes) -> bytes; ValueError otherwise."""
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    if t and t[-1] in units:
        value, mult = t[:-1], units[t[-1]]
    else:
        value, mult = t, 1
    n = int(float(value) * mult)
    if n <= 0:
        raise ValueError(text)
    return n


def parse_iso(stamp: object) -> float | None:
    """Epoch seconds of an ISO 8601 time such as 2026-11-23T18:44:21.123456Z; None if unreadable."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
