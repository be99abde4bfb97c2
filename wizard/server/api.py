"""The REST API the JupyterLab / Notebook 7 plugin asks when a kernel dies.

Served by the server extension ``wizard.server_ext`` under the server's base URL,
behind the server's own authentication (token, cookie and XSRF, as every
``jupyter_server`` API handler):

``GET  /api/kernel-wizard/deaths?kernel_id=ID&since=EPOCH&limit=N``
    The deaths the recorder stored, newest first: each with its cause in one line
    (``summary``), whether the plugin should say so (``notify``: false for a shutdown
    or restart that was asked for), and the section of the site that fits (``label``,
    ``url``). ``now`` is the server's clock, for the next ``since``.
``GET  /api/kernel-wizard/report``
    The evidence, as ``python -m wizard --no-input -v`` prints it (``text``).
``POST /api/kernel-wizard/halt-idle``  (JSON body ``{"idle_seconds": S, "spare": [ID]}``)
    ``python -m wizard halt --idle Ss --yes --json``: idle kernels are shut down through
    this server, a busy kernel never is; kernels named in ``spare`` are left running.

None of the answers holds the server's token or a kernel's key: they are built from
the history database and the wizard's own output, which never carry them, and every
answer is scrubbed of the token once more before it is sent.
"""

import json
import os
import sys
import time

from wizard.probes import servers

SCHEMA = "kernel-wizard-lab/1"
PREFIX = "api/kernel-wizard"
PAGE_CONFIG_KEY = "kernelWizardApi"  # the plugin asks only when the page config has it
MAX_LIMIT = 200
DEFAULT_SINCE = 3600.0  # without ``since``: the last hour
REPORT_TIMEOUT = 60.0
HALT_TIMEOUT = 120.0


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


def deaths(db_path, query, now, docs_base=None):
    """The answer of ``GET /deaths``."""
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
        out.append(death_answer(d, docs_base))
    answer = {
        "schema": SCHEMA,
        "now": now,
        "recording": True,
        "deaths": out[: query["limit"]],
    }
    if errors:
        answer["error"] = errors[0]
    return answer


# ---------------------------------------------------------------------------
# The wizard itself, run beside the server


async def run_wizard(argv, timeout):
    """``(exit code, stdout, stderr)`` of ``python -m wizard ARGV``; never raises on a hang."""
    import asyncio

    env = dict(os.environ, NO_COLOR="1", TERM="dumb", PYTHONUNBUFFERED="1")
    for k in ("JUPYTER_TOKEN", "JPY_API_TOKEN", "JUPYTERHUB_API_TOKEN", "FORCE_COLOR"):
        env.pop(k, None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wizard",
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        what = " ".join(argv) or "report"
        return None, "", f"the wizard ({what}) did not finish in {timeout:g} s"
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def parse_halt_body(raw):
    """``(idle seconds, [kernel ids to spare])`` from the POST body (JSON, may be empty)."""
    if not raw or not raw.strip():
        return 0.0, []
    try:
        body = json.loads(raw)
    except ValueError:
        raise BadRequest("the body must be JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    idle = body.get("idle_seconds", 0)
    if isinstance(idle, bool) or not isinstance(idle, (int, float)) or not 0 <= idle < 1e9:
        raise BadRequest("idle_seconds must be a number of seconds, 0 or more")
    spare = body.get("spare") or []
    if not isinstance(spare, list) or not all(
        isinstance(s, str) and 4 <= len(s) <= 64 and all(c.isalnum() or c == "-" for c in s)
        for s in spare
    ):
        raise BadRequest("spare must be a list of kernel ids")
    return float(idle), spare[:50]


def halt_argv(idle, spare):
    argv = ["halt", "--idle", f"{int(idle)}s", "--yes", "--json"]
    for kid in spare:
        argv += ["--all-except", kid]
    return argv


def halt_answer(code, out, err):
    """The JSON of ``POST /halt-idle`` from the halt command's own JSON."""
    try:
        got = json.loads(out)
    except ValueError:
        line = (err.strip().splitlines() or ["no answer"])[-1]
        return {"schema": SCHEMA, "ok": False, "error": line, "halted": [], "spared": []}
    halted = [
        {"notebook": r.get("name") or r.get("notebook"), "kernel_id": r.get("kernel_id")}
        for r in got.get("results") or []
        if r.get("halted")
    ]
    failed = [
        {
            "notebook": r.get("name") or r.get("notebook"),
            "kernel_id": r.get("kernel_id"),
            "error": r.get("error"),
        }
        for r in got.get("results") or []
        if not r.get("halted")
    ]
    spared = [
        {"notebook": s.get("name") or s.get("notebook"), "reason": s.get("reason")}
        for s in got.get("skipped") or []
    ]
    return {
        "schema": SCHEMA,
        "ok": code == 0,
        "halted": halted,
        "failed": failed,
        "spared": spared,
        "freed_bytes": got.get("freed_bytes") or 0,
        "note": got.get("note"),
    }


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

        def db_path(self):
            return self.settings.get("kernel_wizard_db")

        def docs_base(self):
            return self.settings.get("kernel_wizard_docs_url")

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
            db = self.db_path()
            if db is None:
                return self.answer({"schema": SCHEMA, "now": now, "recording": False, "deaths": []})
            self.answer(deaths(db, query, now, self.docs_base()))

    class ReportHandler(Base):
        @tornado.web.authenticated
        @authorized
        async def get(self):
            argv = ["--no-input", "-v"]
            if self.docs_base():
                argv += ["--docs-url", self.docs_base()]
            code, out, err = await run_wizard(argv, REPORT_TIMEOUT)
            text = out if out.strip() else err.strip()
            self.answer({"schema": SCHEMA, "exit_code": code, "text": text})

    class HaltIdleHandler(Base):
        @tornado.web.authenticated
        @authorized
        async def post(self):
            try:
                idle, spare = parse_halt_body(self.request.body.decode("utf-8", "replace"))
            except BadRequest as exc:
                return self.fail(400, str(exc))
            code, out, err = await run_wizard(halt_argv(idle, spare), HALT_TIMEOUT)
            self.answer(halt_answer(code, out, err))

    return [("deaths", DeathsHandler), ("report", ReportHandler), ("halt-idle", HaltIdleHandler)]


def setup_handlers(serverapp, db_path):
    """Add the API to the server, and tell the page (its config) that it is there.

    ``db_path`` is the recorder's database the deaths are read from.
    """
    from jupyter_server.utils import url_path_join

    web_app = serverapp.web_app
    web_app.settings["kernel_wizard_db"] = db_path
    base = web_app.settings.get("base_url", "/")
    conf = serverapp.config.get("KernelWizard", {})
    docs_url = conf.get("docs_url") or os.environ.get("WIZARD_DOCS_URL")
    if docs_url:
        web_app.settings["kernel_wizard_docs_url"] = docs_url
    web_app.add_handlers(
        ".*$", [(url_path_join(base, PREFIX, name), cls) for name, cls in _handlers()]
    )
    # JupyterLab and Notebook 7 share this dict with their pages' config (whichever of
    # them creates it): the plugin reads the key and stays silent without it.
    web_app.settings.setdefault("page_config_data", {})[PAGE_CONFIG_KEY] = SCHEMA
