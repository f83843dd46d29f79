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

Archived media (outputs and posters) is served here too, at `archive.STATIC_URL/<name>`
(/app/static/, where Streamlit's static serving had it, which is off): streamed from the storage,
the local folder or the bucket alike, with Range requests (206, Content-Range) so a video seeks.
Through the app rather than from the bucket: the bucket stays private, no presigned URL can leak
or outlive its page, the same guard (lib/guard.py) sees every request, and there is no 200 MB
limit (Streamlit's static serving has one). The check is the name itself: random, 144 bits,
never listed; a name that is not one the archive writes is refused before the storage is asked.

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
from datetime import date
from pathlib import Path
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from lib import archive, export, media, settings, spend, storage
from lib.store import Store, queries

PREFIX = "/downloads"
LINK_TTL = 3600  # seconds a link stays valid
# Pages redraw every minute or so and draw a link per button: the same download is handed the
# same token while at least half its life is left, rather than a new database row per redraw.
_issued: dict[tuple[str, str], tuple[str, float]] = {}
_issued_lock = threading.Lock()
_link_stores: dict[str, Store] = {}  # database -> the connection links are saved with, under the lock


def _link(kind: str, filename: str, **payload) -> str:
    body = {"kind": kind, "name": filename, **payload}
    location = settings.database()
    key = (str(location), json.dumps(body, sort_keys=True))
    now = time.time()
    with _issued_lock:
        for old in [k for k, (_, expires) in _issued.items() if expires - now < LINK_TTL / 2]:
            del _issued[old]
        if key not in _issued:
            token = secrets.token_urlsafe(24)
            # One connection per database for all the links handed out, not one per link: a page of
            # 25 archived outputs drew 25 links, each opening (and migrating) the store.
            store = _link_stores.get(key[0]) or _link_stores.setdefault(key[0], Store(location))
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


def csv_link(filters: queries.Filters, filename: str = "runway-tasks.csv") -> str:
    return _link("csv", filename, filters=filters.as_json())


def zip_link(filters: queries.Filters, filename: str = "runway-outputs.zip") -> str:
    return _link("zip", filename, filters=filters.as_json())


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
        yield from export.csv_stream(store, filters, base=base)
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
        filters, headers = queries.Filters.from_json(body["filters"]), _attachment(name)
        pieces = _csv_stream(filters, dashboard_address(request))
        if _accepts_gzip(request):
            pieces, headers = _gzipped(pieces), {**headers, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
        return StreamingResponse(pieces, media_type="text/csv; charset=utf-8", headers=headers)
    if body["kind"] == "spend":
        pieces = spend.csv_stream(date.fromisoformat(body["start"]), date.fromisoformat(body["end"]),
                                  body.get("backend"))
        return StreamingResponse(pieces, media_type="text/csv; charset=utf-8", headers=_attachment(name))
    if body["kind"] == "zip":
        return StreamingResponse(_zip_stream(queries.Filters.from_json(body["filters"]), dashboard_address(request)),
                                 media_type="application/zip", headers=_attachment(name))
    store = Store()
    try:
        output = store.archived_output(int(body["output"]))
    finally:
        store.close()
    key = archive.archived_name(output.get("path")) if output else None
    if key is None:
        return PlainTextResponse("That output is no longer archived.", status_code=404)
    return await _media_response(request, key, output["mime"], _attachment(name))


# ---------------------------------------------------------------- archived media, from the storage

MEDIA_CACHE = "private, max-age=86400"  # a name is never reused for other bytes
STORE_DOWN_PAGE = "The archive's storage did not answer; try again in a moment."


_RANGE = re.compile(r"bytes=([0-9]{0,19})-([0-9]{0,19})")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | bool:
    """(start, end exclusive) of a single `bytes=` range; None to send the whole file (no header,
    one this does not serve, such as several ranges, or one that is not a valid range, which RFC
    9110 says to ignore); False when a valid range cannot be satisfied. Digits are ASCII only."""
    match = _RANGE.fullmatch((header or "").strip())
    if match is None:
        return None
    first, last = match.groups()
    if first == last == "":
        return None
    if first == "":
        if int(last) == 0:
            return False
        return (max(size - int(last), 0), size) if size else False
    start = int(first)
    if last and int(last) < start:
        return None  # "bytes=5-2" is no valid range: the whole file
    if start >= size:
        return False
    return start, min(int(last) + 1, size) if last else size


async def _media_response(request: Request, name: str, mime: str | None, extra: dict | None = None) -> Response:
    key = f"static/{name}"
    try:
        kept = archive.storage_for()
        size = await asyncio.to_thread(kept.size, key)
    except storage.StorageError:  # an OSError too: first
        return PlainTextResponse(STORE_DOWN_PAGE, status_code=503, headers={"Retry-After": "10"})
    except (ValueError, OSError):
        size = None
    if size is None:
        return PlainTextResponse("Not found.", status_code=404)
    headers = {"Accept-Ranges": "bytes", "Cache-Control": MEDIA_CACHE, "X-Content-Type-Options": "nosniff",
               **(extra or {})}
    wanted = parse_range(request.headers.get("range"), size)
    if wanted is False:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    start, end = wanted or (0, size)
    status = 206 if wanted else 200
    headers["Content-Length"] = str(end - start)
    if wanted:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    media_type = mime or media.mime_from_name(name) or "application/octet-stream"
    if request.method == "HEAD" or end == start:
        return Response(status_code=status, headers=headers, media_type=media_type)
    try:
        chunks = await asyncio.to_thread(kept.read, key, start, end)
    except FileNotFoundError:
        return PlainTextResponse("Not found.", status_code=404)
    except storage.StorageError:
        return PlainTextResponse(STORE_DOWN_PAGE, status_code=503, headers={"Retry-After": "10"})
    return StreamingResponse(chunks, status_code=status, headers=headers, media_type=media_type)


async def serve_media(request: Request) -> Response:
    """An archived output or poster by its name: only a name the archive writes, never a listing."""
    name = request.path_params.get("name", "")
    if archive.archived_name(f"static/{name}") is None:
        return PlainTextResponse("Not found.", status_code=404)
    try:
        storage.checked_key(f"static/{name}")
    except ValueError:
        return PlainTextResponse("Not found.", status_code=404)
    return await _media_response(request, name, None)


ROUTES = [Route(PREFIX + "/{name:path}", serve, methods=["GET"]),  # the name is only what the browser saves as
          Route(archive.STATIC_URL + "/{name:path}", serve_media, methods=["GET", "HEAD"])]
