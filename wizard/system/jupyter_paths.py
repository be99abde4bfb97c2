"""Jupyter's runtime and data directories, found the way jupyter_core 5 finds them.

jupyter_core is not imported: it pulls in platformdirs and costs start-up time, and
the wizard may run in a Python that has no Jupyter at all. The paths returned are
system paths; probes read them through ``SysRoot``.
"""

from __future__ import annotations

import os
import sys

_FALSE = ("no", "n", "false", "off", "0", "0.0")


def _envset(name: str, default: bool = False) -> bool:
    if name not in os.environ:
        return default
    return os.environ[name].lower() not in _FALSE


def _home() -> str:
    return os.path.realpath(os.path.expanduser("~"))


def _appname() -> str:
    # jupyter_core capitalises only on Windows and on macOS outside Homebrew.
    if sys.platform == "win32" or (
        sys.platform == "darwin" and not sys.prefix.startswith("/opt/homebrew")
    ):
        return "Jupyter"
    return "jupyter"


def config_dir() -> str:
    env = os.environ
    if env.get("JUPYTER_CONFIG_DIR"):
        return env["JUPYTER_CONFIG_DIR"]
    return os.path.join(_home(), ".jupyter")


def data_dir() -> str:
    """The user's Jupyter data dir (``jupyter --data-dir``)."""
    env = os.environ
    if env.get("JUPYTER_DATA_DIR"):
        return env["JUPYTER_DATA_DIR"]
    if _envset("JUPYTER_PLATFORM_DIRS"):
        return _platformdirs_user_data()
    home = _home()
    if sys.platform == "darwin":
        return os.path.join(home, "Library", "Jupyter")
    if sys.platform == "win32":
        appdata = env.get("APPDATA")
        if appdata:
            return os.path.realpath(os.path.join(appdata, "jupyter"))
        return os.path.join(config_dir(), "data")
    xdg = env.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    return os.path.join(xdg, "jupyter")


def _platformdirs_user_data() -> str:
    # What platformdirs.user_data_dir(APPNAME, appauthor=False) gives.
    home = _home()
    if sys.platform == "darwin":
        return os.path.join(home, "Library", "Application Support", _appname())
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
        return os.path.join(base, _appname())
    xdg = os.environ.get("XDG_DATA_HOME", "").strip() or os.path.join(home, ".local", "share")
    return os.path.join(xdg, _appname())


def runtime_dir() -> str:
    """Where servers write ``jpserver-*.json`` and kernels' connection files live."""
    if os.environ.get("JUPYTER_RUNTIME_DIR"):
        return os.environ["JUPYTER_RUNTIME_DIR"]
    return os.path.join(data_dir(), "runtime")


def system_dirs() -> list[str]:
    if _envset("JUPYTER_PLATFORM_DIRS"):
        if os.name == "nt" and not _envset("JUPYTER_USE_PROGRAMDATA"):
            return [os.path.join(sys.prefix, "share", "jupyter")]
        if sys.platform == "darwin":
            return [os.path.join("/Library/Application Support", _appname())]
        if os.name != "nt":
            xdg = os.environ.get("XDG_DATA_DIRS", "").strip() or "/usr/local/share:/usr/share"
            return [os.path.join(p, _appname()) for p in xdg.split(os.pathsep) if p]
    if os.name == "nt":
        programdata = os.environ.get("PROGRAMDATA")
        if _envset("JUPYTER_USE_PROGRAMDATA") and programdata:
            return [os.path.join(programdata, "jupyter")]
        return [os.path.join(sys.prefix, "share", "jupyter")]
    return ["/usr/local/share/jupyter", "/usr/share/jupyter"]


def _do_i_own(path: str) -> bool:
    p = os.path.realpath(path)
    while not os.path.exists(p) and os.path.dirname(p) != p:
        p = os.path.dirname(p)
    if hasattr(os, "geteuid"):
        try:
            return os.stat(p).st_uid == os.geteuid()
        except OSError:
            pass
    return os.access(p, os.W_OK)


def prefer_env() -> bool:
    """Whether this Python's environment dirs come before the user's (jupyter_core 5)."""
    if "JUPYTER_PREFER_ENV_PATH" in os.environ:
        return _envset("JUPYTER_PREFER_ENV_PATH")
    if sys.prefix != sys.base_prefix and _do_i_own(sys.prefix):
        return True
    conda = os.environ.get("CONDA_PREFIX")
    return bool(
        conda
        and sys.prefix.startswith(conda)
        and os.environ.get("CONDA_DEFAULT_ENV", "base") != "base"
        and _do_i_own(sys.prefix)
    )


def jupyter_path(*subdirs: str) -> list[str]:
    """Data dirs in search order: JUPYTER_PATH, user/env (order as jupyter_core), system."""
    paths: list[str] = []
    if os.environ.get("JUPYTER_PATH"):
        paths.extend(p.rstrip(os.sep) for p in os.environ["JUPYTER_PATH"].split(os.pathsep) if p)
    user = [data_dir()]
    site = sys.modules.get("site")
    if site is not None and site.ENABLE_USER_SITE:
        userbase = site.getuserbase() if hasattr(site, "getuserbase") else site.USER_BASE
        if userbase:
            userdir = os.path.join(userbase, "share", "jupyter")
            if userdir not in user:
                user.append(userdir)
    system = system_dirs()
    env_dirs = [os.path.join(sys.prefix, "share", "jupyter")]
    if env_dirs != system:
        env_dirs = [p for p in env_dirs if p not in system]
    if prefer_env():
        paths.extend(env_dirs + user)
    else:
        paths.extend(user + env_dirs)
    for p in system:
        if p not in paths:
            paths.append(p)
    if subdirs:
        paths = [os.path.join(p, *subdirs) for p in paths]
    return paths


def ipython_dir() -> str:
    """IPython's profile dir: jupyter_client also searches its ``kernels``."""
    d = os.environ.get("IPYTHONDIR")
    if d:
        return os.path.expanduser(d)
    return os.path.join(_home(), ".ipython")
