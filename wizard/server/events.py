"""Kernel deaths on the server's event bus (jupyter_events, ``serverapp.event_logger``).

Each death of one of this server's kernels is one event with the schema
``shapes.DEATH_EVENT`` (version 1), registered on the server's own ``EventLogger`` at
load. The server's ``/api/events/subscribe`` WebSocket carries it to every open page
(JupyterLab 4 and Notebook 7 read it as ``app.serviceManager.events.stream``), so a
page learns of a death when it happens and sends no request while nothing happens.

Other code in the server can listen too (``event_logger.add_listener(schema_id=
shapes.DEATH_EVENT, listener=...)``); the fields are ``DEATH_FIELDS``, the same as one
entry of ``GET /api/kernel-wizard/deaths``. The event carries no pid, cgroup path,
token or key. It is emitted on the server's event loop (the recorder runs in a thread).
"""

from wizard.server.shapes import DEATH_EVENT, DEATH_EVENT_VERSION

_STR: dict[str, object] = {"type": ["string", "null"]}
_NUM: dict[str, object] = {"type": ["number", "null"]}

# name -> (JSON schema type, description)
DEATH_FIELDS: dict[str, tuple[dict[str, object], str]] = {
    "time": (_NUM, "When the kernel died (seconds since the epoch)."),
    "kernel_id": (_STR, "The kernel's id in this server."),
    "notebook": (_STR, "The notebook, relative to the server's root."),
    "kernel_name": (_STR, "The kernelspec."),
    "cause": (_STR, "oom-kill, signal, exit, shutdown or unknown."),
    "signal": (_STR, "The signal that ended it (SIGSEGV, SIGKILL ...)."),
    "exit_code": (_NUM, "Its exit code, for an exit."),
    "rss_bytes": (_NUM, "Its memory when last seen."),
    "limit_bytes": (_NUM, "The memory limit that applied to it."),
    "detail": (_STR, "How the cause is known."),
    "exact": ({"type": "boolean"}, "Whether the exit status came from the server itself."),
    "notify": ({"type": "boolean"}, "Whether a page should say so (false for a shutdown)."),
    "summary": (_STR, "The cause in one line."),
    "label": (_STR, "The label of the site's section that fits."),
    "url": (_STR, "The URL of that section."),
    "ran_cells": ({"type": "boolean"}, "Whether the kernel had run code before it ended."),
}

SCHEMA = {
    "$id": DEATH_EVENT,
    "version": DEATH_EVENT_VERSION,
    "title": "A kernel of this server died",
    "description": "Emitted by wizard.server_ext once per kernel death, with its cause.",
    "type": "object",
    "required": ["kernel_id", "cause", "summary"],
    "properties": {
        name: {**kind, "title": name, "description": text}
        for name, (kind, text) in DEATH_FIELDS.items()
    },
}


def install(serverapp, ext, conf):
    """Register the schema and emit each of ``ext``'s deaths on the server's loop."""
    logger = getattr(serverapp, "event_logger", None)
    if logger is None:
        serverapp.log.info("wizard.server_ext: no event bus in this server: pages poll /deaths")
        return
    if DEATH_EVENT not in logger.schemas.schema_ids:
        logger.register_event_schema(SCHEMA)
    loop = serverapp.io_loop
    docs = conf.resolved_docs_url(serverapp.base_url)

    def emit(d):
        from wizard.server import api

        logger.emit(schema_id=DEATH_EVENT, data=api.event_data(serverapp, d, docs))

    def on_death(d):  # on the recorder thread
        if d.get("kernel_id") and ext.is_own(d["kernel_id"]):
            loop.add_callback(emit, d)

    ext.on_death = on_death
