"""Media-type rules: which MIME types each kind of media may have, their file
extensions, size and pixel limits, data URIs, recognising a file by its first
bytes, and reading a file's structure (image dimensions, whether it was cut
short) without decoding it.

Everything that decides "is this an image, a video or a sound, and may it go
there" lives here, so the forms, the catalog validation, the simulator and the
archive agree.
"""
from __future__ import annotations

import base64
import binascii
import io
import math
import re
import threading
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

# Runway's limits (docs/runway-api.md §3.1): data URIs are capped at 5 MB for every
# kind; URLs may point at larger files; uploads take 512 B to 200 MB.
DATA_URI_MAX_BYTES = 5 * MB
UPLOAD_MIN_BYTES = 512
UPLOAD_MAX_BYTES = 200 * MB
URL_MAX_LENGTH = 2048
# An image's pixels, not its bytes, decide what decoding it costs: a 642 KB PNG of zero rows
# decodes to 676 MB. 40 MP is above any phone's default photo and keeps a decode near 160 MB.
IMAGE_MAX_PIXELS = 40_000_000
# Boxes, chunks or segments walked in one file. Real files have far fewer (an MP4 a handful, a
# fragmented one two per fragment, a 200 MB PNG in 8 KB chunks ~25,000); walking this many
# takes about 0.1 s of CPU.
STRUCTURE_MAX_PARTS = 100_000
# Upload checks running at once in the process, so many tabs checking big files queue up.
UPLOAD_CHECKS_AT_ONCE = 2

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


def player_kind(mime: str | None) -> str:
    """The player an archived output is shown in: "image", "audio", or else "video" (the archive
    keeps media files only, so what is neither an image nor a sound is a video)."""
    mime = mime or ""
    if mime.startswith("image/"):
        return "image"
    if mime.startswith("audio/"):
        return "audio"
    return "video"


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


# ---------------------------------------------------------------- structure, read without decoding

class _NotWhole(Exception):
    """What a file's structure shows is wrong with it, as the words that follow its name."""


def _cut_short(reason: str) -> _NotWhole:
    return _NotWhole(f"is incomplete ({reason}); the file was cut short, so export or download it again.")


def _check_part_count(parts: int, what: str, format_name: str) -> None:
    if parts > STRUCTURE_MAX_PARTS:
        raise _NotWhole(f"has more than {STRUCTURE_MAX_PARTS:,} {what}, which no real {format_name} file has.")


def image_size(data: bytes) -> tuple[int, int] | None:
    """An image's width and height in pixels, read from its header (PNG IHDR, JPEG SOFn, WebP
    VP8/VP8L/VP8X) without decoding it; None if the header is missing, damaged or not one of these."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    elif data.startswith(b"\xff\xd8"):
        width = height = 0
        try:
            for marker, start, end in _jpeg_segments(data):
                if marker in _JPEG_FRAMES and end - start >= 5:  # precision, then height and width
                    height = int.from_bytes(data[start + 1:start + 3], "big")
                    width = int.from_bytes(data[start + 3:start + 5], "big")
                if marker in _JPEG_FRAMES or marker == _JPEG_SCAN:
                    break
        except _NotWhole:
            return None
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        chunk, payload = data[12:16], data[20:30]
        if chunk == b"VP8X" and len(payload) == 10:
            width, height = int.from_bytes(payload[4:7], "little") + 1, int.from_bytes(payload[7:10], "little") + 1
        elif chunk == b"VP8L" and len(payload) >= 5 and payload[0] == 0x2F:
            bits = int.from_bytes(payload[1:5], "little")
            width, height = (bits & 0x3FFF) + 1, (bits >> 14 & 0x3FFF) + 1
        elif chunk == b"VP8 " and len(payload) == 10 and payload[3:6] == b"\x9d\x01\x2a":
            width = int.from_bytes(payload[6:8], "little") & 0x3FFF
            height = int.from_bytes(payload[8:10], "little") & 0x3FFF
        else:
            return None
    else:
        return None
    return (width, height) if width and height else None


def over_pixel_limit(data: bytes) -> str | None:
    """How an image is over IMAGE_MAX_PIXELS, as "is 20000 × 20000 pixels (400 MP); the limit is
    40 MP", from its header alone; None if it is within the limit or its header cannot be read."""
    size = image_size(data)
    if size is None or size[0] * size[1] <= IMAGE_MAX_PIXELS:
        return None
    width, height = size
    return (f"is {width} × {height} pixels ({_megapixels(width * height)}); "
            f"the limit is {_megapixels(IMAGE_MAX_PIXELS)}")


# JPEG markers: frame headers (SOF0-15 but DHT, JPG and DAC), start of scan, end of image, and those
# that stand alone with no length (TEM, RST0-7, SOI).
_JPEG_FRAMES = {code for code in range(0xC0, 0xD0) if code not in (0xC4, 0xC8, 0xCC)}
_JPEG_SCAN, _JPEG_END = 0xDA, 0xD9
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD9)}
_JPEG_MARKER = re.compile(rb"\xff+([^\x00\xff])")  # fill bytes may come before a marker
# Scan data runs to the first 0xFF that is neither a stuffed byte (FF 00), a restart (FF D0-D7) nor fill.
_JPEG_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def _jpeg_segments(data: bytes):
    """(marker, payload start, payload end) of each JPEG segment after SOI, up to EOI;
    _NotWhole if the structure stops before EOI."""
    offset, parts = 2, 0
    while True:
        parts += 1
        _check_part_count(parts, "segments", "JPEG")
        marker = _JPEG_MARKER.match(data, offset)
        if marker is None:
            raise _cut_short("the image data ends early")
        code, offset = marker[1][0], marker.end()
        if code == _JPEG_END:
            return
        if code in _JPEG_STANDALONE:
            continue
        length = int.from_bytes(data[offset:offset + 2], "big")
        if length < 2 or offset + length > len(data):
            raise _cut_short("the image data ends early")
        yield code, offset + 2, offset + length
        offset += length
        if code == _JPEG_SCAN:
            scan_end = _JPEG_SCAN_END.search(data, offset)
            if scan_end is None:
                raise _cut_short("the image data ends early")
            offset = scan_end.start()


def _check_png(data: bytes) -> None:
    offset, parts = 8, 0
    while True:
        parts += 1
        _check_part_count(parts, "chunks", "PNG")
        end = offset + 12 + int.from_bytes(data[offset:offset + 4], "big")
        if end > len(data):
            raise _cut_short("the image data ends early")
        if data[offset + 4:offset + 8] == b"IEND":
            return
        offset = end


def _check_iso_media(data: bytes, format_name: str) -> None:
    offset, boxes, parts = 0, set(), 0
    while offset + 8 <= len(data):
        parts += 1
        _check_part_count(parts, "boxes", format_name)
        size, box = int.from_bytes(data[offset:offset + 4], "big"), data[offset + 4:offset + 8]
        header = 8
        if size == 1:
            size, header = int.from_bytes(data[offset + 8:offset + 16], "big"), 16
        elif size == 0:  # the last box runs to the end of the file
            size = len(data) - offset
        if size < header:
            raise _cut_short("its boxes are corrupt")
        if offset + size > len(data):
            raise _cut_short(f"the {box.decode('latin-1')!r} box needs {offset + size - len(data)} more bytes")
        boxes.add(box)
        offset += size
    if offset != len(data):
        raise _cut_short("it stops inside a box header")
    if b"moov" not in boxes and b"moof" not in boxes:
        raise _cut_short("it has no movie header")


def _check_structure(mime: str, data: bytes) -> None:
    """_NotWhole if a file ends before its own structure says it should, or has more parts than
    any real file. Cut-short files are recognised for PNG, JPEG, WebP, MP4/MOV/M4A and WAV."""
    if mime in _ISO_MEDIA:
        _check_iso_media(data, _FORMAT_NAMES[mime])
    elif data[:4] == b"RIFF":  # WAV and WebP declare their length up front
        declared = int.from_bytes(data[4:8], "little") + 8
        if len(data) < declared:
            raise _cut_short(f"{len(data)} of {declared} bytes")
    elif mime == "image/png":
        _check_png(data)
    elif mime == "image/jpeg":
        for _ in _jpeg_segments(data):
            pass


# ---------------------------------------------------------------- uploads

_FORMAT_NAMES = {
    "image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WebP", "video/mp4": "MP4", "video/webm": "WebM",
    "video/quicktime": "QuickTime", "audio/mpeg": "MP3", "audio/wav": "WAV", "audio/x-wav": "WAV",
    "audio/flac": "FLAC", "audio/aac": "AAC", "audio/mp4": "M4A",
}
# One container, several names: an .m4a or .mov may start like an .mp4 and still be fine.
_ISO_MEDIA = {"video/mp4", "video/quicktime", "audio/mp4"}
_checks_running = threading.BoundedSemaphore(UPLOAD_CHECKS_AT_ONCE)


def check_upload(name: str, data: bytes, kinds: tuple[str, ...] | list[str]) -> list[str]:
    """Every problem with an uploaded file for a field that accepts `kinds`
    ("image", "video", "audio"), in words for the person who chose it; empty
    when the file may be sent.

    The bytes decide what a file is, and the name must agree with them: a file
    that is empty, over the upload limit, named with an extension the field does
    not take, of another kind than its name says, cut short, built of more parts
    than any real file, or an image of more than IMAGE_MAX_PIXELS is refused
    before anything is sent. Nothing is decoded: the structure and the image
    header are read, so a small file that would decode to gigabytes costs
    nothing to refuse. `name` is only read for its extension, never used as a path.
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
    elif (problem := _read_structure(sniffed, data)) is not None:
        problems.append(f"{shown} {problem}")
    return problems


def _read_structure(mime: str, data: bytes) -> str | None:
    """What the structure or image header shows is wrong with a file; None if it may be sent."""
    with _checks_running:
        try:
            _check_structure(mime, data)
        except _NotWhole as problem:
            return str(problem)
        if kind_of(mime) != "image":
            return None
        if image_size(data) is None:
            return "is not a valid image file: its header does not give its size in pixels."
        if (too_large := over_pixel_limit(data)) is not None:
            return f"{too_large}."
    return None


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f}".removesuffix(".0") + " MP"


def _size(n: int) -> str:
    return f"{n / MB:.1f} MB" if n >= MB else f"{n / 1024:.0f} KB"


def _one_of(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


# ---------------------------------------------------------------- previews

IMAGE_HEADER_BYTES = MB  # an image's size is in its first bytes; JPEG metadata before it stays well under this
PREVIEW_BOX = 320  # pixels: a preview under an upload widget, not the file itself


def size_text(n: int) -> str:
    """A file's size as a person reads it: "12.6 MB", "84 KB"."""
    return _size(n)


def image_file_size(path) -> tuple[int, int] | None:
    """An image file's width and height from its header, reading at most IMAGE_HEADER_BYTES."""
    with open(path, "rb") as file:
        return image_size(file.read(IMAGE_HEADER_BYTES))


def parse_ratio(value: object) -> tuple[int, int] | None:
    """A request's `ratio` ("1280:720") as its width and height; None for anything else, a zero
    side among them. ASCII digits only: "²" is a digit to `str.isdigit` but not to `int`."""
    found = re.fullmatch(r"([0-9]{1,6}):([0-9]{1,6})", str(value))
    if not found or not int(found.group(1)) or not int(found.group(2)):
        return None
    return int(found.group(1)), int(found.group(2))


def aspect_text(width: int, height: int) -> str:
    """A width and height as a ratio a person knows: 1024×768 is "4:3", 1280:720 is "16:9";
    an uncommon one as "1.85:1"."""
    whole = math.gcd(width, height)
    w, h = width // whole, height // whole
    return f"{w}:{h}" if max(w, h) <= 32 else f"{width / height:.2f}:1"


def thumbnail(data: bytes, box: int = PREVIEW_BOX) -> bytes | None:
    """A JPEG of an image at most `box` pixels on a side; None for anything that is not an
    image whose header says it is within IMAGE_MAX_PIXELS (so a hostile file is never decoded
    beyond that) or that does not decode."""
    size = image_size(data)
    if size is None or size[0] * size[1] > IMAGE_MAX_PIXELS:
        return None
    from PIL import Image  # Streamlit's own dependency; imported only when a preview is drawn

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.size != size:
                return None  # the header read and Pillow's disagree: not the file it claims to be
            image.draft("RGB", (box, box))  # JPEG: decode at a fraction of the size
            image.thumbnail((box, box))
            out = io.BytesIO()
            image.convert("RGB").save(out, "JPEG", quality=85)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return out.getvalue()
