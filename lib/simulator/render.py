"""Real media made from a request's inputs: the simulator's outputs.

Videos are H.264 MP4s that browsers play, images are PNGs, sounds are MP3 or
WAV. Each is derived from what was given (an image is slowly zoomed, a video is
recoloured) or, with nothing to start from, synthesised with colours and tones
taken from a hash of the label, so different prompts give visibly different
results. Everything is kept small (the longer side at most ``max_side``) so a
render takes well under a second or two, and an input image is decoded only
once its header shows it is within the pixel limit (``media.IMAGE_MAX_PIXELS``).

``probe`` reads a file's codec, size and duration from ``ffmpeg -i``, because
imageio-ffmpeg ships ffmpeg without ffprobe.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import tempfile
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps, UnidentifiedImageError

from lib import media, settings

FPS = 24
MAX_DERIVED_SECONDS = 10  # a video made from a video lasts as long as its input, up to this
DEFAULT_SIZE = (1280, 720)


class RenderError(RuntimeError):
    """The media could not be made, usually because an input could not be read."""


def output_size(width: int, height: int, max_side: int | None = None) -> tuple[int, int]:
    """The requested size scaled down (never up) so its longer side is at most
    `max_side`, aspect ratio kept, both sides even (H.264 in yuv420p needs that)."""
    max_side = max_side or settings.simulator_max_side()
    scale = min(1.0, max_side / max(width, height))
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def _input_shape(width: int, height: int) -> tuple[int, int]:
    """An input's aspect ratio at the size of a typical output (longer side
    DEFAULT_SIZE[0]), so a small input does not give a tiny result."""
    scale = DEFAULT_SIZE[0] / max(width, height)
    return round(width * scale), round(height * scale)


def parse_ratio(ratio: str | None) -> tuple[int, int] | None:
    """`"1280:720"` -> (1280, 720); None for anything else."""
    match = re.fullmatch(r"(\d+):(\d+)", ratio or "")
    if not match or not int(match[1]) or not int(match[2]):
        return None
    return int(match[1]), int(match[2])


# ---------------------------------------------------------------- video

def render_video(out_path: str | Path, width: int | None, height: int | None, seconds: float | None, *,
                 image: bytes | None = None, video: bytes | None = None, label: str = "",
                 audio: str | None = None, max_side: int | None = None) -> Path:
    """Write an H.264 MP4 of about `seconds` at `width`:`height` (scaled down).

    With `image`, a slow zoom into it; with `video`, a recoloured copy of it
    (looped if short; `seconds` None means the input's own length, at most
    MAX_DERIVED_SECONDS); otherwise a moving gradient. A size of None follows
    the input's aspect ratio. `audio` adds an AAC track: "tone" or "silent".
    """
    out_path = Path(out_path)
    with tempfile.TemporaryDirectory(prefix="render-") as tmp:
        tmp = Path(tmp)
        inputs: list[str] = []
        if video is not None:
            source = tmp / "input-video"
            source.write_bytes(video)
            try:
                info = probe(source)
            except RenderError as exc:
                raise RenderError("the input video could not be read") from exc
            if not info.get("width"):
                raise RenderError("the input video has no picture")
            if seconds is None:
                seconds = min(info["duration"] or MAX_DERIVED_SECONDS, MAX_DERIVED_SECONDS)
            if not (width and height):
                width, height = _input_shape(info["width"], info["height"])
        elif image is not None:
            picture = _open_image(image)
            if not (width and height):
                width, height = _input_shape(picture.width, picture.height)
        seconds = max(0.5, float(seconds or 5))
        w, h = output_size(width or DEFAULT_SIZE[0], height or DEFAULT_SIZE[1], max_side)
        hue, c0, c1 = _palette(label)

        if video is not None:
            inputs += ["-stream_loop", "-1", "-i", str(source)]
            chain = (f"[0:v]scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h},setsar=1,"
                     f"hue=h={hue}:s=1.4,fps={FPS}")
        elif image is not None:
            still = tmp / "input.png"
            ImageOps.fit(picture, (w, h)).save(still, compress_level=1)
            frames = round(seconds * FPS)
            inputs += ["-loop", "1", "-framerate", str(FPS), "-i", str(still)]
            chain = (f"[0:v]zoompan=z='1+0.2*on/{frames}':d=1:x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)'"
                     f":s={w}x{h}:fps={FPS},setsar=1")
        else:
            # Drawn at a quarter of the size and scaled up: a smooth gradient loses nothing, and
            # ffmpeg's gradients source costs ~12 ms a frame at 1280x720 (3 s for 10 s of video).
            small = f"{max(2, w // 4)}x{max(2, h // 4)}"
            inputs += ["-f", "lavfi", "-i", f"gradients=s={small}:c0=0x{c0}:c1=0x{c1}:speed=0.03:r={FPS}"]
            chain = f"[0:v]scale={w}:{h}:flags=bilinear,setsar=1"

        overlay = _label_overlay(label, w, h)
        if overlay is not None:
            (tmp / "label.png").write_bytes(overlay)
            inputs += ["-i", str(tmp / "label.png")]
            chain += "[base];[base][1:v]overlay=0:H-h"
        chain += ",format=yuv420p[v]"

        maps = ["-map", "[v]"]
        if audio:
            source_audio = f"sine=f={220 + hue}:r=44100" if audio == "tone" else "anullsrc=r=44100:cl=mono"
            inputs += ["-f", "lavfi", "-i", source_audio]
            audio_index = inputs.count("-i") - 1
            maps += ["-map", f"{audio_index}:a", "-c:a", "aac", "-b:a", "64k"]

        _ffmpeg([*inputs, "-filter_complex", chain, *maps, "-t", f"{seconds:.3f}",
                 "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-r", str(FPS),
                 "-movflags", "+faststart", "-f", "mp4"], out_path)
    return out_path


# ---------------------------------------------------------------- image

def render_image(out_path: str | Path, width: int | None, height: int | None, *, label: str = "",
                 image: bytes | None = None, max_side: int | None = None) -> Path:
    """Write a PNG at `width`:`height` (scaled down): `image` cropped to fit and
    tinted, or a gradient with a few shapes chosen by the label's hash."""
    out_path = Path(out_path)
    picture = _open_image(image) if image is not None else None
    if picture is not None and not (width and height):
        width, height = _input_shape(picture.width, picture.height)
    w, h = output_size(width or DEFAULT_SIZE[0], height or DEFAULT_SIZE[1], max_side)
    hue, c0, c1 = _palette(label)
    tint = Image.new("RGB", (w, h), "#" + c0)
    if picture is not None:
        result = Image.blend(ImageOps.fit(picture, (w, h)), tint, 0.25)
    else:
        ramp = np.linspace(0.0, 1.0, w + h)[np.add.outer(np.arange(h), np.arange(w))][..., None]
        a, b = np.array(_rgb(c0), float), np.array(_rgb(c1), float)
        result = Image.fromarray((a * (1 - ramp) + b * ramp).astype(np.uint8), "RGB")
        draw = ImageDraw.Draw(result)
        seed = int(hashlib.sha256(label.encode()).hexdigest()[:8], 16)
        for i in range(4):
            x, y = (seed >> (i * 4)) % w, (seed >> (i * 4 + 2)) % h
            r = max(4, min(w, h) // (3 + i))
            draw.ellipse((x - r, y - r, x + r, y + r), outline="#" + (c1 if i % 2 else c0), width=3)
    overlay = _label_overlay(label, w, h)
    if overlay is not None:
        strip = Image.open(io.BytesIO(overlay))
        result.paste(strip, (0, h - strip.height), strip)
    partial = out_path.with_name(out_path.name + ".part")
    result.save(partial, format="PNG")
    os.replace(partial, out_path)
    return out_path


UPSCALE_MAX_SIDE_FACTOR = 4  # an upscale's longer side may reach this many times max_side


def upscaled_size(width: int, height: int, factor: float, max_side: int | None = None) -> tuple[int, int]:
    """An input's size times `factor`, its longer side at most UPSCALE_MAX_SIDE_FACTOR x
    `max_side` yet always larger than the input's: an upscale never comes back smaller."""
    longer = max(width, height)
    largest = UPSCALE_MAX_SIDE_FACTOR * (max_side or settings.simulator_max_side())
    target = max(min(longer * factor, largest), longer + 2)
    scale = target / longer
    return max(1, round(width * scale)), max(1, round(height * scale))


def render_upscale(out_path: str | Path, image: bytes, factor: float, *, max_side: int | None = None) -> Path:
    """Write a PNG of `image` enlarged by `factor` (see `upscaled_size`) and lightly sharpened."""
    out_path = Path(out_path)
    picture = _open_image(image)
    size = upscaled_size(picture.width, picture.height, factor, max_side)
    result = picture.resize(size, Image.LANCZOS).filter(ImageFilter.UnsharpMask(radius=2, percent=60))
    partial = out_path.with_name(out_path.name + ".part")
    result.save(partial, format="PNG")
    os.replace(partial, out_path)
    return out_path


# ---------------------------------------------------------------- audio

def render_audio(out_path: str | Path, seconds: float, *, label: str = "", fmt: str = "mp3") -> Path:
    """Write `seconds` of pulsing tones (pitch from the label's hash) as MP3 or WAV."""
    if fmt not in ("mp3", "wav"):
        raise ValueError(f"unsupported audio format {fmt!r}")
    hue, _, _ = _palette(label)
    f0 = 180 + hue * 2
    expr = f"0.35*sin(2*PI*{f0}*t)*exp(-3*mod(t,0.5))+0.15*sin(2*PI*{f0 * 1.5:.1f}*t)"
    codec = ["-c:a", "libmp3lame", "-b:a", "128k"] if fmt == "mp3" else ["-c:a", "pcm_s16le"]
    seconds = max(0.1, float(seconds))
    _ffmpeg(["-f", "lavfi", "-i", f"aevalsrc='{expr}':s=44100:d={seconds:.3f}", "-ac", "1", *codec, "-f", fmt],
            Path(out_path))
    return Path(out_path)


# ---------------------------------------------------------------- probe

_DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_VIDEO = re.compile(r"Stream #\S+.*?: Video: (\w+)[^,]*(?:, (\w+)(?:\([^)]*\))?)?.*?, (\d{2,5})x(\d{2,5})")
_AUDIO = re.compile(r"Stream #\S+.*?: Audio: (\w+)[^,]*, (\d+) Hz, ([\w.]+)")
_FPS = re.compile(r", ([\d.]+) fps")


def probe(path: str | Path) -> dict:
    """What ffmpeg sees in a media file.

    Keys: format, duration (seconds or None for a still image), codec (the
    picture's codec, else the sound's), width, height, pix_fmt, fps,
    video_codec, audio_codec, sample_rate, channels (None where absent).
    Raises RenderError if ffmpeg cannot read the file.
    """
    run = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                         capture_output=True, text=True, errors="replace")
    text = run.stderr
    container = re.search(r"Input #0, ([^ ]+), from", text)
    if not container:
        raise RenderError(f"ffmpeg cannot read {path}: {text.strip().splitlines()[-1:]}")
    info: dict = {"format": container[1].rstrip(","), "duration": None, "codec": None, "width": None,
                  "height": None, "pix_fmt": None, "fps": None, "video_codec": None, "audio_codec": None,
                  "sample_rate": None, "channels": None}
    if match := _DURATION.search(text):
        info["duration"] = int(match[1]) * 3600 + int(match[2]) * 60 + float(match[3])
    for line in text.splitlines():
        if info["video_codec"] is None and (match := _VIDEO.search(line)):
            info.update(video_codec=match[1], pix_fmt=match[2], width=int(match[3]), height=int(match[4]))
            if fps := _FPS.search(line):
                info["fps"] = float(fps[1])
        elif info["audio_codec"] is None and (match := _AUDIO.search(line)):
            info.update(audio_codec=match[1], sample_rate=int(match[2]),
                        channels={"mono": 1, "stereo": 2}.get(match[3], match[3]))
    info["codec"] = info["video_codec"] or info["audio_codec"]
    return info


def media_duration(data: bytes) -> float | None:
    """The duration of a video or sound given as bytes; None if unreadable."""
    with tempfile.NamedTemporaryFile(prefix="render-probe-") as handle:
        handle.write(data)
        handle.flush()
        try:
            return probe(handle.name)["duration"]
        except RenderError:
            return None


# ---------------------------------------------------------------- helpers

def _ffmpeg(args: list[str], out_path: Path) -> None:
    """Run ffmpeg into a temporary name and rename, so a reader never sees half a file."""
    partial = out_path.with_name(out_path.name + ".part")
    run = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin",
                          "-y", *args, str(partial)], capture_output=True, text=True, errors="replace")
    if run.returncode != 0:
        partial.unlink(missing_ok=True)
        raise RenderError(f"ffmpeg failed: {run.stderr.strip()[-500:]}")
    os.replace(partial, out_path)


def _open_image(data: bytes) -> Image.Image:
    """Decode an input image, once its header shows it is a PNG, JPEG or WebP within the pixel
    limit: a small file can decode to gigabytes, and that must never reach Pillow."""
    if media.image_size(data) is None:
        raise RenderError("the input image could not be read")
    if (too_large := media.over_pixel_limit(data)) is not None:
        raise RenderError(f"the input image {too_large}")
    try:
        picture = Image.open(io.BytesIO(data), formats=["PNG", "JPEG", "WEBP"])
        picture.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise RenderError("the input image could not be read") from exc
    return ImageOps.exif_transpose(picture).convert("RGB")


def _palette(label: str) -> tuple[int, str, str]:
    """A hue (0-359) and two hex colours that depend only on the label."""
    digest = hashlib.sha256(label.encode()).digest()
    return (int.from_bytes(digest[:2], "big") % 360, digest[2:5].hex(), digest[5:8].hex())


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]


def _label_overlay(label: str, width: int, height: int) -> bytes | None:
    """A translucent strip with the label as PNG, drawn with Pillow's bundled
    font so no system font is needed; None when there is nothing to draw or no
    font can be loaded."""
    text = " ".join(label.split())
    if not text or height < 48:
        return None
    size = max(10, height // 18)
    try:
        font = ImageFont.load_default(size=size)
    except (OSError, ImportError, AttributeError):
        return None
    text = text[: int((width - 2 * size) / (size * 0.4))]  # a generous first cut; the loop trims the rest
    while text and font.getlength(text) > width - 2 * size:
        text = text[:-2] + "…" if len(text) > 2 else ""
    strip = Image.new("RGBA", (width, size * 2), (0, 0, 0, 130))
    ImageDraw.Draw(strip).text((size, size // 2), text, font=font, fill=(255, 255, 255, 255))
    buffer = io.BytesIO()
    strip.save(buffer, format="PNG")
    return buffer.getvalue()
