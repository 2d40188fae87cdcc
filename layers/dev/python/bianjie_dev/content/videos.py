"""Test videos made with ffmpeg's own test sources (testsrc2 and a sine tone), for tests, the demo and
the benchmark: no file is shipped, each is generated where it is needed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def ffmpeg() -> str:
    found = shutil.which("ffmpeg")
    if not found:
        raise RuntimeError("ffmpeg is not installed (scripts/test.sh and `make setup` install Debian's package)")
    return found


def make_test_video(
    path: Path, *, seconds: float = 4.0, width: int = 1280, height: int = 720, audio: bool = True
) -> Path:
    args = [
        ffmpeg(),
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={width}x{height}:rate=25:duration={seconds}",
    ]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac", "-shortest"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(path)]
    subprocess.run(args, check=True, capture_output=True, timeout=120)
    return path


def ffprobe_streams(path: Path) -> list[dict[str, object]]:
    import json

    run = subprocess.run(
        [shutil.which("ffprobe") or "ffprobe", "-v", "error",
         "-show_entries", "stream=codec_type,codec_name,width,height", "-of", "json", str(path)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    streams: list[dict[str, object]] = json.loads(run.stdout)["streams"]
    return streams
