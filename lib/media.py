"""Media-type rules: which MIME types each kind of media may have, their file
extensions, size limits, data URIs, and recognising a file by its first bytes.

Everything that decides "is this an image, a video or a sound, and may it go
there" lives here, so the forms, the catalog validation, the simulator and the
archive agree.
"""
from __future__ import annotations

import base64
import binascii
import io
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
    """Recognise a media file by its first bytes (64 are enough; the whole file does too)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if _starts_iso_media(head):
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


def _starts_iso_media(head: bytes) -> bool:
    """Whether `head` opens with a real `ftyp` box (and, when `head` reaches it, a real box after
    it), not merely the letters "ftyp" at offset 4 as in an HTML page starting `<!--ftyp-->`."""
    if head[4:8] != b"ftyp" or len(head) < 16:
        return False
    size = int.from_bytes(head[:4], "big")
    if not (16 <= size <= 1024 and size % 4 == 0):
        return False
    # Some QuickTime writers pad the compatible brands with zero bytes.
    brands = [head[i:i + 4] for i in range(16, min(size, len(head)) - 3, 4)]
    if not _printable(head[8:12]) or not all(_printable(b) or b == b"\0\0\0\0" for b in brands):
        return False
    if len(head) < size + 8:
        return True
    following = int.from_bytes(head[size:size + 4], "big")
    return (following >= 8 or following in (0, 1)) and _printable(head[size + 4:size + 8])


def _printable(four: bytes) -> bool:
    return len(four) == 4 and all(0x20 <= c <= 0x7E for c in four)


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


# ---------------------------------------------------------------- uploads

_FORMAT_NAMES = {
    "image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WebP", "video/mp4": "MP4", "video/webm": "WebM",
    "video/quicktime": "QuickTime", "audio/mpeg": "MP3", "audio/wav": "WAV", "audio/x-wav": "WAV",
    "audio/flac": "FLAC", "audio/aac": "AAC", "audio/mp4": "M4A",
}
# One container, several names: an .m4a or .mov may start like an .mp4 and still be fine.
_ISO_MEDIA = {"video/mp4", "video/quicktime", "audio/mp4"}


def check_upload(name: str, data: bytes, kinds: tuple[str, ...] | list[str]) -> list[str]:
    """Every problem with an uploaded file for a field that accepts `kinds`
    ("image", "video", "audio"), in words for the person who chose it; empty
    when the file may be sent.

    The bytes decide what a file is, and the name must agree with them: a file
    that is empty, over the upload limit, named with an extension the field does
    not take, of another kind than its name says, or cut short is refused
    before anything is sent. Cut-short files are recognised for PNG, JPEG, WebP,
    MP4/MOV/M4A and WAV. `name` is only read for its extension, never used as a path.
    """
    kinds = tuple(kinds)
    shown = re.split(r"[\\/]", name or "")[-1][:80] or "The file"
    wanted = " or ".join(kinds)
    if not data:
        return [f"{shown} is empty."]
    if len(data) > UPLOAD_MAX_BYTES:
        return [f"{shown} is {_size(len(data))}; the limit is {_size(UPLOAD_MAX_BYTES)}."]
    problems = []
    extension = (re.search(r"\.[A-Za-z0-9]+$", shown) or [""])[0].lower()
    named = EXTENSIONS.get(extension)
    if kind_of(named) not in kinds:
        allowed = _one_of(sorted(e for e, m in EXTENSIONS.items() if kind_of(m) in kinds))
        problems.append(f"{shown}: {extension or 'a name without an extension'} is not accepted here; "
                        f"use {allowed}.")
    sniffed = sniff_mime(data[:64])
    if sniffed is None:
        formats = _one_of(sorted({_FORMAT_NAMES[m] for kind in kinds for m in MIME_TYPES[kind]}))
        problems.append(f"{shown} is not a valid {wanted} file: its contents are not {formats} data.")
    elif kind_of(sniffed) not in kinds:
        problems.append(f"{shown} contains {kind_of(sniffed)} ({_FORMAT_NAMES[sniffed]}), not {wanted}.")
    elif named and kind_of(named) in kinds and named != sniffed and not {named, sniffed} <= _ISO_MEDIA:
        problems.append(f"{shown} is named as {_FORMAT_NAMES[named]} but contains {_FORMAT_NAMES[sniffed]}; "
                        f"rename it to {extension_for(sniffed)}.")
    elif (cut := _cut_short(sniffed, data)) is not None:
        problems.append(f"{shown} is incomplete ({cut}); the file was cut short, so export or download it again.")
    return problems


def _cut_short(mime: str, data: bytes) -> str | None:
    """Why a file of this type ends before its own structure says it should; None if it looks whole."""
    if mime in _ISO_MEDIA:
        return _iso_media_cut_short(data)
    if data[:4] == b"RIFF":  # WAV and WebP declare their length up front
        declared = int.from_bytes(data[4:8], "little") + 8
        if len(data) < declared:
            return f"{len(data)} of {declared} bytes"
    if mime.startswith("image/"):
        return _image_cut_short(data)
    return None


def _iso_media_cut_short(data: bytes) -> str | None:
    offset, boxes = 0, set()
    while offset + 8 <= len(data):
        size, box = int.from_bytes(data[offset:offset + 4], "big"), data[offset + 4:offset + 8]
        header = 8
        if size == 1:
            size, header = int.from_bytes(data[offset + 8:offset + 16], "big"), 16
        elif size == 0:  # the last box runs to the end of the file
            size = len(data) - offset
        if size < header:
            return "its boxes are corrupt"
        if offset + size > len(data):
            return f"the {box.decode('latin-1')!r} box needs {offset + size - len(data)} more bytes"
        boxes.add(box)
        offset += size
    if offset != len(data):
        return "it stops inside a box header"
    if b"moov" not in boxes and b"moof" not in boxes:
        return "it has no movie header"
    return None


def _image_cut_short(data: bytes) -> str | None:
    from PIL import Image  # only uploads need a decoder here

    try:
        with Image.open(io.BytesIO(data)) as picture:
            picture.load()
    except Image.DecompressionBombError:
        return None  # whole, only very large; the API decides about pixel counts
    except (OSError, ValueError, SyntaxError):
        return "the image data ends early"
    return None


def _size(n: int) -> str:
    return f"{n / MB:.1f} MB" if n >= MB else f"{n / 1024:.0f} KB"


def _one_of(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"
