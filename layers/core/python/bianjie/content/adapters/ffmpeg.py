"""The ``Transcoder`` on ffmpeg (Debian's package on premises; a container image with it on AWS):
ffprobe for what arrived, one ffmpeg run per rung (H.264 veryfast, AAC, 6 s VOD segments), a cover
frame. Nothing is scaled up: a 480p source gets 360p only."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

from bianjie.content.media import NotAVideo, Probe, Rung, Transcoded


class FfmpegTranscoder:
    def __init__(self, ffmpeg: str | None = None, ffprobe: str | None = None, timeout_s: float = 840.0) -> None:
        self.ffmpeg = ffmpeg or shutil.which("ffmpeg") or "ffmpeg"
        self.ffprobe = ffprobe or shutil.which("ffprobe") or "ffprobe"
        self.timeout_s = timeout_s

    def probe(self, source: Path) -> Probe:
        run = subprocess.run(
            [
                self.ffprobe,
                "-v",
                "error",
                "-show_entries",
                "format=duration:stream=codec_type,width,height",
                "-of",
                "json",
                str(source),
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
        if run.returncode != 0:
            raise NotAVideo("文件不是可读的视频")
        info = json.loads(run.stdout or b"{}")
        streams = info.get("streams") or []
        video = next((s for s in streams if s.get("codec_type") == "video" and s.get("width")), None)
        try:
            duration = float((info.get("format") or {}).get("duration") or 0)
        except ValueError:
            duration = 0.0
        if video is None or duration <= 0:
            raise NotAVideo("文件中没有视频画面")
        return Probe(
            duration_s=duration,
            width=int(video["width"]),
            height=int(video["height"]),
            has_audio=any(s.get("codec_type") == "audio" for s in streams),
        )

    def transcode(self, source: Path, out: Path, probe: Probe, ladder: tuple[Rung, ...]) -> Transcoded:
        started = time.perf_counter()
        result = Transcoded()
        rungs = [r for r in ladder if r.height <= probe.height] or [ladder[-1]]
        for rung in rungs:
            height = min(rung.height, probe.height)
            width = max(2, round(probe.width * height / probe.height / 2) * 2)
            args = [self.ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(source), "-map", "0:v:0"]
            if probe.has_audio:
                args += ["-map", "0:a:0", "-c:a", "aac", "-b:a", f"{rung.audio_kbps}k", "-ac", "2"]
            args += [
                "-vf", f"scale={width}:{height}",
                "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main",
                "-b:v", f"{rung.video_kbps}k", "-maxrate", f"{int(rung.video_kbps * 1.07)}k",
                "-bufsize", f"{rung.video_kbps * 2}k", "-g", "48", "-sc_threshold", "0",
                "-f", "hls", "-hls_time", "6", "-hls_playlist_type", "vod",
                "-hls_segment_filename", str(out / f"{rung.name}_%03d.ts"),
                str(out / f"{rung.name}.m3u8"),
            ]  # fmt: skip
            self._run(args)
            bandwidth = (rung.video_kbps + (rung.audio_kbps if probe.has_audio else 0)) * 1000
            result.renditions.append(
                {"name": rung.name, "height": height, "width": width, "bandwidth": bandwidth,
                 "playlist": f"{rung.name}.m3u8"}
            )  # fmt: skip
        at = min(3.0, probe.duration_s / 2)
        self._run([self.ffmpeg, "-nostdin", "-v", "error", "-y", "-ss", f"{at:.2f}", "-i", str(source),
                   "-frames:v", "1", "-vf", "scale=640:-2", str(out / "cover.jpg")])  # fmt: skip
        result.cover = "cover.jpg"
        result.files = sorted(p for p in out.iterdir() if p.is_file())
        result.seconds = time.perf_counter() - started
        return result

    def _run(self, args: list[str]) -> None:
        try:
            run = subprocess.run(args, capture_output=True, timeout=self.timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise NotAVideo("转码超时") from exc
        if run.returncode != 0:
            raise NotAVideo("转码器无法处理该文件: " + run.stderr.decode("utf-8", "replace")[-200:])
