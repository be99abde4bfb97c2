"""The server extension's options: one traitlets class, ``KernelWizard``.

Set them as any Jupyter option, in ``jupyter_server_config.py``
(``c.KernelWizard.halt_idle_after = 300``) or on the command line
(``--KernelWizard.interval=5``). ``options()`` lists them for the site's table, so the
page and the class cannot disagree. A value of the wrong type or out of range is one
line in the server's log and the default is used; a misspelt name is reported by
traitlets itself ("Config option ... not recognized by KernelWizard").
"""

import os

from traitlets import Bool, Float, TraitError, Unicode, validate
from traitlets.config import LoggingConfigurable

MIN_INTERVAL = 0.05
MIN_HALT_IDLE = 5.0


class KernelWizard(LoggingConfigurable):
    """Options of the kernel-wizard server extension (``wizard.server_ext``)."""

    docs_url = Unicode(
        "",
        help="Base URL of the troubleshooting site the notifications link to "
        "(empty: $WIZARD_DOCS_URL, else the published site).",
    ).tag(config=True)

    interval = Float(
        2.0,
        help="Seconds between two memory samples of this server's kernels "
        "(at least 0.05; $WIZARD_WATCH_INTERVAL when not set).",
    ).tag(config=True)

    db = Unicode(
        "",
        help="Path of the history database shared with `python -m wizard watch` "
        "(empty: $WIZARD_DB, else the user's data dir).",
    ).tag(config=True)

    halt_idle_after = Float(
        60.0,
        help="A kernel is offered for halting only when it has been idle this many seconds "
        "(at least 5); a starting or busy kernel never is.",
    ).tag(config=True)

    metrics = Bool(
        True,
        help="Add kernel deaths and memory to the server's own /metrics (Prometheus).",
    ).tag(config=True)

    @validate("interval")
    def _check_interval(self, proposal):
        value = proposal["value"]
        if not value >= MIN_INTERVAL:
            raise TraitError(f"KernelWizard.interval must be at least {MIN_INTERVAL} s")
        return value

    @validate("halt_idle_after")
    def _check_halt(self, proposal):
        value = proposal["value"]
        if not value >= MIN_HALT_IDLE:
            raise TraitError(f"KernelWizard.halt_idle_after must be at least {MIN_HALT_IDLE:g} s")
        return value

    @validate("docs_url")
    def _check_docs(self, proposal):
        value = proposal["value"].strip()
        if value and not value.startswith(("http://", "https://", "/")):
            raise TraitError("KernelWizard.docs_url must be an http(s) URL or a path")
        return value

    # -- what the extension uses, with the environment's fallbacks ------------------

    def resolved_interval(self):
        if "interval" in self._explicit():
            return self.interval
        try:
            env = float(os.environ.get("WIZARD_WATCH_INTERVAL") or "nan")
        except ValueError:
            env = float("nan")
        return max(env, MIN_INTERVAL) if env == env else self.interval

    def resolved_docs_url(self, base_url=None):
        """The site the links point to: ``docs_url``, then ``$WIZARD_DOCS_URL``, then the
        copy this server serves (``BASE_URL/kernel-wizard/docs/``, when the package carries
        the built site), else None (the published site)."""
        configured = self.docs_url or os.environ.get("WIZARD_DOCS_URL")
        if configured or base_url is None:
            return configured or None
        from wizard.server import docs_site

        return docs_site.docs_url(base_url) if docs_site.has_installed_copy() else None

    def resolved_db(self):
        from wizard.system import historydb

        return self.db or historydb.default_db_path()

    def _explicit(self):
        return set(getattr(self, "explicit", None) or self.config.get("KernelWizard", {}))


def load(serverapp):
    """The configured ``KernelWizard``; a bad value is one log line and its default."""
    log = serverapp.log
    section = dict(serverapp.config.get("KernelWizard", {}))
    try:
        conf = KernelWizard(parent=serverapp)
        conf.explicit = set(section)
        return conf
    except TraitError as exc:
        log.warning("wizard.server_ext: %s; using the defaults for it", exc)
    # Apply the good values one by one, so one bad option costs only itself.
    conf = KernelWizard(log=log)
    for name, value in section.items():
        if not conf.has_trait(name):
            continue
        try:
            setattr(conf, name, value)
        except TraitError:
            pass
    conf.explicit = {n for n in section if conf.has_trait(n)}
    return conf


def options():
    """``[(name, type, default, help)]`` of every option, for the site's table."""
    out = []
    for name, trait in sorted(KernelWizard.class_traits(config=True).items()):
        out.append((name, type(trait).__name__, trait.default_value, trait.help))
    return out
