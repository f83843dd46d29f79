"""Small real media files for tests, made on the spot (nothing is downloaded)."""
from __future__ import annotations

import io
import random
from functools import cache
from pathlib import Path
from tempfile import TemporaryDirectory

from PIL import Image

from lib.simulator import render


def png(width: int = 64, height: int = 48, colour=(200, 80, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


def noisy_png(side: int) -> bytes:
    """A PNG that does not compress: about 3 × side² bytes."""
    rng = random.Random(side)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3)).save(buffer, "PNG", compress_level=0)
    return buffer.getvalue()


@cache
def mp4(seconds: float = 3.0) -> bytes:
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"
        render.render_video(path, 160, 90, seconds, label="sample", max_side=160)
        return path.read_bytes()


@cache
def wav(seconds: float = 1.0) -> bytes:
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        render.render_audio(path, seconds, label="sample", fmt="wav")
        return path.read_bytes()
