"""Authorizers a test server is configured with (``--ServerApp.authorizer_class``).

They decide on the request's path only, so what they deny does not depend on how the
kernel-wizard handlers name their resource.
"""

from jupyter_server.auth.authorizer import Authorizer

PREFIX = "/api/kernel-wizard"


class DenyKernelWizard(Authorizer):
    """Everything of the server is allowed except the kernel-wizard API."""

    def is_authorized(self, handler, user, action, resource):
        return not handler.request.path.startswith(PREFIX)


class DenyAllButStatus(Authorizer):
    """Only ``GET /api/status`` (the harness waits on it) is allowed."""

    def is_authorized(self, handler, user, action, resource):
        return handler.request.path == "/api/status"
