"""Which kernels a halt names: targets (pid, kernel id or prefix, notebook) and idle ones.

Plain data in, plain data out: ``select`` returns the chosen kernels with the reason
for each and the ones left running with why; ``TargetError`` is a usage error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from wizard.base import fmt
from wizard.base.invocation import command
from wizard.diagnosis.idle import BUSY, IDLE, UNKNOWN, UNKNOWN_REASON
from wizard.diagnosis.idle import state as idle_state

if TYPE_CHECKING:
    from wizard.base.shapes import Kernel, Server, ServersResult

MIN_ID_PREFIX = 4


class TargetError(Exception):
    """A target that names no kernel, or more than one: a usage error (exit 2)."""


def my_uid() -> int | None:
    return os.geteuid() if hasattr(os, "geteuid") else None


def server_of(k: Kernel, servers_result: ServersResult | None) -> Server | None:
    pid = k.get("server_pid")
    if pid is None:
        return None
    for s in (servers_result or {}).get("servers") or []:
        if s.get("pid") == pid:
            return s
    return None


# ---------------------------------------------------------------------------
# Which kernels a target names


def _norm(p: str) -> str:
    return os.path.normpath(p)


def notebook_names(k: Kernel, servers_result: ServersResult | None) -> set[str]:
    """Every spelling of the kernel's notebook: as recorded, absolute, relative to the root."""
    server = server_of(k, servers_result)
    root = server.get("root_dir") if server else None
    paths: list[Any] = [k["notebook"]] if k.get("notebook") else []
    if server:
        for sess in server.get("sessions") or []:
            if sess.get("kernel_id") == k.get("kernel_id") and sess.get("path"):
                paths.append(sess["path"])
    names: set[str] = set()
    for p in paths:
        names.add(p)
        names.add(_norm(p))
        if os.path.isabs(p):
            if root:
                rel = _relative(p, root)
                if rel:
                    names.add(rel)
        elif root:
            names.add(_norm(os.path.join(root, p)))
    for n in list(names):
        if os.path.isabs(n):
            names.add(os.path.realpath(n))
    return names


def _relative(path: str, root: str | None) -> str | None:
    try:
        rel = os.path.relpath(path, root)
    except ValueError:  # another drive (Windows)
        return None
    return None if rel == os.pardir or rel.startswith(os.pardir + os.sep) else rel


def display_name(k: Kernel, servers_result: ServersResult | None = None) -> str:
    """The notebook as the user knows it: relative to its server's root, ~ for home."""
    nb = k.get("notebook")
    if nb:
        server = server_of(k, servers_result)
        if os.path.isabs(nb) and server and server.get("root_dir"):
            rel = _relative(nb, server["root_dir"])
            if rel:
                return rel
        home = os.path.expanduser("~")
        if home not in ("~", "/") and nb.startswith(home + os.sep):
            return "~" + nb[len(home) :]
        return nb
    if k.get("kernel_id"):
        return f"(no notebook) kernel {k['kernel_id'][:8]}"  # type: ignore[index]
    return f"(no notebook) pid {k.get('pid')}"


def resolve(
    target: str, kernels: Sequence[Kernel], servers_result: ServersResult | None
) -> list[Kernel]:
    """The kernels ``target`` names: a pid, a kernel id or unique id prefix, a notebook.

    A notebook matches by its exact path (also relative to the current directory),
    by its path relative to its server's root, or by its base name when only one
    kernel's notebook has that name. Raises TargetError for none or an ambiguity.
    """
    t = target.strip()
    if not t:
        raise TargetError("an empty target names no kernel")
    if t.isdigit():
        hit = [k for k in kernels if k.get("pid") == int(t)]
        if hit:
            return hit
    hit = [k for k in kernels if k.get("kernel_id") == t]
    if hit:
        return hit
    forms = {t, _norm(t)}
    try:
        absolute = os.path.abspath(t)
        forms.update((absolute, os.path.realpath(absolute)))
    except (OSError, ValueError):
        pass
    names = {k["pid"]: notebook_names(k, servers_result) for k in kernels}
    hit = [k for k in kernels if forms & names[k["pid"]]]
    if hit:
        return hit
    if "/" not in t and os.sep not in t:
        hit = [k for k in kernels if t in {os.path.basename(n) for n in names[k["pid"]]}]
        if len(hit) == 1:
            return hit
        if hit:
            raise TargetError(_ambiguous(t, hit, "notebooks", servers_result))
    # a unique start of a kernel id; digits alone stay a pid, so a mistyped pid halts nothing
    if len(t) >= MIN_ID_PREFIX and not t.isdigit():
        hit = [k for k in kernels if k.get("kernel_id") and k["kernel_id"].startswith(t)]  # type: ignore[union-attr]
        if len(hit) == 1:
            return hit
        if hit:
            raise TargetError(_ambiguous(t, hit, "kernel ids", servers_result))
    if t.isdigit():
        raise TargetError(f"no kernel of yours has pid {t} (halt stops kernels, nothing else)")
    if len(t) < MIN_ID_PREFIX and re.fullmatch(r"[0-9a-fA-F-]+", t):
        raise TargetError(
            f"no running kernel of yours matches {t!r}: the start of a kernel id needs "
            f"{MIN_ID_PREFIX} or more characters (`{command()}` lists the kernels)"
        )
    locked = [s for s in (servers_result or {}).get("servers") or [] if s.get("needs_password")]
    if locked:  # its kernels run, but which notebook each has is not known here
        raise TargetError(
            f"cannot tell whether a kernel matches {t!r}: the Jupyter server (pid "
            f"{locked[0].get('pid')}) needs a password the wizard does not have, so its "
            f"notebooks are unknown here; halt the kernel by its pid (`{command()}` lists them) "
            "or shut it down from the server's page in the browser"
        )
    raise TargetError(
        f"no running kernel of yours matches {t!r} (a notebook path, kernel id or pid; "
        f"`{command()}` lists the kernels)"
    )


def _ambiguous(
    t: str, hits: Sequence[Kernel], what: str, servers_result: ServersResult | None
) -> str:
    listed = ", ".join(
        f"{k.get('notebook') or display_name(k, servers_result)} (pid {k.get('pid')})" for k in hits
    )
    return (
        f"{t!r} matches the {what} of {len(hits)} kernels: {listed}; give the full path, "
        "the kernel id or the pid"
    )


def select(
    kernels: Sequence[Kernel],
    servers_result: ServersResult | None,
    targets: Iterable[str] = (),
    idle: float | None = None,
    all_except: Sequence[str] = (),
) -> dict[str, Any]:
    """Pick the kernels to halt.

    ``targets`` (each resolved with ``resolve``), plus, when ``idle`` (seconds) or
    ``all_except`` is given, every other kernel that is idle at least that long
    (``wizard.diagnosis.idle``: a busy kernel never is; a kernel no server reports on
    cannot be checked and is left out) and not named by ``all_except``, which always
    wins. Returns
    ``{"chosen": [(kernel, reason)], "skipped": [{"pid", "notebook", "reason"}]}``
    (chosen biggest first). Raises TargetError.
    """
    chosen: dict[int, tuple[Kernel, str]] = {}
    for t in targets:
        for k in resolve(t, kernels, servers_result):
            chosen[k["pid"]] = (k, "named")
    spared: set[int] = set()
    for t in all_except:
        spared.update(k["pid"] for k in resolve(t, kernels, servers_result))
    skipped: list[dict[str, Any]] = []
    if idle is not None or all_except:
        for k in kernels:
            if k["pid"] in chosen or k["pid"] in spared:
                continue
            reason = "all but the spared"
            if idle is not None:
                how, secs = idle_state(k, idle)
                if how == BUSY:
                    skipped.append(_skip(k, servers_result, "busy", "busy running code"))
                    continue
                if how == UNKNOWN:
                    skipped.append(_skip(k, servers_result, "unknown", UNKNOWN_REASON))
                    continue
                if how != IDLE:
                    continue
                reason = f"idle {fmt.duration(secs)}"
            chosen[k["pid"]] = (k, reason)
    for k in kernels:
        if k["pid"] in spared:
            chosen.pop(k["pid"], None)
            skipped.append(_skip(k, servers_result, "spared", "spared by --all-except"))
    picked = sorted(chosen.values(), key=lambda kr: -(kr[0].get("rss_bytes") or 0))
    return {"chosen": picked, "skipped": skipped}


def _skip(
    k: Kernel, servers_result: ServersResult | None, kind: str, reason: str
) -> dict[str, Any]:
    return {
        "pid": k.get("pid"),
        "notebook": k.get("notebook"),  # as recorded, like the selected kernels' entries
        "name": display_name(k, servers_result),
        "kind": kind,
        "reason": reason,
    }
