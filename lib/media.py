"""Media-type rules: which MIME types each kind of media may have, their file
extensions, size limits, data URIs, and recognising a file by its first bytes.

Everything that decides "is this an image, a video or a sound, and may it go
there" lives here, so the forms, the catalog validation, the simulator and the
archive agree.
"""
from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

MB = 1024 * 1024

# Accepted MIME types per media kind, with the extension an archived copy gets.
MIME_TYPES: dict[str, dict[str, str]] = {
    "image": {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"},
    "video": {"video/mp4": ".mp4", "video/webm": ".webm", "video/quicktime": ".mov"},
    "audio": {
        "audio/mpeg": ".mp3",
        "audio/wav": ".wav",
        "audio/x-wav": ".wav",
        "audio/flac": ".flac",
        "audio/aac": ".aac",
        "audio/mp4": ".m4a",
    },
}

EXTENSIONS: dict[str, str] = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mov": "video/quicktime",
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".aac": "audio/aac",
    ".m4a": "audio/mp4",
}

# Runway's limits (runway-api.md §3.1): data URIs are capped at 5 MB for every
# kind; URLs may point at larger files; uploads take 512 B to 200 MB.
DATA_URI_MAX_BYTES = 5 * MB
URL_MAX_BYTES = {"image": 16 * MB, "video": 32 * MB, "audio": 32 * MB}
UPLOAD_MIN_BYTES = 512
UPLOAD_MAX_BYTES = 200 * MB
URL_MAX_LENGTH = 2048

# The archive only ever writes these types into static/, never HTML or SVG.
ARCHIVABLE = {mime for kinds in MIME_TYPES.values() for mime in kinds}

_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)(?P<params>(;[\w-]+=[^;,]*)*)(?P<b64>;base64)?,", re.I)


def kind_of(mime: str | None) -> str | None:
    """The media kind ("image", "video", "audio") of an accepted MIME type."""
    mime = normalise_mime(mime)
    for kind, types in MIME_TYPES.items():
        if mime in types:
            return kind
    return None


def normalise_mime(mime: str | None) -> str:
    return (mime or "").split(";")[0].strip().lower()


def extension_for(mime: str | None) -> str:
    mime = normalise_mime(mime)
    for types in MIME_TYPES.values():
        if mime in types:
            return types[mime]
    return ""


def mime_from_name(name: str) -> str | None:
    match = re.search(r"(\.[A-Za-z0-9]+)$", name or "")
    return EXTENSIONS.get(match.group(1).lower()) if match else None


def sniff_mime(head: bytes) -> str | None:
    """Recognise a media file by its first bytes (at least 16 are needed)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return "video/quicktime"
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        return "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06):
        return "audio/mpeg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        return "audio/aac"
    return None


@dataclass(frozen=True)
class DataUri:
    mime: str
    size: int  # decoded bytes
    base64: bool


def parse_data_uri(uri: str) -> DataUri | None:
    """Read a data URI's type and decoded size without decoding it."""
    match = _DATA_URI.match(uri)
    if not match:
        return None
    payload_len = len(uri) - match.end()
    if match.group("b64"):
        payload = uri[match.end():]
        padding = len(payload) - len(payload.rstrip("="))
        size = payload_len * 3 // 4 - padding
    else:
        size = payload_len
    return DataUri(mime=normalise_mime(match.group("mime")), size=size, base64=bool(match.group("b64")))


def decode_data_uri(uri: str) -> tuple[str, bytes]:
    """The MIME type and bytes of a data URI; ValueError if it is not one."""
    match = _DATA_URI.match(uri)
    if not match:
        raise ValueError("not a data URI")
    payload = uri[match.end():]
    try:
        data = base64.b64decode(payload, validate=True) if match.group("b64") else payload.encode()
    except binascii.Error as exc:
        raise ValueError("data URI is not valid base64") from exc
    return normalise_mime(match.group("mime")), data


def encode_data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"
