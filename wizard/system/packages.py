"""Which version of a Python distribution this interpreter would import (its metadata)."""

from typing import Optional


def installed_version(name: str) -> Optional[str]:
    """The version of distribution ``name`` installed for this Python, or None."""
    try:
        from importlib import metadata
    except ImportError:  # pragma: no cover - every supported Python has it
        return None
    try:
        return metadata.version(name)
    except Exception:  # PackageNotFoundError, or metadata a broken install left behind
        return None
