"""Where archived outputs, their posters and stashed inputs are kept: the local folders (the
default) or an S3-compatible bucket (DASHBOARD_STORAGE_URL=s3://bucket/prefix), behind one small
interface, `Storage`.

Keys are the database's own paths: `static/<name>` for an output or a poster, `inputs/<name>` for
a stashed input. Locally they are files in `static/` (beside the code, as ever) and in `inputs/`
beside the database; in a bucket they are the objects `<prefix>/static/<name>` and
`<prefix>/inputs/<name>`.

Why two implementations and not obstore's LocalStore for disk too: the local archive's guarantees
are the file system's own (a partial file renamed into place with os.replace, owner-only modes on
every file and on the folder whose listing names them, links planted in the folder refused) and
are well tested; LocalStore writes with its own modes and its own temporary names. So the disk
keeps that code, and obstore's S3Store (maintained, streamed multipart uploads, ranged reads)
serves every S3-compatible store. Both take the same calls, and the tests run the same suite on
both.

What each write guarantees, on either backend:
- a file is kept only once it is complete: `keep` takes a finished local file (written, sniffed,
  checked by the archive first) and moves it under its key; on S3, `obstore.put` uploads it in
  parts and the object appears only when the multipart upload completes, never partial;
- uploads are streamed from the file, a few parts at a time (UPLOAD_PART × UPLOAD_CONCURRENCY in
  memory at most), never the whole file;
- nothing is listed, and no ACL is ever sent: the bucket's objects stay as private as the bucket.

`upload` is `keep` without the move: the file stays where it is (the move command,
`python -m lib.store.move`, copies a team's archive folder into a bucket and leaves the folder as it
was), it returns the SHA-256 of the bytes it sent, and `if_absent=True` never replaces an object
already under the key (one PUT that fails if the key exists; a file larger than one part goes up in
parts once the key was found free: S3 takes no condition on a multipart upload). `digest` reads an
object through for its size and SHA-256. The move opens its bucket as the app does, with the same
timeouts, retries and plain errors.

obstore retries 10 times over about 3 minutes by default; here a store that does not answer is
given up on within seconds (RETRIES, TIMEOUT) and the archive retries later, with the output kept
at risk. obstore's errors name the endpoint and bucket: they are never passed on. What reaches a
row, a page or a log is a StorageError with a plain sentence (and, in the log, the error's type).
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from lib import settings

log = logging.getLogger(__name__)

STATIC_DIR = settings.ROOT / "static"
AREAS = ("static", "inputs")
CHUNK = 256 * 1024  # what a read hands on at a time
UPLOAD_PART = 8 * 1024 * 1024
UPLOAD_CONCURRENCY = 2
RETRIES = 2
TIMEOUT = "30s"
CONNECT_TIMEOUT = "5s"
RETRY_WINDOW = timedelta(seconds=10)
# A name the archive or the stash writes: letters, digits, - and _, an optional extension; never a
# folder, never hidden (partial files start with a dot).
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}")
_MIME = re.compile(r"[\w.+-]+/[\w.+-]+")  # a media type sent as an object's Content-Type, nothing else

DOWN = "The bucket did not answer"
REFUSED = "The bucket refused the write"


class StorageError(OSError):
    """The store could not do what was asked; the message is plain and names no endpoint or key.
    An OSError, as a full disk is: whoever handles a write that failed (a submission stashing its
    inputs says "Nothing was sent") handles this one too."""


class Storage(Protocol):
    """The calls the archive, the stash, the media route and the ZIP make."""

    kind: str  # "local" or "s3"

    def scratch(self) -> Path:
        """A folder (owner-only) where a file is written before it is kept."""

    def keep(self, key: str, source: Path) -> None:
        """Make the complete local file `source` the object `key`, at once or not at all; `source`
        is gone afterwards (moved, or uploaded and removed)."""

    def upload(self, key: str, source: Path, *, if_absent: bool = False, mime: str | None = None) -> str | None:
        """Copy the complete local file `source` to the object `key`, streamed, at once or not at all;
        `source` stays. Returns the SHA-256 of the bytes copied, or None when `if_absent` and an
        object is already under the key (left as it is). `mime` is the object's media type."""

    def put_bytes(self, key: str, data: bytes) -> None:
        """Keep small bytes (an input's) under `key`, at once or not at all."""

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int | None:
        """The object's size in bytes, None when there is none."""

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bytes [start, end) of the object, streamed; raises FileNotFoundError when it is missing.
        The first chunk is fetched before this returns, so a missing object raises here."""

    def read_bytes(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None:
        """Delete the object if it is there."""

    def local_path(self, key: str) -> Path | None:
        """The file of a key on this machine's disk (local storage only), if it is there."""


def checked_key(key: str) -> tuple[str, str]:
    """(area, name) of a key the dashboard writes; ValueError for anything else (a folder, a dot
    name, a name from outside), so no key can lead anywhere else in the folder or the bucket."""
    area, _, name = (key or "").partition("/")
    if area not in AREAS or not _NAME.fullmatch(name) or name in (".", ".."):
        raise ValueError("not a key of the dashboard's storage")
    return area, name


# ---------------------------------------------------------------- local folders

class LocalStorage:
    kind = "local"

    def __init__(self, static_dir: Path = STATIC_DIR, inputs_dir: Path | None = None):
        self.dirs = {"static": Path(static_dir),
                     "inputs": Path(inputs_dir) if inputs_dir is not None else settings.db_path().parent / "inputs"}

    def _path(self, key: str) -> Path:
        area, name = checked_key(key)
        return self.dirs[area] / name

    def _folder(self, area: str) -> Path:
        folder = self.dirs[area]
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)  # its listing names every file, and the names are the secret
        return folder

    def scratch(self) -> Path:
        return self._folder("static")  # the same file system as the archive: keeping is a rename

    def keep(self, key: str, source: Path) -> None:
        target = self._path(key)
        self._folder(checked_key(key)[0])
        os.chmod(source, 0o600)
        os.replace(source, target)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._place(key, lambda out: out.write(data))

    def upload(self, key: str, source: Path, *, if_absent: bool = False, mime: str | None = None) -> str | None:
        h = hashlib.sha256()

        def copy(out) -> None:
            with open(source, "rb") as file:
                while chunk := file.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)

        return h.hexdigest() if self._place(key, copy, if_absent=if_absent) else None

    def _place(self, key: str, write, *, if_absent: bool = False) -> bool:
        """Write a partial file beside the key's and put it in place in one step (a link that fails
        if the name is taken, when `if_absent`); False when it was taken."""
        target = self._path(key)
        folder = self._folder(checked_key(key)[0])
        partial = folder / f".{target.name}.{os.getpid()}.{threading.get_ident()}.part"
        try:
            with open(os.open(partial, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600), "wb") as out:
                write(out)
            if not if_absent:
                os.replace(partial, target)
                return True
            try:
                os.link(partial, target)
            except FileExistsError:
                return False
            return True
        finally:
            partial.unlink(missing_ok=True)

    def local_path(self, key: str) -> Path | None:
        try:
            target = self._path(key)
        except ValueError:
            return None
        # A link planted in the folder that leads elsewhere is not the folder's own file.
        if not target.is_file() or target.resolve().parent != target.parent.resolve():
            return None
        return target

    def exists(self, key: str) -> bool:
        return self.local_path(key) is not None

    def size(self, key: str) -> int | None:
        path = self.local_path(key)
        return path.stat().st_size if path else None

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        path = self.local_path(key)
        if path is None:
            raise FileNotFoundError(key)
        handle = open(path, "rb")
        handle.seek(start)
        return _file_chunks(handle, None if end is None else end - start)

    def read_bytes(self, key: str) -> bytes:
        path = self.local_path(key)
        if path is None:
            raise FileNotFoundError(key)
        return path.read_bytes()

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except ValueError:
            pass


def _file_chunks(handle, left: int | None) -> Iterator[bytes]:
    try:
        while left is None or left > 0:
            chunk = handle.read(CHUNK if left is None else min(CHUNK, left))
            if not chunk:
                return
            if left is not None:
                left -= len(chunk)
            yield chunk
    finally:
        handle.close()


# ---------------------------------------------------------------- S3-compatible buckets

class S3Storage:
    kind = "s3"

    def __init__(self, url: str, options: dict[str, str], scratch_dir: Path | None = None):
        from obstore.store import S3Store

        parts = urlsplit(url)
        if not parts.netloc:
            raise settings.SettingError("DASHBOARD_STORAGE_URL takes s3://bucket/prefix: the bucket is missing.")
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        endpoint = options.get("endpoint", "")
        config = {k: v for k, v in options.items() if k in ("endpoint", "region", "access_key_id",
                                                             "secret_access_key")}
        self._store = S3Store(
            self.bucket, prefix=self.prefix or None, **config,
            client_options={"timeout": TIMEOUT, "connect_timeout": CONNECT_TIMEOUT,
                            "allow_http": endpoint.lower().startswith("http://")},
            retry_config={"max_retries": RETRIES, "retry_timeout": RETRY_WINDOW,
                          "backoff": {"init_backoff": timedelta(milliseconds=200), "max_backoff": timedelta(seconds=2),
                                      "base": 2}})
        self._scratch = scratch_dir or Path(settings.db_path().parent) / "scratch"

    def __repr__(self) -> str:  # never the credentials, nor the endpoint
        return "S3Storage(bucket)"

    def scratch(self) -> Path:
        self._scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self._scratch, 0o700)
        return self._scratch

    def keep(self, key: str, source: Path) -> None:
        try:
            self.upload(key, source)
        finally:
            Path(source).unlink(missing_ok=True)

    def upload(self, key: str, source: Path, *, if_absent: bool = False, mime: str | None = None) -> str | None:
        import obstore
        from obstore.exceptions import AlreadyExistsError

        checked_key(key)
        # No ACL: the object is as private as the bucket. A media type only if it is one.
        attributes = {"Content-Type": mime} if mime and _MIME.fullmatch(mime) else None
        h, size = hashlib.sha256(), None
        try:
            size = os.stat(source).st_size
            if size <= UPLOAD_PART:  # one PUT, of at most one part's bytes
                with open(source, "rb") as file:
                    data = file.read()
                h.update(data)
                obstore.put(self._store, key, data, use_multipart=False, attributes=attributes,
                            mode="create" if if_absent else "overwrite")
            else:
                if if_absent and self.size(key) is not None:
                    return None
                # In parts, a few at a time; the object appears when the upload completes.
                obstore.put(self._store, key, _hashed_chunks(source, h), use_multipart=True, chunk_size=UPLOAD_PART,
                            max_concurrency=UPLOAD_CONCURRENCY, attributes=attributes)
        except AlreadyExistsError:
            return None
        except Exception as exc:
            # A completion whose answer timed out is retried, and the store then answers "no such
            # upload" for an object it did complete. The key is random and ours alone: an object
            # of the file's size under it is the file (and the move reads it back to be sure).
            if size is not None and (not isinstance(exc, OSError) or isinstance(exc, FileNotFoundError)):
                with contextlib.suppress(Exception):
                    if self.size(key) == size:
                        return h.hexdigest()
            raise _plain(exc, REFUSED) from None
        return h.hexdigest()

    def put_bytes(self, key: str, data: bytes) -> None:
        import obstore

        checked_key(key)
        try:
            obstore.put(self._store, key, data, use_multipart=False)
        except Exception as exc:
            raise _plain(exc, REFUSED) from None

    def size(self, key: str) -> int | None:
        import obstore

        checked_key(key)
        try:
            return int(obstore.head(self._store, key)["size"])
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise _plain(exc, DOWN) from None

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        import obstore

        checked_key(key)
        if end is not None and end <= start:
            return iter(())
        try:
            result = obstore.get(self._store, key, options={"range": (start, end) if end is not None
                                                            else {"offset": start}} if start or end else None)
            stream = iter(result.stream(min_chunk_size=CHUNK))
            first = next(stream, b"")
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise _plain(exc, DOWN) from None
        return _s3_chunks(first, stream)

    def read_bytes(self, key: str) -> bytes:
        return b"".join(self.read(key))

    def delete(self, key: str) -> None:
        import obstore

        try:
            checked_key(key)
            obstore.delete(self._store, key)
        except (ValueError, FileNotFoundError):
            pass
        except Exception as exc:
            raise _plain(exc, DOWN) from None

    def local_path(self, key: str) -> Path | None:
        return None


def _hashed_chunks(source: Path, h) -> Iterator[bytes]:
    """A file's bytes a part at a time, each added to the hash `h` as it is handed on."""
    with open(source, "rb") as file:
        while chunk := file.read(UPLOAD_PART):
            h.update(chunk)
            yield chunk


def digest(store: Storage, key: str) -> tuple[int, str] | None:
    """(size, SHA-256) of the object `key`, read through as a stream; None when there is none."""
    try:
        chunks = store.read(key)
    except FileNotFoundError:
        return None
    h, size = hashlib.sha256(), 0
    for chunk in chunks:
        h.update(chunk)
        size += len(chunk)
    return size, h.hexdigest()


def _s3_chunks(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield bytes(first)
    try:
        for chunk in rest:
            yield bytes(chunk)
    except Exception as exc:
        raise _plain(exc, DOWN) from None


def _plain(exc: Exception, what: str) -> StorageError:
    """obstore's error reworded: its text names the endpoint, the bucket and the key."""
    if isinstance(exc, StorageError):
        return exc
    name = type(exc).__name__
    if name in ("PermissionDeniedError", "UnauthenticatedError"):
        message = "The bucket refused the dashboard's credentials"
    elif name == "GenericError":  # no answer: refused connections, timeouts, retries spent
        message = DOWN
    else:
        message = what
    log.warning("storage: %s (%s)", message, name)
    return StorageError(message)


# ---------------------------------------------------------------- the configured one

_current: dict[tuple, Storage] = {}
_current_lock = threading.Lock()


def current(inputs_dir: Path | None = None) -> Storage:
    """The storage the settings name: the bucket of DASHBOARD_STORAGE_URL, else the local folders
    (static/, and `inputs_dir` or inputs/ beside the database)."""
    url = settings.storage_url()
    if not url:
        return LocalStorage(STATIC_DIR, inputs_dir)
    options = settings.s3_options()
    key = (url, tuple(sorted(options.items())), str(settings.db_path().parent))
    with _current_lock:
        if key not in _current:
            _current.clear()
            _current[key] = S3Storage(url, options)
        return _current[key]
