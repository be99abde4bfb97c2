"""The installed copy of the site, served by the Jupyter server behind its own login.

The wheel the site offers carries the built site (``docs_map.INSTALLED_SITE``); a server
with the extension serves it under ``BASE_URL/kernel-wizard/docs/``, so every link the
notification and the API give opens, whether or not the site is published anywhere.
Only a logged-in user gets a page: the handler is a ``JupyterHandler`` with the server's
``authenticated`` and ``authorized`` checks, as the server's own file handlers are.
"""

from pathlib import Path
from typing import Optional

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web

from wizard.diagnosis import docs_map

# Below the server's base URL; ends with "/" as docs_map.docs_base() wants.
DOCS_PATH = "kernel-wizard/docs/"
# The authorizer's resource name for these pages (jupyter_server's Authorizer.is_authorized).
AUTH_RESOURCE = "kernel-wizard"


def installed_copy() -> Optional[Path]:
    """The installed site's folder, or None: a server without it links to the public URL."""
    return docs_map.installed_site()


def has_installed_copy() -> bool:
    return installed_copy() is not None


def docs_url(base_url: str) -> str:
    """The served copy's base URL (a path on this server), for ``docs_map.url_for``."""
    return url_path_join(base_url, DOCS_PATH)


class DocsHandler(JupyterHandler, web.StaticFileHandler):
    """One file of the installed site, to a logged-in user only."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    def head(self, path):
        return web.StaticFileHandler.get(self, path, include_body=False)

    @web.authenticated
    @authorized
    def get(self, path, include_body=True):
        return web.StaticFileHandler.get(self, path, include_body=include_body)


class DocsRootHandler(JupyterHandler):
    """``.../kernel-wizard/docs`` without the slash: on to the hub page."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    def get(self):
        self.redirect(url_path_join(self.base_url, DOCS_PATH, "index.html"))


def handlers(base_url: str, root: Optional[Path] = None) -> list:
    """Tornado handler tuples serving the site at ``BASE_URL/kernel-wizard/docs/``.

    ``root`` is the built site's folder (the installed copy by default). Empty when
    there is none, so a server without the copy simply has no such pages.
    """
    root = root or installed_copy()
    if root is None:
        return []
    prefix = url_path_join(base_url, DOCS_PATH)
    return [
        (prefix.rstrip("/"), DocsRootHandler),
        (
            prefix + "(.*)",
            DocsHandler,
            {"path": str(root), "default_filename": "index.html"},
        ),
    ]
