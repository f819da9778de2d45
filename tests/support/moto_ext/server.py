"""Runs moto's own WSGI application with the extensions, over HTTPS and plain HTTP.

Both listeners serve one application, so they share every backend: HTTPS is the endpoint
everything uses (a TLS-only bucket policy then lets requests through, as on AWS); the plain
HTTP one exists so tests can show that such a policy refuses a request without TLS.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import ssl
import sys
import threading
from typing import Any, Callable, Iterable

import moto
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from . import apply_all, request

STATUS_PATH = "/moto-api/lakeops/extensions"


class TlsAwareHandler(MotoRequestHandler):
    """moto's own handler that also puts the connection's TLS version into the environ (for the s3:TlsVersion key)."""

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        version = getattr(self.connection, "version", None)
        if callable(version):
            environ[request.TLS_VERSION_KEY] = version()
        return environ


class StatusEndpoint:
    """Answers GET STATUS_PATH with the moto version and each extension's state."""

    def __init__(self, app: Callable[..., Iterable[bytes]], report: dict[str, Any]):
        self.app = app
        self.body = json.dumps(report, indent=2).encode()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == STATUS_PATH:
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(self.body)))])
            return [self.body]
        return self.app(environ, start_response)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="moto with lakeops' extensions, over HTTPS and HTTP")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--https-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--cert", required=True, help="PEM serving certificate (chain)")
    parser.add_argument("--key", required=True, help="PEM private key of --cert")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)

    # As moto_server does: SIGTERM and SIGINT end the process cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))

    extensions = apply_all()
    report = {"moto": moto.__version__, "extensions": {e.name: e.report() for e in extensions}}
    moto_app = DomainDispatcherApplication(create_backend_app)
    moto_app.debug = True  # as moto_server sets it
    app = StatusEndpoint(request.RequestContextMiddleware(moto_app), report)

    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    tls.load_cert_chain(args.cert, args.key)
    https = make_server(args.host, args.https_port, app, threaded=True, request_handler=TlsAwareHandler, ssl_context=tls)
    # Bound after HTTPS, so a client that reaches the HTTP port finds both listening.
    http = make_server(args.host, args.http_port, app, threaded=True, request_handler=TlsAwareHandler)
    print(
        f"moto {moto.__version__} with lakeops extensions: https://{args.host}:{args.https_port} "
        f"http://{args.host}:{args.http_port}; {json.dumps(report['extensions'])}",
        file=sys.stderr,
        flush=True,
    )
    threading.Thread(target=http.serve_forever, name="http", daemon=True).start()
    https.serve_forever()
