"""Downloads served by the dashboard's own server: the CSV export streamed
from SQLite in batches, ZIPs of archived outputs, and single outputs, each
at a link the pages hand out.

Why routes and not `st.download_button(data=callable)`: under `st.App`
(which app.py needs so the poller starts with the server) Streamlit 1.67
answers every deferred download with "Deferred file ... not found", and a
callable's result is held whole in server memory anyway. A route streams.

A link is a random token (192 bits) and nothing else: what it was made for
(the filters, the prompt search text, an output id) stays in the database,
so a link reads as nothing, works on every app process over that database
and after restarts, and expires after LINK_TTL. Only someone a page showed
it to (past the password gate, when one is set) can use it; lib/guard.py
keeps foreign host names and other sites' pages away from these routes.

The CSV and the ZIP manifest give URLs at the dashboard's own address, as the
download was asked for (`dashboard_address`), so a teammate can open them.
"""
from __future__ import annotations

import asyncio
import json
import re
import secrets
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import asdict, fields
from datetime import date
from pathlib import Path
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from lib import archive, export, settings, spend
from lib.store import Store, queries

PREFIX = "/downloads"
LINK_TTL = 3600  # seconds a link stays valid
# Pages redraw every minute or so and draw a link per button: the same download is handed the
# same token while at least half its life is left, rather than a new database row per redraw.
_issued: dict[tuple[str, str], tuple[str, float]] = {}
_issued_lock = threading.Lock()
_link_stores: dict[str, Store] = {}  # database path -> the connection links are saved with, under the lock


def _link(kind: str, filename: str, **payload) -> str:
    body = {"kind": kind, "name": filename, **payload}
    key = (str(settings.db_path()), json.dumps(body, sort_keys=True))
    now = time.time()
    with _issued_lock:
        for old in [k for k, (_, expires) in _issued.items() if expires - now < LINK_TTL / 2]:
            del _issued[old]
        if key not in _issued:
            token = secrets.token_urlsafe(24)
            # One connection per database for all the links handed out, not one per link: a page of
            # 25 archived outputs drew 25 links, each opening (and migrating) the store.
            store = _link_stores.get(key[0]) or _link_stores.setdefault(key[0], Store(key[0]))
            store.save_link(token, body, now + LINK_TTL)
            _issued[key] = (token, now + LINK_TTL)
        token = _issued[key][0]
    # No "/" left in the name either: the route is /downloads/<name> (a group id may hold one).
    return f"{PREFIX}/{quote(filename, safe='')}?t={token}"


def _read(token: str) -> dict | None:
    if not token or len(token) > 64:
        return None
    store = Store()
    try:
        return store.link_payload(token)
    finally:
        store.close()


def _filters_json(filters: queries.Filters) -> dict:
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in asdict(filters).items()}


def _filters(data: dict) -> queries.Filters:
    values = {}
    for f in fields(queries.Filters):
        value = data.get(f.name)
        if f.name in ("created_from", "created_to"):
            value = date.fromisoformat(value) if value else None
        elif isinstance(value, list):
            value = tuple(value)
        values[f.name] = value if value is not None else f.default
    return queries.Filters(**values)


def csv_link(filters: queries.Filters, filename: str = "runway-tasks.csv") -> str:
    return _link("csv", filename, filters=_filters_json(filters))


def zip_link(filters: queries.Filters, filename: str = "runway-outputs.zip") -> str:
    return _link("zip", filename, filters=_filters_json(filters))


def spend_link(start: date, end: date, filename: str = "runway-spend.csv", backend: str | None = None) -> str:
    return _link("spend", filename, start=start.isoformat(), end=end.isoformat(), backend=backend)


def output_link(task: dict, output: dict) -> str:
    """The link of one archived output, saved under the name its ZIP entry has."""
    name = export.output_filename(task, output["position"], Path(output.get("path") or "").suffix)
    return _link("output", name, output=output["id"])


def _attachment(name: str) -> dict:
    return {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"}


# A host name or address with an optional port, nothing else (guard.py has checked the name).
_HOST = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def dashboard_address(request: Request) -> str:
    """`scheme://host[:port]` the request was sent to, for URLs a teammate can open; "" (URLs stay
    root-relative) for a Host header that is anything but a plain name and port."""
    host, scheme = request.headers.get("host", ""), request.url.scheme
    if scheme not in ("http", "https") or not _HOST.fullmatch(host):
        return ""
    return f"{scheme}://{host.lower()}"


def _csv_stream(filters: queries.Filters, base: str):
    # Starlette iterates a plain generator on a worker thread: one connection, opened here.
    store = Store()
    try:
        yield from export.csv_bytes(store, filters, base=base)
    finally:
        store.close()


def _accepts_gzip(request: Request) -> bool:
    for item in request.headers.get("accept-encoding", "").lower().split(","):
        name, _, params = item.partition(";")
        if name.strip() == "gzip":
            quality = params.strip().removeprefix("q=")
            return not quality or quality.strip("0.") != ""
    return False


def _gzipped(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """gzip at level 1, in the thread that writes the CSV: 100,000 tasks shrink from 34 MB to
    11 MB for 0.3 s of CPU, where Streamlit's own compression (level 5, on the event loop,
    between pieces) took 0.65 s to reach 9.4 MB."""
    encoder = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    for piece in pieces:
        if out := encoder.compress(piece):
            yield out
    yield encoder.flush()


def _file_stream(handle):
    try:
        while chunk := handle.read(256 * 1024):
            yield chunk
    finally:
        handle.close()


def _zip_stream(filters: queries.Filters, base: str):
    store = Store()
    try:
        handle = export.zip_file(queries.iter_tasks(store, filters), base=base)
    finally:
        store.close()
    yield from _file_stream(handle)


async def serve(request: Request) -> Response:
    body = await asyncio.to_thread(_read, request.query_params.get("t", ""))
    if body is None:
        return PlainTextResponse("This download link is not valid or has expired: open the dashboard and "
                                 "download again.", status_code=403)
    name = body["name"]
    if body["kind"] == "csv":
        pieces, headers = _csv_stream(_filters(body["filters"]), dashboard_address(request)), _attachment(name)
        if _accepts_gzip(request):
            pieces, headers = _gzipped(pieces), {**headers, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
        return StreamingResponse(pieces, media_type="text/csv; charset=utf-8", headers=headers)
    if body["kind"] == "spend":
        pieces = spend.csv_stream(date.fromisoformat(body["start"]), date.fromisoformat(body["end"]),
                                  body.get("backend"))
        return StreamingResponse(pieces, media_type="text/csv; charset=utf-8", headers=_attachment(name))
    if body["kind"] == "zip":
        return StreamingResponse(_zip_stream(_filters(body["filters"]), dashboard_address(request)),
                                 media_type="application/zip", headers=_attachment(name))
    store = Store()
    try:
        output = store.archived_output(int(body["output"]))
    finally:
        store.close()
    path = archive.archived_file(output.get("path")) if output else None
    if path is None:
        return PlainTextResponse("That output is no longer archived.", status_code=404)
    return FileResponse(path, media_type=output["mime"], headers=_attachment(name))


ROUTES = [Route(PREFIX + "/{name:path}", serve, methods=["GET"])]  # the name is only what the browser saves as
