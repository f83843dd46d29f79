"""The output archive: Runway's output URLs expire within 24–48 h, so every
output of a succeeded task is downloaded into the storage (lib/storage.py: the
local `static/` folder, or a bucket), and the dashboard serves it at
`/app/static/<name>` (lib/downloads.py's media route, with Range requests,
from either; Streamlit's own static serving is off).

Only media types are ever kept (the bytes are sniffed before anything is
kept), names are random so nobody can guess them, files and the folder that
lists them are the owner's alone, downloads are capped in size, time and rate,
and a file appears under its final name only once it is complete: it is
written to a partial file on this machine, checked, then kept (renamed into
`static/`, or uploaded to the bucket in parts that become the object only once
complete). A store that does not answer leaves the output at risk, kept at
Runway's URL, and the archive retries.

An archived video gets a poster: one JPEG frame beside it (`poster_path`), made
with the ffmpeg that imageio-ffmpeg ships, so a page can show every video
without the browser fetching any of them until one is played. A poster that
cannot be made leaves the video archived without one.

Where an output may be fetched from follows the backend that made the task:
when the base URL is on loopback (the simulator, a test server), output URLs
on loopback are fetched too, plain http included; otherwise only public
https. The archive's HTTP client (`http_client`) checks every address a name
resolves to and connects to the address it checked, so an output URL can
never reach a private service, whatever its name or its DNS answers.
"""
from __future__ import annotations

import contextvars
import hashlib
import ipaddress
import logging
import os
import secrets
import socket
import ssl
import subprocess
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpcore
import httpx
import imageio_ffmpeg

from lib import media, settings, storage
from lib.storage import Storage, StorageError

log = logging.getLogger(__name__)

STATIC_DIR = storage.STATIC_DIR
# The media route's prefix (lib/downloads.py serves it from either storage, Range and all). It is the
# address Streamlit's static serving had, which is now off: every link ever handed out still works.
# (Streamlit reserves /media/ for its own.)
STATIC_URL = "/app/static"
STORE_DOWN = "The bucket did not answer; the output is kept at Runway's URL and the archive retries"
# A download gets settings.archive_deadline_seconds() in all, and must bring at least
# settings.archive_min_rate() bytes a second over every RATE_WINDOW: a server trickling bytes
# gives its download slot up within one window.
RATE_WINDOW = 20.0
CONNECT_TIMEOUT = 10.0
SNIFF_BYTES = 64  # what media.sniff_mime needs to check a container's structure
REFUSED = "only outputs on public https addresses are archived"
REFUSED_LOOPBACK = "only outputs on public or loopback addresses are archived"
# What a resolver answers for (host, port): the addresses to connect to.
Resolver = Callable[[str, int], Iterable[str]]


class ArchiveError(Exception):
    """A download that did not produce an archived file; `expired` when the URL no longer works."""

    def __init__(self, message: str, *, expired: bool = False):
        super().__init__(message)
        self.expired = expired


@dataclass(frozen=True)
class ArchivedFile:
    path: str  # relative to the project root: static/<name>
    mime: str
    size: int
    sha256: str


def archived_name(path: str | None) -> str | None:
    """The file name of an archived file's stored path (`static/x.mp4` -> `x.mp4`), or None.

    The archive writes its files straight into static/, never into a subfolder, so a path with a
    folder below static/ is not an archived file: every reader of a stored path (the pages, the
    downloads, the CSV's archived_urls in `queries._archived_urls_sql`) holds to this one rule, and
    no stored path can lead outside the folder."""
    if not path or not path.startswith("static/"):
        return None
    name = path[len("static/"):]
    return None if name in ("", ".", "..") or "/" in name else name


def storage_for(static_dir: Path | None = None) -> Storage:
    """The storage archived files are kept in: the configured one (lib/storage.current) for None or
    the default folder, else the local folder given (tests, benchmarks)."""
    if static_dir is None or Path(static_dir) == STATIC_DIR:
        return storage.current()
    return storage.LocalStorage(Path(static_dir))


def _key(path: str | None) -> str | None:
    name = archived_name(path)
    try:
        return storage.checked_key(f"static/{name}")[0] + f"/{name}" if name else None
    except ValueError:
        return None


def archived_file(path: str | None, static_dir: Path | None = None) -> Path | None:
    """The archived file of a stored path on this machine's disk, if it is there and is the folder's
    own: a link planted in static/ that leads elsewhere is not an archived file. None in a bucket:
    `has_archived`, `read_archived` and `archived_chunks` serve both storages."""
    key = _key(path)
    return storage_for(static_dir).local_path(key) if key else None


def has_archived(path: str | None, static_dir: Path | None = None) -> bool:
    """Whether an output's archived file is there to offer. On disk, the file is looked at; in a
    bucket the database's record is trusted (a path is recorded only once its object is complete),
    rather than asking the bucket on every redraw of every page."""
    key = _key(path)
    if key is None:
        return False
    kept = storage_for(static_dir)
    return kept.kind != "local" or kept.exists(key)


def read_archived(path: str | None, static_dir: Path | None = None) -> bytes | None:
    """An archived file's bytes (an earlier output reused as an input), or None when it is gone or
    the store does not answer."""
    key = _key(path)
    try:
        return storage_for(static_dir).read_bytes(key) if key else None
    except (OSError, StorageError):
        return None


def archived_head(path: str | None, size: int, static_dir: Path | None = None) -> bytes | None:
    """The first `size` bytes of an archived file (an image's header), or None."""
    try:
        chunks = archived_chunks(path, static_dir, 0, size)
        return b"".join(chunks) if chunks is not None else None
    except (OSError, StorageError):
        return None


def archived_chunks(path: str | None, static_dir: Path | None = None, start: int = 0,
                    end: int | None = None):
    """An archived file's bytes [start, end), streamed from the storage; None when it is not there.
    Raises StorageError when the store does not answer."""
    key = _key(path)
    if key is None:
        return None
    try:
        return storage_for(static_dir).read(key, start, end)
    except FileNotFoundError:
        return None


def static_url(path: str | None) -> str | None:
    """The browser URL of an archived file (`static/x.mp4` -> `/app/static/x.mp4`): the one place a
    media URL is made."""
    name = archived_name(path)
    return f"{STATIC_URL}/{name}" if name else None


def download(url: str, http: httpx.Client, *, backend_url: str, static_dir: Path | None = None,
             max_bytes: int | None = None, deadline: float | None = None, min_rate: float | None = None,
             rate_window: float | None = None, store: Storage | None = None) -> ArchivedFile:
    """Stream one output URL of a task from the backend at `backend_url` into the archive
    and describe the file written.

    Nothing of the URL is used for the file's name or place: the name is random and the
    extension follows the bytes. Plain http is fetched only for a backend on loopback.
    `http` is `http_client()`: it is what keeps a name from leading to a private address.
    The file is written on this machine (the storage's scratch folder) and kept in `store`
    (default: `storage_for(static_dir)`) only once it is complete and its bytes are media.
    """
    store = store or storage_for(static_dir)
    max_bytes = settings.archive_max_bytes() if max_bytes is None else max_bytes
    deadline = settings.archive_deadline_seconds() if deadline is None else deadline
    min_rate = settings.archive_min_rate() if min_rate is None else min_rate
    rate_window = RATE_WINDOW if rate_window is None else rate_window
    loopback_ok = on_loopback(backend_url)
    schemes = ("https://", "http://") if loopback_ok else ("https://",)
    if not url.lower().startswith(schemes):
        raise ArchiveError(f"only {' or '.join(s[:-3] for s in schemes)} output URLs are archived")
    token = secrets.token_urlsafe(18)
    digest = hashlib.sha256()
    size = 0
    ends_at = time.monotonic() + deadline
    deadline_set = _deadline.set(ends_at)
    poster: Path | None = None
    partial: Path | None = None
    try:
        # The writer's pid is in the name, so a restart removes only what a dead process left.
        partial = store.scratch() / f".{token}.{os.getpid()}.part"
        # Asking for the bytes as they are keeps the declared length comparable with what
        # arrives; a server that compresses anyway is decoded below, within the cap.
        with http.stream("GET", url, follow_redirects=False, headers={"accept-encoding": "identity"},
                         timeout=httpx.Timeout(min(rate_window, deadline), connect=min(CONNECT_TIMEOUT, deadline)),
                         extensions={_LOOPBACK_OK: loopback_ok}) as response:
            if response.status_code in (401, 403, 404, 410):
                raise ArchiveError(f"the output link has expired (HTTP {response.status_code})", expired=True)
            if response.status_code != 200:
                raise ArchiveError(f"the output server answered HTTP {response.status_code}")
            declared = int(response.headers.get("content-length") or 0)
            if declared > max_bytes:
                raise ArchiveError(f"the output is {declared / media.MB:.0f} MB, over the archive's "
                                   f"{max_bytes / media.MB:.0f} MB cap")
            header_mime = media.normalise_mime(response.headers.get("content-type"))
            # The body as it came over the wire (`stream`, not `iter_raw`, which a transport that
            # has already read the body refuses), decoded by the archive itself.
            received = _Received(iter(response.stream), min_rate, rate_window)
            head = b""
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with open(fd, "wb") as out:
                for chunk in _decoded(received, response.headers.get("content-encoding", "")):
                    size += len(chunk)
                    if size > max_bytes:
                        raise ArchiveError(f"the output is over the archive's {max_bytes / media.MB:.0f} MB cap")
                    if len(head) < SNIFF_BYTES:
                        head += chunk[:SNIFF_BYTES - len(head)]
                    digest.update(chunk)
                    out.write(chunk)
                    out.flush()  # what arrived is on disk: a crash leaves a partial file, never a wrong one
                os.fsync(out.fileno())
            if declared and received.bytes != declared:
                raise ArchiveError(f"the download stopped after {received.bytes} of {declared} bytes")
        # The bytes decide, never the header: a page served as "image/png" is still a page.
        mime = media.sniff_mime(head)
        if mime not in media.ARCHIVABLE:
            raise ArchiveError(f"the output ({header_mime or 'no type given'}) is not an accepted media type")
        name = f"{token}{media.extension_for(mime)}"
        # The poster is made from the local file, before the video leaves this machine.
        poster = _render_poster(partial, store.scratch(), name) if mime.startswith("video/") else None
        try:
            store.keep(f"static/{name}", partial)
        except StorageError as exc:
            raise ArchiveError(STORE_DOWN if str(exc) == storage.DOWN else
                               f"{exc}; the output is kept at Runway's URL and the archive retries") from None
        if poster is not None:
            try:
                store.keep(poster_path(f"static/{name}"), poster)
            except (OSError, StorageError) as exc:  # the video plays without one; the backfill tries again
                log.warning("no poster kept for %s: %s", name, type(exc).__name__)
        return ArchivedFile(path=f"static/{name}", mime=mime, size=size, sha256=digest.hexdigest())
    except httpx.TimeoutException as exc:
        if time.monotonic() >= ends_at:
            raise ArchiveError(f"the download took longer than the archive's {deadline:.0f} s limit") from exc
        raise ArchiveError(f"the output server sent nothing for {rate_window:.0f} s") from exc
    except httpx.HTTPError as exc:
        # A host that no longer answers at all (a restarted simulator, a moved CDN) is
        # cured like an expired link: by reading the task again for a fresh one.
        raise ArchiveError(f"the download failed ({type(exc).__name__})",
                           expired=isinstance(exc, httpx.ConnectError)) from exc
    except OSError as exc:  # a full disk, say: kept at risk and retried like a failed download
        raise ArchiveError(f"the file could not be written ({exc.strerror or type(exc).__name__})") from exc
    finally:
        _deadline.reset(deadline_set)
        if partial is not None:
            partial.unlink(missing_ok=True)
        if poster is not None:
            poster.unlink(missing_ok=True)


# ---------------------------------------------------------------- posters

POSTER_SUFFIX = ".poster.jpg"
POSTER_WIDTH = 640  # sharp enough for a gallery cell or a list row; a few tens of KB
POSTER_TIMEOUT = 30.0
POSTER_AT = 1.0  # seconds in: a first frame is often a fade from black


def poster_path(path: str | None) -> str | None:
    """Where an archived video's poster goes (`static/x.mp4` -> `static/x.poster.jpg`), made or not."""
    name = archived_name(path)
    return f"static/{Path(name).stem}{POSTER_SUFFIX}" if name else None


def delete_archived(path: str | None, static_dir: Path | None = None) -> bool:
    """Delete an archived file and its poster; returns whether the file itself was there."""
    key = _key(path)
    if key is None:
        return False
    kept = storage_for(static_dir)
    _posters_seen.pop(poster_path(path), None)
    try:
        existed = kept.exists(key)
        kept.delete(poster_path(path))
        kept.delete(key)
    except StorageError:  # no row refers to it any more: left in the private bucket, unused and unserved
        log.warning("an archived file of a removed output could not be deleted: the store did not answer")
        return False
    return existed


# Whether a poster is there, for a bucket, where each look is a request: a page of 25 videos redrawn
# every few seconds would ask 25 times. A poster once seen stays (names are never reused); one not
# there is looked for again after POSTER_RECHECK seconds (the backfill may make it).
POSTER_RECHECK = 300.0
BUCKET_QUIET = 30.0  # seconds no poster is looked for after the bucket did not answer
_bucket_quiet_until = 0.0
_posters_seen: dict[str, float] = {}  # key -> time it was seen missing, or 0.0 when it is there


def poster_url(path: str | None, static_dir: Path | None = None) -> str | None:
    """The browser URL of an archived video's poster, if it has one."""
    poster = poster_path(path)
    if poster is None or _key(poster) is None:
        return None
    kept = storage_for(static_dir)
    if kept.kind == "local":
        return static_url(poster) if kept.exists(poster) else None
    global _bucket_quiet_until
    seen = _posters_seen.get(poster)
    if seen is None or (seen and time.monotonic() - seen > POSTER_RECHECK):
        if time.monotonic() < _bucket_quiet_until:
            return None  # the bucket did not answer a moment ago: no page waits on it once per video
        try:
            there = kept.exists(poster)
        except StorageError:
            _bucket_quiet_until = time.monotonic() + BUCKET_QUIET
            return None
        if len(_posters_seen) > 50_000:
            _posters_seen.clear()
        seen = _posters_seen[poster] = 0.0 if there else time.monotonic()
    return static_url(poster) if seen == 0.0 else None


# ffmpeg's demuxer for each video type `media.sniff_mime` recognises. Named, not guessed: ffmpeg's
# own detection weighs every format it knows (playlists, manifests, concat lists that open other
# files) against bytes someone uploaded.
POSTER_DEMUXERS = {"video/mp4": "mov", "video/quicktime": "mov", "video/webm": "matroska"}
_SNIFF_BYTES = 1032  # the longest ftyp box `media.sniff_mime` accepts, and the head of the box after it


def make_poster(video: Path) -> Path | None:
    """Write the poster of a video file beside it, owner-only like the video; None if no frame
    could be read, or the bytes are no video type we know. Never raises: a video without a poster
    still plays."""
    made = _render_poster(video, video.parent, video.name)
    if made is None:
        return None
    final = video.with_name(video.stem + POSTER_SUFFIX)
    try:
        os.replace(made, final)
    except OSError as exc:
        log.warning("no poster for %s: %s", video.name, type(exc).__name__)
        made.unlink(missing_ok=True)
        return None
    return final


def make_stored_poster(path: str, static_dir: Path | None = None) -> bool:
    """Make and keep the poster of an archived video in the storage (the backfill); whether one was
    kept. On disk ffmpeg reads the file in place; from a bucket the video is fetched to the scratch
    folder first, streamed, and removed after."""
    key, poster = _key(path), poster_path(path)
    if key is None:
        return False
    kept = storage_for(static_dir)
    local = kept.local_path(key)
    fetched = None
    try:
        if local is None:
            fetched = kept.scratch() / f".{secrets.token_urlsafe(9)}.{os.getpid()}.part"
            with open(os.open(fetched, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
                for chunk in kept.read(key):
                    out.write(chunk)
            local = fetched
        made = _render_poster(local, kept.scratch(), archived_name(path) or "")
        if made is None:
            return False
        kept.keep(poster, made)
        _posters_seen.pop(poster, None)
        return True
    except (OSError, StorageError) as exc:  # gone meanwhile, or the store does not answer: tried at next start
        log.warning("no poster for %s: %s", archived_name(path), type(exc).__name__)
        return False
    finally:
        if fetched is not None:
            fetched.unlink(missing_ok=True)


def lacks_poster(path: str | None, static_dir: Path | None = None) -> bool:
    """Whether an archived video is there without its poster."""
    key, poster = _key(path), poster_path(path)
    if key is None or poster is None:
        return False
    kept = storage_for(static_dir)
    try:
        return kept.exists(key) and not kept.exists(poster)
    except StorageError:
        return False


def _render_poster(video: Path, out_dir: Path, name: str) -> Path | None:
    """A poster of a local video file, as a complete owner-only partial file in `out_dir` (for the
    caller to keep); None if no frame could be read. Never raises."""
    partial = out_dir / f".{secrets.token_urlsafe(9)}.{os.getpid()}.part"
    try:
        with open(video, "rb") as file:
            demuxer = POSTER_DEMUXERS.get(media.sniff_mime(file.read(_SNIFF_BYTES)) or "")
        if demuxer is None:
            log.warning("no poster for %s: not a video type ffmpeg is given", name)
            return None
        # A frame a second in, else (a shorter video) the first. The input seek keeps it quick
        # however long the video; ffmpeg gets only a size-capped JPEG to write.
        for at in (POSTER_AT, 0.0):
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.close(fd)
            run = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin",
                                  "-y", "-protocol_whitelist", "file", "-f", demuxer, "-ss", f"{at:g}",
                                  "-i", f"file:{video}", "-frames:v", "1", "-an",
                                  "-vf", f"scale='min({POSTER_WIDTH},iw)':-2", "-q:v", "5", "-f", "image2",
                                  "-c:v", "mjpeg", str(partial)],
                                 capture_output=True, timeout=POSTER_TIMEOUT)
            if run.returncode == 0 and partial.stat().st_size > 0:
                os.chmod(partial, 0o600)
                return partial
        log.warning("no poster for %s: ffmpeg read no frame", name)
    except Exception as exc:  # whatever went wrong (no ffmpeg, a full disk), the video stays
        log.warning("no poster for %s: %s", name, type(exc).__name__)
    partial.unlink(missing_ok=True)
    return None


def poster_of(video: bytes | Path) -> bytes | None:
    """The poster (JPEG bytes) of a video that is not in the archive: an upload's bytes, or a file
    such as a stashed input. Made in a scratch folder, so nothing is written beside the file."""
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "video"
        if isinstance(video, Path):
            copy.symlink_to(video.resolve())
        else:
            copy.write_bytes(video)
        poster = make_poster(copy)
        return poster.read_bytes() if poster else None


class _Received:
    """The body's bytes as they came over the wire, counted, and given up on when they come
    slower than `min_rate` over a window."""

    def __init__(self, chunks: Iterator[bytes], min_rate: float, window: float):
        self._chunks, self._min_rate, self._window = chunks, min_rate, window
        self.bytes = 0

    def __iter__(self) -> Iterator[bytes]:
        window_start, in_window = time.monotonic(), 0
        for chunk in self._chunks:
            self.bytes += len(chunk)
            in_window += len(chunk)
            now = time.monotonic()
            if now - window_start >= self._window:
                if in_window < self._min_rate * (now - window_start):
                    raise ArchiveError(f"the output server sent under {self._min_rate / 1024:g} KB/s")
                window_start, in_window = now, 0
            yield chunk


def _decoded(chunks: Iterable[bytes], encoding: str) -> Iterator[bytes]:
    """The body as the file it is. One layer of gzip or deflate is undone a piece at a time, so
    a small compressed body never becomes a large buffer before the cap sees it."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        yield from chunks
        return
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise ArchiveError("the output server sent the file in an encoding the archive does not decode")
    decoder = zlib.decompressobj(32 + zlib.MAX_WBITS)  # a gzip or a zlib header, whichever is there
    try:
        for chunk in chunks:
            while chunk:
                piece = decoder.decompress(chunk, 1 << 20)
                chunk = decoder.unconsumed_tail
                yield piece
        while piece := decoder.decompress(b"", 1 << 20):
            yield piece
    except zlib.error as exc:
        raise ArchiveError("the output server sent a corrupt compressed file") from exc
    if not decoder.eof:
        raise ArchiveError("the download stopped before the end of the compressed file")


# ---------------------------------------------------------------- where outputs may come from

def on_loopback(base_url: str) -> bool:
    """Whether a backend's base URL is on this machine (the simulator, a test server)."""
    try:
        host = httpx.URL(base_url).host if "://" in base_url else ""
    except httpx.InvalidURL:
        return False
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return _v4_inside(address).is_loopback


def allowed_address(address: str, *, loopback_ok: bool) -> bool:
    """A public address (or, for a backend on loopback, a loopback one); never private, link-local,
    unique-local, multicast or reserved, nor an IPv6 form that carries such an IPv4 address."""
    ip = _v4_inside(ipaddress.ip_address(address))
    if loopback_ok and ip.is_loopback:
        return True
    return ip.is_global and not (ip.is_multicast or ip.is_reserved)


def checked_addresses(host: str, port: int, *, loopback_ok: bool, resolve: Resolver | None = None) -> list[str]:
    """The addresses an output host may be fetched from: every one it resolves to must be
    allowed, or none is. The refusal says nothing of what the name led to."""
    refused = ArchiveError(REFUSED_LOOPBACK if loopback_ok else REFUSED)
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = list(dict.fromkeys((resolve or resolve_host)(host, port)))
        except OSError:
            raise refused from None
    if not addresses or not all(allowed_address(a, loopback_ok=loopback_ok) for a in addresses):
        raise refused
    return addresses


def resolve_host(host: str, port: int) -> list[str]:
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def _v4_inside(ip: ipaddress.IPv4Address | ipaddress.IPv6Address):
    """The IPv4 address an IPv6 one stands for (mapped, NAT64, 6to4), which is what gets reached."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return ip.ipv4_mapped
        if ip.sixtofour:
            return ip.sixtofour
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


# ---------------------------------------------------------------- the archive's HTTP client

_LOOPBACK_OK = "dashboard.outputs_on_loopback"  # a request extension: which connection pool serves it
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("archive_deadline", default=None)


def http_client(resolve: Resolver | None = None) -> httpx.Client:
    """The client downloads go through. Each policy has its own pool, so a connection made for a
    backend on loopback never serves another's request. No proxy from the environment: the
    address that is checked must be the one connected to."""
    return httpx.Client(transport=_PolicyTransport(resolve), trust_env=False,
                        timeout=httpx.Timeout(RATE_WINDOW, connect=CONNECT_TIMEOUT))


class _PolicyTransport(httpx.BaseTransport):
    def __init__(self, resolve: Resolver | None):
        tls = httpx.create_ssl_context(trust_env=False)
        self._pools = {ok: _checked_transport(_CheckedNetwork(ok, resolve), tls) for ok in (False, True)}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._pools[request.extensions.get(_LOOPBACK_OK) is True].handle_request(request)

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()


def _checked_transport(network: httpcore.NetworkBackend, tls: ssl.SSLContext) -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport(verify=tls, trust_env=False)
    # httpx takes no network backend of its own; its pool is replaced, and a transport whose
    # pool is not where this expects it is refused rather than left unchecked.
    if not isinstance(getattr(transport, "_pool", None), httpcore.ConnectionPool):
        raise RuntimeError("this httpx keeps its connection pool elsewhere: the archive cannot check addresses")
    transport._pool = httpcore.ConnectionPool(ssl_context=tls, network_backend=network)
    return transport


class _CheckedNetwork(httpcore.NetworkBackend):
    """Connects only to checked addresses, and to the very address checked (a second DNS answer
    cannot slip in between); TLS still verifies the name, and the Host header keeps it."""

    def __init__(self, loopback_ok: bool, resolve: Resolver | None):
        self._loopback_ok = loopback_ok
        self._resolve = resolve
        self._sockets = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        failure = None
        for address in checked_addresses(host, port, loopback_ok=self._loopback_ok, resolve=self._resolve):
            try:
                return _DeadlineStream(self._sockets.connect_tcp(address, port, _time_left(timeout),
                                                                 local_address, socket_options))
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise ArchiveError(REFUSED)

    def sleep(self, seconds: float) -> None:
        self._sockets.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    """No read outlasts the download's deadline: headers trickled a byte at a time end with it too."""

    def __init__(self, stream: httpcore.NetworkStream):
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _time_left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _time_left(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, _time_left(timeout)))

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


def _time_left(timeout: float | None) -> float | None:
    ends_at = _deadline.get()
    if ends_at is None:
        return timeout
    left = ends_at - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the download's deadline has passed")
    return left if timeout is None else min(timeout, left)


def remove_partial_files(static_dir: Path | None = None) -> int:
    """Half-written downloads left by a crashed process (in the storage's scratch folder: static/
    itself on disk); they are never shown, and are removed at start. Another running process's
    downloads in progress are left alone."""
    removed = 0
    try:
        scratch = storage_for(static_dir).scratch()
    except OSError:
        return 0
    for leftover in scratch.glob(".*.part"):
        pid = leftover.name.split(".")[-2]
        if pid.isdigit() and _alive(int(pid)):
            continue
        leftover.unlink(missing_ok=True)
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
