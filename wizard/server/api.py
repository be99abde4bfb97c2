"""The REST API the JupyterLab / Notebook 7 plugin asks when a kernel dies.

Served by the server extension ``wizard.server_ext`` under the server's base URL,
behind the server's own authentication (token, cookie and XSRF, as every
``jupyter_server`` API handler):

Everything here concerns this server's own kernels (``own_kernels``): nothing asks
another server, and a death of a kernel this server never held is not answered.

``GET  /api/kernel-wizard/deaths?kernel_id=ID&since=EPOCH&limit=N``
    This server's kernels' deaths the recorder stored, newest first: each with its cause in one line
    (``summary``), whether the plugin should say so (``notify``: false for a shutdown
    or restart that was asked for), and the section of the site that fits (``label``,
    ``url``). ``now`` is the server's clock, for the next ``since``.
``GET  /api/kernel-wizard/report``
    The evidence, as ``python -m wizard --no-input -v`` prints it (``text``), built in
    a thread of this server (``wizard.server.report``): this server read in process,
    its own kernels and deaths only.
``GET  /api/kernel-wizard/halt-idle?spare=ID``
    What halting would do (``shapes.HaltPlan``): the kernels that would be shut down
    (notebook relative to the root, memory, idle for), the memory freed, and the
    kernels left running with why. Nothing changes.
``POST /api/kernel-wizard/halt-idle``  (JSON body ``{"kernel_ids": [ID], "spare": [ID]}``)
    Shuts down, through the kernel manager, those of the confirmed kernels that are
    still idle past ``KernelWizard.halt_idle_after`` (``shapes.HaltAnswer``).
``GET  /api/kernel-wizard/previous``
    What the history tells of the server that ran before this one in this home
    (``shapes.PreviousAnswer``, from ``wizard.server.previous``): whether it stopped
    without shutting its kernels down, how sure an OOM kill is, the paragraph to show
    (``message``: empty when there is nothing to tell) and the section of the site.

None of the answers holds the server's token or a kernel's key: they are built from
the history database and the wizard's own output, which never carry them, and every
answer is scrubbed of the token once more before it is sent.
"""

import json
import os
import time

from wizard.probes import servers
from wizard.server.shapes import DEATH_EVENT

SCHEMA = "kernel-wizard-lab/1"
PREFIX = "api/kernel-wizard"
PAGE_CONFIG_KEY = "kernelWizardApi"  # the plugin asks only when the page config has it
MAX_LIMIT = 200
DEFAULT_SINCE = 3600.0  # without ``since``: the last hour
PREVIOUS_WAIT = 10.0  # seconds GET /previous waits for the read at the server's start


def death_answer(d, docs_base=None):
    """The JSON the API gives for one death: no pid, cgroup path or samples beyond need."""
    from wizard.diagnosis import docs_map
    from wizard.diagnosis.deathtext import cause_line

    summary, label = cause_line(d)
    return {
        "time": d.get("time"),
        "kernel_id": d.get("kernel_id"),
        "notebook": d.get("notebook"),
        "kernel_name": d.get("kernel_name"),
        "cause": d.get("cause"),
        "signal": d.get("signal"),
        "exit_code": d.get("exit_code"),
        "rss_bytes": d.get("rss_bytes"),
        "limit_bytes": d.get("limit_bytes"),
        "detail": d.get("detail"),
        "exact": bool(d.get("exact")),
        "notify": d.get("cause") != "shutdown",
        "summary": summary,
        "label": label,
        "url": docs_map.url_for(label, docs_base),
    }


PREVIOUS_LABEL = "fleet-oom-group"  # the section on servers killed whole with their kernels


def previous_answer(prev, docs_base=None):
    """The JSON the API gives for ``previous.PreviousServer`` (``shapes.PreviousAnswer``)."""
    import dataclasses

    from wizard.diagnosis import docs_map

    out = dataclasses.asdict(prev)
    out["message"] = prev.message()
    out["label"] = PREVIOUS_LABEL
    out["url"] = docs_map.url_for(PREVIOUS_LABEL, docs_base)
    return out


# ---------------------------------------------------------------------------
# Query parameters: bad input is one line, HTTP 400


class BadRequest(Exception):
    pass


def _float_arg(value, name):
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{name} must be a number, not {value[:40]!r}") from None
    if out != out or out in (float("inf"), float("-inf")):
        raise BadRequest(f"{name} must be a finite number")
    return out


def parse_deaths_query(args, now):
    """``{"kernel_id", "since", "limit"}`` from the query arguments (strings)."""
    kernel_id = args.get("kernel_id") or None
    if kernel_id is not None and (
        len(kernel_id) > 64 or not all(c.isalnum() or c == "-" for c in kernel_id)
    ):
        raise BadRequest("kernel_id must be a kernel id (letters, digits and '-')")
    since = args.get("since")
    since = now - DEFAULT_SINCE if since in (None, "") else _float_arg(since, "since")
    limit = args.get("limit")
    limit = 50 if limit in (None, "") else _float_arg(limit, "limit")
    if limit < 0 or limit != int(limit):
        raise BadRequest("limit must be a whole number, 0 or more")
    return {"kernel_id": kernel_id, "since": since, "limit": min(int(limit), MAX_LIMIT)}


def deaths(db_path, query, now, docs_base=None, own=None, serverapp=None):
    """The answer of ``GET /deaths``: only kernels ``own(kernel_id)`` says are ours."""
    from wizard.system import historydb

    errors = []
    window = max(now - query["since"], 0.0) + 5.0
    found = historydb.recent_deaths(
        db_path, since_seconds=window, limit=10 * MAX_LIMIT, errors=errors
    )
    out = []
    for d in found:
        if d["time"] < query["since"]:
            continue
        if query["kernel_id"] and d.get("kernel_id") != query["kernel_id"]:
            continue
        if own is not None and not own(d.get("kernel_id")):
            continue  # another server's kernel, or one started before this server
        out.append(event_data(serverapp, d, docs_base))
    answer = {
        "schema": SCHEMA,
        "now": now,
        "recording": True,
        "deaths": out[: query["limit"]],
    }
    if errors:
        answer["error"] = errors[0]
    return answer


def _ids(value, name):
    if not isinstance(value, list) or not all(
        isinstance(s, str) and 4 <= len(s) <= 64 and all(c.isalnum() or c == "-" for c in s)
        for s in value
    ):
        raise BadRequest(f"{name} must be a list of kernel ids")
    return value[:200]


def parse_halt_body(raw):
    """``(confirmed kernel ids, kernel ids to spare)`` from the POST body (JSON)."""
    try:
        body = json.loads(raw or "")
    except ValueError:
        raise BadRequest('the body must be JSON: {"kernel_ids": [...]}') from None
    if not isinstance(body, dict) or "kernel_ids" not in body:
        raise BadRequest("the body must be a JSON object with kernel_ids")
    return _ids(body["kernel_ids"], "kernel_ids"), _ids(body.get("spare") or [], "spare")


def relative_notebook(serverapp, path):
    """A notebook's path relative to the server's root (as the page names it)."""
    if not path:
        return path
    root = os.path.realpath(getattr(serverapp, "root_dir", "") or "/")
    full = os.path.realpath(path)
    if full == root or not full.startswith(root.rstrip("/") + "/"):
        return path
    return os.path.relpath(full, root)


def event_data(serverapp, d, docs_base=None):
    """One death as the event and ``/deaths`` carry it."""
    out = death_answer(d, docs_base)
    out["notebook"] = relative_notebook(serverapp, out["notebook"])
    out["ran_cells"] = out["label"] != "kernel-cannot-start"
    return out


# ---------------------------------------------------------------------------
# The handlers


def _handlers():
    import tornado.web
    from jupyter_server.auth.decorator import authorized
    from jupyter_server.base.handlers import APIHandler

    class Base(APIHandler):
        auth_resource = "kernels"

        def secrets(self):
            found = []
            try:
                found.append(self.serverapp.identity_provider.token)
            except AttributeError:
                pass
            found.append(self.settings.get("token"))
            return [s for s in found if isinstance(s, str)]

        def answer(self, obj, status=200):
            self.set_status(status)
            self.set_header("Content-Type", "application/json")
            self.set_header("Cache-Control", "no-store")
            self.finish(servers.scrub(json.dumps(obj), [x for x in self.secrets() if len(x) >= 4]))

        def fail(self, status, text):
            self.answer({"schema": SCHEMA, "error": text}, status)

        def ext(self):
            return self.settings.get("kernel_wizard")

        def conf(self):
            return self.settings.get("kernel_wizard_config")

        def docs_base(self):
            return self.conf().resolved_docs_url(self.base_url)

    class DeathsHandler(Base):
        @tornado.web.authenticated
        @authorized
        def get(self):
            now = time.time()
            args = {k: self.get_argument(k, None) for k in ("kernel_id", "since", "limit")}
            try:
                query = parse_deaths_query(args, now)
            except BadRequest as exc:
                return self.fail(400, str(exc))
            ext = self.ext()
            self.answer(
                deaths(ext.db_path, query, now, self.docs_base(), ext.is_own, self.serverapp)
            )

    class ReportHandler(Base):
        @tornado.web.authenticated
        @authorized
        async def get(self):
            import asyncio

            from wizard.server import own_kernels, report

            own = await own_kernels.snapshot(self.serverapp, measure=False)
            ext = self.ext()
            with ext.mutex:
                ids = set(ext.own_ids)
            loop = asyncio.get_running_loop()
            try:
                code, text = await loop.run_in_executor(
                    None, report.build, own, ids, self.docs_base()
                )
            except Exception as exc:  # one line, never a traceback
                code, text = None, f"the report failed: {type(exc).__name__}: {exc}"
            self.answer({"schema": SCHEMA, "exit_code": code, "text": text})

    class HaltIdleHandler(Base):
        @tornado.web.authenticated
        @authorized
        async def get(self):
            from wizard.server import own_kernels

            try:
                spare = _ids([x for x in self.get_arguments("spare") if x], "spare")
            except BadRequest as exc:
                return self.fail(400, str(exc))
            kernels = await own_kernels.snapshot(self.serverapp)
            threshold = self.conf().halt_idle_after
            self.answer(dict(own_kernels.plan(kernels, threshold, spare), schema=SCHEMA))

        @tornado.web.authenticated
        @authorized
        async def post(self):
            from wizard.server import own_kernels

            try:
                ids, spare = parse_halt_body(self.request.body.decode("utf-8", "replace"))
            except BadRequest as exc:
                return self.fail(400, str(exc))
            threshold = self.conf().halt_idle_after
            got = await own_kernels.halt(self.serverapp, ids, threshold, spare)
            self.answer(dict(got, schema=SCHEMA))

    class PreviousHandler(Base):
        @tornado.web.authenticated
        @authorized
        async def get(self):
            import asyncio

            ext = self.ext()
            loop = asyncio.get_running_loop()
            # read in a thread at the server's start: wait for it, never long
            await loop.run_in_executor(None, ext.previous_read.wait, PREVIOUS_WAIT)
            if ext.previous is None:
                return self.fail(503, "the previous server's record is not read (yet)")
            self.answer(dict(previous_answer(ext.previous, self.docs_base()), schema=SCHEMA))

    return [
        ("deaths", DeathsHandler),
        ("report", ReportHandler),
        ("halt-idle", HaltIdleHandler),
        ("previous", PreviousHandler),
    ]


def setup_handlers(serverapp, ext, conf):
    """Add the API to the server, and tell the page (its config) that it is there.

    ``ext`` is the running recorder (its database, the kernel ids that are this
    server's), ``conf`` the ``KernelWizard`` options.
    """
    from jupyter_server.utils import url_path_join

    web_app = serverapp.web_app
    web_app.settings["kernel_wizard"] = ext
    web_app.settings["kernel_wizard_config"] = conf
    base = web_app.settings.get("base_url", "/")
    web_app.add_handlers(
        ".*$", [(url_path_join(base, PREFIX, name), cls) for name, cls in _handlers()]
    )
    # JupyterLab and Notebook 7 share this dict with their pages' config (whichever of
    # them creates it): the plugin reads the key and stays silent without it.
    page = web_app.settings.setdefault("page_config_data", {})
    page[PAGE_CONFIG_KEY] = SCHEMA
    page[PAGE_CONFIG_KEY + "Events"] = DEATH_EVENT
