import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

pytest_plugins = ("sphinx.testing.fixtures",)

IN_CI = os.environ.get("CI", "").lower() == "true"


def need(condition, why):
    """Skip when a real part is missing on a laptop; fail when it is missing in CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required under CI=true: {why}")
    pytest.skip(why)
