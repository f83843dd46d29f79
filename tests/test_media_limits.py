"""Hostile media: small files that would decode to gigabytes, files of more parts
than any real file, and pages that merely contain the letters of a container's
signature. Each is refused with words for the person who chose it, nothing is
sent, and the memory a check takes stays small; real files made by Pillow and
ffmpeg still pass."""
from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import threading
import zlib
from functools import cache
from pathlib import Path
from tempfile import TemporaryDirectory

import imageio_ffmpeg
import pytest
from PIL import Image

from lib import media
from lib.ui import PAGE_FILES
from tests.support import media_samples
from tests.support.apptest import open_page
from tests.test_bad_input import error_next_to, generate, nothing_sent

ROOT = Path(__file__).resolve().parent.parent
GROWTH_LIMIT_MB = 30  # what a check may add to the process's peak memory


# ---------------------------------------------------------------- hostile files, made here

def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@cache
def zero_png(width: int = 8000, height: int = 8000) -> bytes:
    """A whole, valid RGB PNG of black rows: about 190 KB that decode to width × height × 3 bytes
    (192 MB at 8000 × 8000)."""
    squeeze = zlib.compressobj(9)
    row = b"\0" * (1 + width * 3)
    pixels = b"".join(squeeze.compress(row) for _ in range(height)) + squeeze.flush()
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + _png_chunk(b"IDAT", pixels) + _png_chunk(b"IEND", b""))


def _pillow(fmt: str, size=(123, 45), **options) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 140, 90)).save(buffer, fmt, **options)
    return buffer.getvalue()


def huge_jpeg(width: int = 10000, height: int = 10000) -> bytes:
    """A small real JPEG whose frame header claims `width` × `height`."""
    data = bytearray(_pillow("JPEG"))
    frame = data.index(b"\xff\xc0")
    data[frame + 5:frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def tiny_box_mp4(boxes: int) -> bytes:
    """An MP4 that is an `ftyp` and a `moov` box, then `boxes` empty 8-byte `free` boxes."""
    ftyp = struct.pack(">I", 24) + b"ftypisom" + struct.pack(">I", 512) + b"isomiso2"
    return ftyp + struct.pack(">I", 8) + b"moov" + (struct.pack(">I", 8) + b"free") * boxes


def _ffmpeg(data: bytes, muxer: str, *args: str) -> bytes:
    """`data` run through ffmpeg with `args`, as the file a user would export."""
    with TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "source", Path(tmp) / "target"
        source.write_bytes(data)
        run = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                              "-i", str(source), *args, "-f", muxer, str(target)], capture_output=True)
        assert run.returncode == 0, run.stderr
        return target.read_bytes()


@cache
def mov() -> bytes:
    return _ffmpeg(media_samples.mp4(), "mov", "-c", "copy")


@cache
def m4a() -> bytes:
    return _ffmpeg(media_samples.wav(), "ipod", "-c:a", "aac")


@cache
def fragmented_mp4() -> bytes:
    """A real MP4 of many fragments (one per frame): the most boxes a real file is built of."""
    return _ffmpeg(media_samples.mp4(), "mp4", "-c", "copy", "-movflags", "frag_every_frame+empty_moov")


HTML_FTYP = b"<!--ftyp--><!doctype html><html><body><script>alert(document.domain)</script></body></html>"


def peak_growth_mb(code: str, *args: str) -> tuple[float, str]:
    """Run `code` in a fresh Python, after everything it imports is loaded, and report how much it
    raised the process's peak resident memory (MB) and what it printed. The code gets `sys.argv`."""
    script = ("import resource, sys\n"
              "import PIL.Image, lib.media, lib.simulator\n"  # loaded before the baseline either way
              "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
              f"{code}\n"
              "print('growth', (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)\n")
    run = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    *printed, growth = run.stdout.strip().splitlines()
    return float(growth.split()[1]), "\n".join(printed)


# ---------------------------------------------------------------- item 5: pixels, read from the header

@pytest.mark.parametrize("name, make, problem", [
    ("photo.png", zero_png, "photo.png is 8000 × 8000 pixels (64 MP); the limit is 40 MP."),
    ("photo.png", lambda: zero_png(13000, 13000), "photo.png is 13000 × 13000 pixels (169 MP); the limit is 40 MP."),
    ("photo.jpg", huge_jpeg, "photo.jpg is 10000 × 10000 pixels (100 MP); the limit is 40 MP."),
])
def test_an_image_over_the_pixel_limit_is_refused_from_its_header(name, make, problem):
    assert media.check_upload(name, make(), ("image",)) == [problem]


def test_refusing_a_small_image_that_decodes_to_gigabytes_takes_almost_no_memory(tmp_path):
    hostile = tmp_path / "photo.png"
    hostile.write_bytes(zero_png(13000, 13000))  # 642 KB; a decode would take 676 MB
    growth, printed = peak_growth_mb(
        "from pathlib import Path\n"
        "print(lib.media.check_upload('photo.png', Path(sys.argv[1]).read_bytes(), ('image',)))",
        str(hostile))
    assert printed == "['photo.png is 13000 × 13000 pixels (169 MP); the limit is 40 MP.']"
    assert growth < GROWTH_LIMIT_MB


@pytest.mark.parametrize("fmt, options", [
    ("PNG", {}), ("JPEG", {}), ("JPEG", {"progressive": True}), ("WEBP", {}), ("WEBP", {"lossless": True}),
    ("WEBP", {"exif": b"Exif\0\0MM\0*\0\0\0\x08\0\0"}),  # an extended (VP8X) header
])
def test_image_sizes_are_read_from_the_headers_pillow_writes(fmt, options):
    data = _pillow(fmt, size=(123, 45), **options)
    assert media.image_size(data) == (123, 45)
    assert media.check_upload(f"photo.{fmt.lower()}", data, ("image",)) == []


@pytest.mark.parametrize("name, data, problem", [
    ("photo.webp", _pillow("WEBP", size=(300, 200))[:-40], "photo.webp is incomplete"),
    ("photo.jpg", _pillow("JPEG", size=(300, 200), progressive=True)[:-300], "photo.jpg is incomplete"),
    ("photo.png", media_samples.noisy_png(64)[:40], "photo.png is incomplete"),
], ids=["webp", "progressive jpeg", "png cut in its header"])
def test_cut_short_images_are_still_found_without_decoding(name, data, problem):
    assert media.check_upload(name, data, ("image",))[0].startswith(problem)


@pytest.mark.parametrize("name, data", [
    ("photo.png", media_samples.png() + b"trailing bytes some apps append"),
    ("photo.jpg", _pillow("JPEG") + _pillow("JPEG")),  # a phone's second picture after the first's end
], ids=["png", "jpeg"])
def test_data_after_an_image_end_is_not_taken_for_damage(name, data):
    assert media.check_upload(name, data, ("image",)) == []


def test_a_hostile_image_upload_is_answered_under_its_field_and_nothing_is_sent(app_env):
    at = open_page(PAGE_FILES["image_to_video"])
    at.text_area(key="image_to_video_promptText").input("The fox turns its head")
    at.file_uploader(key="image_to_video_promptImage_file").set_value(("photo.png", zero_png(), "image/png"))
    generate(at)
    assert not at.exception
    assert error_next_to(at, "image_to_video_promptImage_file") == (
        "First frame image: photo.png is 8000 × 8000 pixels (64 MP); the limit is 40 MP.")
    nothing_sent(app_env)


# ---------------------------------------------------------------- item 5: boxes and parts

def test_an_mp4_of_more_boxes_than_any_real_file_is_refused():
    boxes = media.STRUCTURE_MAX_PARTS + 1
    assert media.check_upload("clip.mp4", tiny_box_mp4(boxes), ("video",)) == [
        "clip.mp4 has more than 100,000 boxes, which no real MP4 file has."]
    assert media.check_upload("clip.mp4", tiny_box_mp4(1000), ("video",)) == []


@pytest.mark.parametrize("name, data, problem", [
    ("photo.png", media_samples.png()[:33] + _png_chunk(b"tEXt", b"") * 100_001 + media_samples.png()[33:],
     "photo.png has more than 100,000 chunks, which no real PNG file has."),
    ("photo.jpg", b"\xff\xd8" + b"\xff\xfe\x00\x02" * 100_001 + _pillow("JPEG")[2:],
     "photo.jpg has more than 100,000 segments, which no real JPEG file has."),
], ids=["png of empty text chunks", "jpeg of empty comments"])
def test_an_image_of_more_parts_than_any_real_file_is_refused(name, data, problem):
    assert media.check_upload(name, data, ("image",)) == [problem]


def test_real_files_of_many_parts_still_pass():
    assert media.check_upload("clip.mp4", fragmented_mp4(), ("video",)) == []


def test_a_hostile_video_upload_is_answered_under_its_field_and_nothing_is_sent(app_env):
    at = open_page(PAGE_FILES["video_upscale"])
    at.file_uploader(key="video_upscale_videoUri_file").set_value(
        ("clip.mp4", tiny_box_mp4(media.STRUCTURE_MAX_PARTS + 1), "video/mp4"))
    generate(at)
    assert not at.exception
    assert error_next_to(at, "video_upscale_videoUri_file").endswith(
        "clip.mp4 has more than 100,000 boxes, which no real MP4 file has.")
    nothing_sent(app_env)


class HeldBack(bytes):
    """A file whose bytes past its signature are handed out only once the test lets them go,
    so the test can see how many checks are reading at the same time."""

    def __new__(cls, data: bytes, readers: set, changed: threading.Condition, go: threading.Event):
        held = super().__new__(cls, data)
        held.readers, held.changed, held.go = readers, changed, go
        return held

    def __getitem__(self, key):
        if isinstance(key, slice) and (key.start or 0) >= 8:
            with self.changed:
                self.readers.add(threading.get_ident())
                self.changed.notify_all()
            self.go.wait()
        return bytes.__getitem__(self, key)


def test_only_a_few_upload_checks_run_at_once():
    readers, changed, go = set(), threading.Condition(), threading.Event()
    results = []
    checks = [threading.Thread(target=lambda: results.append(media.check_upload(
        "photo.png", HeldBack(media_samples.png(), readers, changed, go), ("image",)))) for _ in range(6)]
    for check in checks:
        check.start()
    try:
        with changed:
            assert changed.wait_for(lambda: len(readers) >= media.UPLOAD_CHECKS_AT_ONCE, timeout=10)
            # the others wait their turn: none starts reading however long this waits
            assert not changed.wait_for(lambda: len(readers) > media.UPLOAD_CHECKS_AT_ONCE, timeout=1)
    finally:
        go.set()
        for check in checks:
            check.join()
    assert media.UPLOAD_CHECKS_AT_ONCE == 2 and results == [[]] * 6


# ---------------------------------------------------------------- item 5: the simulator

SIMULATED_TASK = """
import time, httpx, tempfile
from pathlib import Path
from lib.simulator import SimulatorConfig, SimulatorServer
with SimulatorServer(SimulatorConfig(state_dir=Path(tempfile.mkdtemp()), pending_seconds=0.1, run_seconds=0.2,
                                     max_side=96)) as server:
    client = httpx.Client(base_url=server.url, timeout=30, headers={
        "Authorization": f"Bearer {server.api_key}", "X-Runway-Version": "2024-11-06"})
    uri = lib.media.encode_data_uri("image/png", Path(sys.argv[1]).read_bytes())
    created = client.post("/v1/image_to_video", json={"model": "gen4_turbo", "promptImage": uri,
                                                     "ratio": "960:960", "duration": 2})
    assert created.status_code == 200, created.text
    for _ in range(600):
        task = client.get(f"/v1/tasks/{created.json()['id']}").json()
        if task["status"] in ("SUCCEEDED", "FAILED"):
            break
        time.sleep(0.05)
print(json.dumps(task))
"""


def test_the_simulator_fails_a_task_whose_image_would_decode_to_gigabytes_without_decoding_it(tmp_path):
    hostile = tmp_path / "photo.png"
    hostile.write_bytes(zero_png(13000, 13000))
    growth, printed = peak_growth_mb("import json\n" + SIMULATED_TASK, str(hostile))
    task = json.loads(printed)
    assert task["status"] == "FAILED" and task["failureCode"] == "ASSET.INVALID"
    assert task["failure"] == ("An input could not be used: the input image is 13000 × 13000 pixels (169 MP); "
                               "the limit is 40 MP.")
    assert task["cost"] == {"credits": 0}
    assert growth < GROWTH_LIMIT_MB


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
