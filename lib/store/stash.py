"""The input stash: a media input too large to keep in a task's stored request is written once, as a
file named by its SHA-256, to the stash folder beside the database, and the request keeps
`stored:<mime>:<file name>` in its place. Also what a stored request carries: its stashed and
inline inputs, and the digest each is known by."""
from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lib import media

INLINE_LIMIT = 2048  # data URIs longer than this are kept as files, not inline
STASH_PREFIX = "stored:"  # marks a data URI replaced by a file in the input stash
# Exactly what stash_request writes (`stored:<mime>:<sha256><extension>`): a prompt or a URL that
# merely starts with "stored:" is text, never a file to read.
_STASHED = re.compile(r"stored:([\w.+-]+/[\w.+-]+):([0-9a-f]{64}(?:\.[a-z0-9]+)?)")


def stashed(value: Any) -> tuple[str, str] | None:
    """(MIME type, file name in the input stash) of a stored request's stashed input, else None."""
    match = _STASHED.fullmatch(value) if isinstance(value, str) else None
    return (match[1], match[2]) if match else None


def stash_request(stash_dir: Path, body: dict) -> dict:
    """The request with large data URIs replaced by files in the input stash `stash_dir`."""
    def stash(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("data:") and len(value) > INLINE_LIMIT:
            mime, data = media.decode_data_uri(value)
            digest = hashlib.sha256(data).hexdigest()
            name = digest + media.extension_for(mime)
            target = stash_dir / name
            if not target.exists():
                stash_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
                tmp = target.with_suffix(".part")
                with open(os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600), "wb") as out:
                    out.write(data)
                tmp.replace(target)
            return f"{STASH_PREFIX}{mime}:{name}"
        return value
    return _map_leaves(body, stash)


def restore_request(stash_dir: Path, stored: dict) -> dict:
    """The request as it was sent, data URIs and all (for re-running a task)."""
    def restore(value: Any) -> Any:
        if found := stashed(value):
            mime, name = found
            return media.encode_data_uri(mime, (stash_dir / name).read_bytes())
        return value
    return _map_leaves(stored, restore)


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
