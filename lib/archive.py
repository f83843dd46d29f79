"""The output archive: Runway's output URLs expire within 24–48 h, so every
output of a succeeded task is downloaded into `static/`, where Streamlit
serves it at `/app/static/<name>`.

Only media types are ever written there (static serving would also serve
HTML or SVG as such), names are random so nobody can guess them, downloads
are capped in size, and a file appears under its final name only once it is
complete.
"""
from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import httpx

from lib import media
from lib.store import ROOT

STATIC_DIR = ROOT / "static"
STATIC_URL = "/app/static"
MAX_BYTES = int(float(os.environ.get("DASHBOARD_ARCHIVE_MAX_MB", "512")) * media.MB)


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


def static_url(path: str | None) -> str | None:
    """The browser URL of an archived file (`static/x.mp4` -> `/app/static/x.mp4`)."""
    if not path or not path.startswith("static/"):
        return None
    return f"{STATIC_URL}/{Path(path).name}"


def download(url: str, http: httpx.Client, *, static_dir: Path = STATIC_DIR, max_bytes: int = MAX_BYTES,
             allow_http: bool = True) -> ArchivedFile:
    """Stream one output URL into the archive and describe the file written.

    Nothing of the URL is used for the file's name or place: the name is
    random and the extension follows the bytes. Plain http is refused when
    `allow_http` is false (a live backend serves its outputs over https).
    """
    schemes = ("https://", "http://") if allow_http else ("https://",)
    if not url.lower().startswith(schemes):
        raise ArchiveError(f"only {' or '.join(s[:-3] for s in schemes)} output URLs are archived")
    static_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(18)
    # The writer's pid is in the name, so a restart removes only what a dead process left.
    partial = static_dir / f".{token}.{os.getpid()}.part"
    digest = hashlib.sha256()
    size = 0
    try:
        with http.stream("GET", url, follow_redirects=False) as response:
            if response.status_code in (401, 403, 404, 410):
                raise ArchiveError(f"the output link has expired (HTTP {response.status_code})", expired=True)
            if response.status_code != 200:
                raise ArchiveError(f"the output server answered HTTP {response.status_code}")
            declared = int(response.headers.get("content-length") or 0)
            if declared > max_bytes:
                raise ArchiveError(f"the output is {declared / media.MB:.0f} MB, over the archive's "
                                   f"{max_bytes / media.MB:.0f} MB cap")
            header_mime = media.normalise_mime(response.headers.get("content-type"))
            head = b""
            with open(partial, "wb") as out:
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise ArchiveError(f"the output is over the archive's {max_bytes / media.MB:.0f} MB cap")
                    if len(head) < 32:
                        head += chunk[:32]
                    digest.update(chunk)
                    out.write(chunk)
                    out.flush()  # what arrived is on disk: a crash leaves a partial file, never a wrong one
                os.fsync(out.fileno())
        if declared and size != declared:
            raise ArchiveError(f"the download stopped after {size} of {declared} bytes")
        # The bytes decide, never the header: a page served as "image/png" is still a page.
        mime = media.sniff_mime(head)
        if mime not in media.ARCHIVABLE:
            raise ArchiveError(f"the output ({header_mime or 'no type given'}) is not an accepted media type")
        final = static_dir / f"{token}{media.extension_for(mime)}"
        os.replace(partial, final)
        return ArchivedFile(path=f"static/{final.name}", mime=mime, size=size, sha256=digest.hexdigest())
    except httpx.HTTPError as exc:
        # A host that no longer answers at all (a restarted simulator, a moved CDN) is
        # cured like an expired link: by reading the task again for a fresh one.
        raise ArchiveError(f"the download failed ({type(exc).__name__})",
                           expired=isinstance(exc, httpx.ConnectError)) from exc
    except OSError as exc:  # a full disk, say: kept at risk and retried like a failed download
        raise ArchiveError(f"the file could not be written ({exc.strerror or type(exc).__name__})") from exc
    finally:
        partial.unlink(missing_ok=True)


def remove_partial_files(static_dir: Path = STATIC_DIR) -> int:
    """Half-written downloads left by a crashed process; they are never shown, and are
    removed at start. Another running process's downloads in progress are left alone."""
    removed = 0
    for leftover in static_dir.glob(".*.part"):
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
