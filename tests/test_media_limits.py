"""Hostile media: pages that merely contain the letters of a container's
signature are not taken for media; real files made by ffmpeg still are."""
from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path
from tempfile import TemporaryDirectory

import imageio_ffmpeg
import pytest

from lib import media
from tests import media_samples


def _ffmpeg(data: bytes, muxer: str, *args: str) -> bytes:
    """`data` run through ffmpeg with `args`, as the file a user would export."""
    with TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "source", Path(tmp) / "target"
        source.write_bytes(data)
        run = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                              "-i", str(source), *args, "-f", muxer, str(target)], capture_output=True)
        assert run.returncode == 0, run.stderr
        return target.read_bytes()


@lru_cache(maxsize=None)
def mov() -> bytes:
    return _ffmpeg(media_samples.mp4(), "mov", "-c", "copy")


@lru_cache(maxsize=None)
def m4a() -> bytes:
    return _ffmpeg(media_samples.wav(), "ipod", "-c:a", "aac")


@lru_cache(maxsize=None)
def fragmented_mp4() -> bytes:
    """A real MP4 of many fragments (one per frame): the most boxes a real file is built of."""
    return _ffmpeg(media_samples.mp4(), "mp4", "-c", "copy", "-movflags", "frag_every_frame+empty_moov")


HTML_FTYP = b"<!--ftyp--><!doctype html><html><body><script>alert(document.domain)</script></body></html>"


# ---------------------------------------------------------------- item 16: ftyp in a page is not a video

@pytest.mark.parametrize("page", [
    HTML_FTYP,
    b"<!--ftyp-->",
    b"\0\0\0\x18ftyp\x00\x01\x02\x03\0\0\0\0\x04\x05\x06\x07<html>",  # brands that are not letters
    b"\0\0\0\x10ftypisom\0\0\0\0" + b"\0\0\0\x04<ht" + b"ml></html>" * 5,  # no real box after it
], ids=["html comment", "only the comment", "brands that are not letters", "no real box after ftyp"])
def test_a_page_that_starts_with_the_letters_ftyp_is_not_media(page):
    assert media.sniff_mime(page[:64]) is None and media.sniff_mime(page) is None
    assert media.check_upload("clip.mp4", page, ("video",))[0].startswith(
        "clip.mp4 is not a valid video file: its contents are not MP4, QuickTime or WebM data.")


@pytest.mark.parametrize("name, make, mime, kind", [
    ("clip.mp4", media_samples.mp4, "video/mp4", "video"),
    ("clip.mov", mov, "video/quicktime", "video"),
    ("line.m4a", m4a, "audio/mp4", "audio"),
    ("clip.mp4", fragmented_mp4, "video/mp4", "video"),
])
def test_real_iso_media_from_ffmpeg_is_still_recognised(name, make, mime, kind):
    data = make()
    assert media.sniff_mime(data[:32]) == media.sniff_mime(data[:64]) == media.sniff_mime(data) == mime
    assert media.check_upload(name, data, (kind,)) == []
