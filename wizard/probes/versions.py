"""What a bug report needs: the wizard's, Python's and the Jupyter packages' versions.

These are the versions of the interpreter that runs the wizard; a kernel's own
interpreter may differ (the kernelspecs check says which interpreter each one runs).
"""

import platform
import sys
from typing import Optional

from wizard import __version__
from wizard.system.packages import installed_version

# The distributions whose version decides how a kernel is started, watched and shown.
PACKAGES = ("jupyter_server", "jupyter_client", "ipykernel", "jupyterlab", "notebook", "psutil")

Versions = dict[str, Optional[str]]


def probe() -> Versions:
    """``{"wizard", "python", "platform", PACKAGE...}``; None for a package not installed."""
    out: Versions = {
        "wizard": __version__,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "executable": sys.executable or None,
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}".strip(),
    }
    for name in PACKAGES:
        out[name] = installed_version(name)
    return out
