"""What a simulated task costs, in credits: the simulator's own small price
table (docs/runway-api.md §6, Runway's published rates as of April 2026), with a
plausible default for every model it has no price for. It is independent of
the dashboard's catalog on purpose: the two can disagree, as the live API and
the dashboard can, and estimatedCost is what the API answers.
"""
from __future__ import annotations

from lib.simulator.render import parse_ratio

DEFAULT_SECONDS = 5  # what a video or sound lasts when its request gives no duration

# Credits per second of output video.
PER_SECOND = {
    "gen4.5": 12, "gen4_turbo": 5, "gen4": 5, "gen4_aleph": 15, "aleph2": 15, "act_two": 5,
    "veo3": 40, "seedance2": 36, "upscale_v1": 2, "magnific_video_upscaler_creative": 2,
    "enhance_frame_rate": 2,
}
# veo3.1 models cost more with sound; the API's default is with.
WITH_AUDIO = {"veo3.1": (20, 40), "veo3.1_fast": (10, 15)}
PER_IMAGE = {"gen4_image_turbo": 2, "gemini_2.5_flash": 5}
GEN4_IMAGE = (5, 8)  # at 720p ratios, at 1080p ratios

# Audio endpoints: (credits, per this many units of input) where the unit is a second or a character.
PER_AUDIO = {
    "/v1/text_to_speech": (1, 50),       # 1 per 50 characters of text
    "/v1/voice_isolation": (1, 6),       # 1 per 6 s
    "/v1/voice_dubbing": (1, 2),         # 1 per 2 s
    "/v1/speech_to_speech": (1, 3),      # 1 per 3 s
}
SOUND_EFFECT = 2
DEFAULTS = {"video": 10, "image": 5, "audio": 2}  # per second, per image, per sound


def requested_seconds(body: dict) -> float | None:
    """The duration a request asks for, if it gives a number (not "auto", not absent)."""
    duration = body.get("duration")
    if isinstance(duration, (int, float)) and not isinstance(duration, bool) and duration > 0:
        return float(duration)
    return None


def seconds_of(body: dict) -> float:
    return requested_seconds(body) or DEFAULT_SECONDS


def estimate(endpoint: str, model_id: str, kind: str, body: dict) -> float:
    """The most this task may cost: estimatedCost in the create answer, and its cost once it succeeds."""
    if kind == "image":
        if model_id == "gen4_image":
            size = parse_ratio(body.get("ratio")) or (1920, 1080)
            return float(GEN4_IMAGE[min(size) > 720])
        return float(PER_IMAGE.get(model_id, DEFAULTS["image"]))
    if kind == "audio":
        if endpoint in PER_AUDIO:
            credits, per = PER_AUDIO[endpoint]
            units = len(str(body.get("promptText") or "")) if per == 50 else seconds_of(body)
            return float(max(1, -(-units // per)) * credits)
        return float(SOUND_EFFECT if endpoint == "/v1/sound_effect" else DEFAULTS["audio"] * seconds_of(body))
    if model_id in WITH_AUDIO:
        rate = WITH_AUDIO[model_id][body.get("audio") is not False]
    else:
        rate = PER_SECOND.get(model_id, DEFAULTS["video"])
    return float(rate * seconds_of(body))
