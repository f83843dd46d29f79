"""Who may reach the dashboard's server at all: an ASGI middleware on `st.App`
that sees every HTTP request and websocket handshake before Streamlit does.

- Only the dashboard's own host names are served: the `Host` of every request
  must be in `server.allowedHosts` (.streamlit/config.toml; "localhost" and
  "127.0.0.1" as committed). A DNS-rebinding page (evil.test resolved to
  127.0.0.1) sends `Host: evil.test` and gets 400, for pages, websocket,
  downloads and archived files alike.
- A request from a web page is served only if that page is the dashboard's
  own: an `Origin` must be the host and port the request was sent to, so a page
  on http://localhost:3000 cannot open the websocket of http://localhost:8501
  (Streamlit 1.67 itself accepts any port of localhost and 127.0.0.1), and a
  cross-site `Sec-Fetch-Site` is refused except for a navigation.
- Streamlit's own Origin check is never reached with a foreign origin, and for
  one it looks up the machine's external IP over the network, blocking the
  event loop; after this guard only same-origin sessions get there, which it
  accepts without any lookup.
- With DASHBOARD_PASSWORD set, `/_stcore/metrics` (sessions, caches, memory)
  is refused: it is plain HTTP, outside any page's password gate.
- Every answer forbids framing by another site, so no page can dress the
  dashboard up and have the teammate click through it.
"""
from __future__ import annotations

import logging
from urllib.parse import urlsplit

from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import PlainTextResponse
from streamlit import config

from lib.auth import configured_password

log = logging.getLogger(__name__)

LOOPBACK_NAMES = ("localhost", "127.0.0.1")  # what is served when server.allowedHosts is left empty
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
FRAME_POLICY = "frame-ancestors 'self'"


def allowed_hosts() -> list[str]:
    """The host names the dashboard answers to. Streamlit reads an empty list as "any host";
    here it means loopback only, so clearing the setting never opens the dashboard up."""
    names = [name.strip().lower().rstrip(".") for name in config.get_option("server.allowedHosts") or []]
    return [name for name in names if name] or list(LOOPBACK_NAMES)


def _host_and_port(netloc: str, default_port: int | None) -> tuple[str, int | None] | None:
    try:
        parts = urlsplit(f"//{netloc}")
        port = parts.port if parts.port is not None else default_port
    except ValueError:  # a port that is not a number, or out of range
        return None
    if not parts.hostname or parts.username is not None or parts.password is not None or parts.path:
        return None
    return parts.hostname.lower().rstrip("."), port


def host_allowed(host: str | None) -> bool:
    """Is `Host` one of the dashboard's names (any port; `*.example.com` and `*` as Streamlit reads them)?"""
    parsed = _host_and_port(host or "", None)
    if parsed is None:
        return False
    name = parsed[0]
    for pattern in allowed_hosts():
        if pattern == "*" or name == pattern or (pattern.startswith("*.") and name.endswith(pattern[1:])):
            return True
    return False


def same_origin(origin: str, host: str) -> bool:
    """Is a page at `origin` the dashboard served at `host` (same name, same port)?"""
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or parts.path or parts.query:  # "null" and file pages too
        return False
    default = DEFAULT_PORTS[parts.scheme]
    page, server = _host_and_port(parts.netloc, default), _host_and_port(host, default)
    return page is not None and page == server


def refusal(scope: dict) -> tuple[int, str] | None:
    """Why a request is refused (status, text for the person who sent it), or None to serve it."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    host = headers.get("host")
    if not host_allowed(host):
        return 400, ("This dashboard is not served under that host name. Open it at its own address "
                     "(a team serving it under another name lists it in server.allowedHosts).")
    origin = headers.get("origin")
    if origin is not None and not same_origin(origin, host):
        return 403, "This dashboard only answers its own pages."
    # A page elsewhere on the machine (another port of localhost is "same-site") may still send
    # a request without an Origin, as an image or a no-cors fetch; a link someone follows is fine.
    if headers.get("sec-fetch-site") in ("cross-site", "same-site") and headers.get("sec-fetch-mode") != "navigate":
        return 403, "This dashboard only answers its own pages."
    if scope["path"].rstrip("/").endswith("/_stcore/metrics") and configured_password():
        return 403, "The dashboard's metrics are not served while it has a password."
    return None


class GuardMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        refused = refusal(scope)
        if refused is not None:
            status, text = refused
            headers = dict(scope.get("headers", []))
            log.warning("refused %s %s: Host %r, Origin %r", scope["type"], scope["path"][:200],
                        headers.get(b"host", b"")[:200].decode("latin-1"),
                        headers.get(b"origin", b"")[:200].decode("latin-1"))
            if scope["type"] == "websocket":
                # Closing before accepting makes the server answer the handshake with 403:
                # no session is made and no page runs.
                return await send({"type": "websocket.close", "code": 1008})
            response = PlainTextResponse(text, status_code=status, headers={"Content-Security-Policy": FRAME_POLICY})
            return await response(scope, receive, send)

        async def framed(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"content-security-policy", FRAME_POLICY.encode())]}
            await send(message)

        return await self.app(scope, receive, framed if scope["type"] == "http" else send)


# After the guard, the dashboard's own pages and scripts go out compressed when the browser asks:
# Streamlit's frontend (3.2 MB of scripts and styles) was sent as is, most of a first visit's
# bytes. Starlette's GZip leaves media, ZIPs, partial answers and the already gzipped CSV alone.
MIDDLEWARE = [Middleware(GuardMiddleware), Middleware(GZipMiddleware, minimum_size=1024)]
