"""The input stash: a media input too large to keep in a task's stored request is written once, as a
file named by its SHA-256, to the storage (lib/storage.py: `inputs/` beside the database, or
`<prefix>/inputs/` in the bucket), and the request keeps `stored:<mime>:<file name>` in its place.
Also what a stored request carries: its stashed and inline inputs, and the digest each is known by.

The stash is given as a Storage, or as the local folder the store keeps (`Store.stash_dir`): the
configured storage then, the bucket when DASHBOARD_STORAGE_URL names one, else that folder."""
from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lib import media, storage
from lib.storage import Storage

log = logging.getLogger(__name__)

INLINE_LIMIT = 2048  # data URIs longer than this are kept as files, not inline
STASH_PREFIX = "stored:"  # marks a data URI replaced by a file in the input stash
# Exactly what stash_request writes (`stored:<mime>:<sha256><extension>`): a prompt or a URL that
# merely starts with "stored:" is text, never a file to read.
_STASHED = re.compile(r"stored:([\w.+-]+/[\w.+-]+):([0-9a-f]{64}(?:\.[a-z0-9]+)?)")


def stashed(value: Any) -> tuple[str, str] | None:
    """(MIME type, file name in the input stash) of a stored request's stashed input, else None."""
    match = _STASHED.fullmatch(value) if isinstance(value, str) else None
    return (match[1], match[2]) if match else None


def inputs_storage(where: Path | Storage) -> Storage:
    """The storage of an input stash given as a Storage or as the store's local folder."""
    return storage.current(Path(where)) if isinstance(where, str | os.PathLike) else where


def stash_key(name: str) -> str:
    return f"inputs/{name}"


def stash_request(where: Path | Storage, body: dict) -> dict:
    """The request with large data URIs replaced by files in the input stash `where`. Raises
    lib.storage.StorageError when the store does not take them: the task is then not sent."""
    kept = inputs_storage(where)

    def stash(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("data:") and len(value) > INLINE_LIMIT:
            mime, data = media.decode_data_uri(value)
            digest = hashlib.sha256(data).hexdigest()
            name = digest + media.extension_for(mime)
            # Named by content: one already there is these very bytes.
            if not kept.exists(stash_key(name)):
                kept.put_bytes(stash_key(name), data)
            return f"{STASH_PREFIX}{mime}:{name}"
        return value
    return _map_leaves(body, stash)


def restore_request(where: Path | Storage, stored: dict) -> dict:
    """The request as it was sent, data URIs and all (for re-running a task)."""
    kept = inputs_storage(where)

    def restore(value: Any) -> Any:
        if found := stashed(value):
            mime, name = found
            return media.encode_data_uri(mime, kept.read_bytes(stash_key(name)))
        return value
    return _map_leaves(stored, restore)


def remove_stashed(where: Path | Storage, name: str) -> None:
    """Delete a stashed input no task uses; when the store does not answer it stays, unused."""
    try:
        inputs_storage(where).delete(stash_key(name))
    except storage.StorageError:
        log.warning("an unused stashed input could not be deleted: the store did not answer")


def input_digest(uri: str) -> str | None:
    """The SHA-256 of a media input the request carries itself: the name of its stashed file, or
    the hash of an inline data URI. None for a URL, which names its source already."""
    if found := stashed(uri):
        return Path(found[1]).stem
    if uri.startswith("data:"):
        try:
            return hashlib.sha256(media.decode_data_uri(uri)[1]).hexdigest()
        except ValueError:
            return None
    return None


def carried_uris(request: Any) -> Iterator[str]:
    """Every stashed or inline media URI anywhere in a stored request."""
    return (v for v in _leaves(request) if stashed(v) or (isinstance(v, str) and v.startswith("data:")))


def stashed_names(request: Any) -> set[str]:
    """The input stash's files a stored request refers to."""
    return {found[1] for value in _leaves(request) if (found := stashed(value))}


def _leaves(request: Any) -> Iterator[Any]:
    """Every value of a request that is neither a dict nor a list, however deep it sits."""
    if isinstance(request, dict | list):
        for value in request.values() if isinstance(request, dict) else request:
            yield from _leaves(value)
    else:
        yield request


def _map_leaves(request: Any, change: Callable[[Any], Any]) -> Any:
    """The request with `change` made to every value that is neither a dict nor a list."""
    if isinstance(request, dict):
        return {k: _map_leaves(v, change) for k, v in request.items()}
    if isinstance(request, list):
        return [_map_leaves(v, change) for v in request]
    return change(request)
