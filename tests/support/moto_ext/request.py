"""The HTTP request being served, for extensions that need what moto's backends never see
(whether it arrived over TLS and which TLS version, its headers)."""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterable

# The WSGI environ key the TLS-aware request handler (see server.py) fills with
# ssl.SSLSocket.version(), e.g. "TLSv1.3"; absent on the plain-HTTP listener.
TLS_VERSION_KEY = "lakeops.tls_version"

_local = threading.local()


def current() -> dict[str, Any] | None:
    """The WSGI environ of the request this thread serves, or None outside a request."""
    return getattr(_local, "environ", None)


class RequestContextMiddleware:
    """Records each request's environ for the thread serving it (werkzeug serves each request
    on its own thread, and moto computes the whole answer inside the application call)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        _local.environ = environ
        try:
            # Materialised here so moto's work happens while the environ is recorded.
            return list(self.app(environ, start_response))
        finally:
            _local.environ = None
