"""The video pipeline: an upload lands in ContentUploadBucket, storage notifies the transcode queue, and
this checks what arrived (the emulator ignores upload size limits, and a browser can send anything):
declared type and size, then the probe (a video stream, a duration within the limit). A refused upload is
removed and the reason kept on the record for the uploader. An accepted one is transcoded through the
``Transcoder`` port to HLS renditions (720p and 360p, never above the source) with a cover, which go to
ContentMediaBucket under ``hls/<video id>/v<n>/``; the record becomes ready for review."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bianjie.content.service import Audit
from bianjie.content.store import Contended, ContentStore
from bianjie.kit.actor import Actor
from bianjie.kit.objects import ObjectStore
from bianjie.kit.timefmt import utc_iso

_UPLOAD = re.compile(r"uploads/(v-[0-9a-f]{16})/source")
MAX_DURATION_S = 3600.0


@dataclass(frozen=True)
class Probe:
    duration_s: float
    width: int
    height: int
    has_audio: bool


@dataclass(frozen=True)
class Rung:
    name: str
    height: int
    video_kbps: int
    audio_kbps: int = 96


LADDER = (Rung("720p", 720, 2400), Rung("360p", 360, 700))


@dataclass
class Transcoded:
    files: list[Path] = field(default_factory=list)
    renditions: list[dict[str, Any]] = field(default_factory=list)
    cover: str | None = None
    seconds: float = 0.0


class NotAVideo(Exception):
    """The file is not a video the transcoder can read (the reason is shown to the uploader)."""


class Transcoder(Protocol):
    def probe(self, source: Path) -> Probe: ...
    def transcode(self, source: Path, out: Path, probe: Probe, ladder: tuple[Rung, ...]) -> Transcoded: ...


def master_playlist(renditions: list[dict[str, Any]]) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:3"]
    for r in renditions:
        lines.append(f"#EXT-X-STREAM-INF:BANDWIDTH={r['bandwidth']},RESOLUTION={r['width']}x{r['height']}")
        lines.append(r["playlist"])
    return "\n".join(lines) + "\n"


class MediaService:
    def __init__(
        self,
        store: ContentStore,
        objects: ObjectStore,
        upload_bucket: str,
        media_bucket: str,
        transcoder: Transcoder,
        audit: Audit,
        clock: Callable[[], float],
        max_bytes: int,
    ) -> None:
        self.store = store
        self.objects = objects
        self.upload_bucket = upload_bucket
        self.media_bucket = media_bucket
        self.transcoder = transcoder
        self.audit = audit
        self.clock = clock
        self.max_bytes = max_bytes
        self.actor = Actor.system("content-transcoder")

    def uploaded(self, bucket: str, key: str) -> str:
        """Handles one storage notification; answers what became of it (for logs and tests)."""
        match = _UPLOAD.fullmatch(key)
        if bucket != self.upload_bucket or not match:
            return "ignored"
        video_id = match.group(1)
        found = self.store.head(video_id)
        info = self.objects.head(bucket, key)
        if found is None:
            if info is not None:
                self.objects.delete(bucket, key)
            return "unknown"
        doc, rev = found
        media = doc.get("media") or {}
        if info is None or media.get("state") in ("ready", "refused"):
            return "stale"  # a redelivered notification, or the object was already removed
        declared_type, declared_size = media.get("content_type"), media.get("size_bytes")
        if info.size > self.max_bytes:
            return self._refuse(doc, rev, key, f"文件过大（{info.size} 字节，上限 {self.max_bytes} 字节）")
        if info.size != declared_size:
            return self._refuse(
                doc, rev, key, f"文件大小与登记不符（登记 {declared_size} 字节，收到 {info.size} 字节）"
            )
        if (info.content_type or "").split(";")[0].strip() != declared_type:
            return self._refuse(doc, rev, key, f"文件类型与登记不符（登记 {declared_type}，收到 {info.content_type}）")
        doc["media"] = {**media, "state": "processing"}
        rev = self._save(doc, rev)
        with tempfile.TemporaryDirectory(prefix="content-") as tmp:
            source = Path(tmp) / "source"
            source.write_bytes(self.objects.get(bucket, key))
            try:
                probe = self.transcoder.probe(source)
            except NotAVideo as exc:
                return self._refuse(doc, rev, key, f"无法识别为视频：{exc}")
            if probe.duration_s > MAX_DURATION_S:
                return self._refuse(
                    doc, rev, key, f"视频过长（{probe.duration_s:.0f} 秒，上限 {MAX_DURATION_S:.0f} 秒）"
                )
            out = Path(tmp) / "out"
            out.mkdir()
            try:
                result = self.transcoder.transcode(source, out, probe, LADDER)
            except NotAVideo as exc:
                return self._refuse(doc, rev, key, f"转码失败：{exc}")
            prefix = f"hls/{video_id}/v{doc['version']}/"
            for path in result.files:
                self.objects.put(
                    self.media_bucket,
                    prefix + path.name,
                    path.read_bytes(),
                    content_type=_type_of(path.name),
                    cache_control="public, max-age=31536000, immutable",
                )
            (out / "master.m3u8").write_text(master_playlist(result.renditions))
            self.objects.put(
                self.media_bucket,
                prefix + "master.m3u8",
                (out / "master.m3u8").read_bytes(),
                content_type="application/vnd.apple.mpegurl",
            )
        doc["media"] = {
            **doc["media"],
            "state": "ready",
            "reason": None,
            "duration_s": round(probe.duration_s, 2),
            "width": probe.width,
            "height": probe.height,
            "prefix": prefix,
            "renditions": result.renditions,
            "cover": result.cover,
            "transcode_s": round(result.seconds, 3),
        }
        self._save(doc, rev)
        self.audit.record(
            actor=self.actor, action="content.transcode", resource="content:" + video_id, details={"prefix": prefix}
        )
        return "ready"

    def _refuse(self, doc: dict[str, Any], rev: int, key: str, reason: str) -> str:
        self.objects.delete(self.upload_bucket, key)
        doc["media"] = {**(doc.get("media") or {}), "state": "refused", "reason": reason}
        self._save(doc, rev)
        self.audit.record(
            actor=self.actor,
            action="content.upload_refused",
            resource="content:" + doc["id"],
            outcome="denied",
            details={"reason": reason},
        )
        return "refused"

    def _save(self, doc: dict[str, Any], rev: int) -> int:
        doc["updated_at"] = utc_iso(self.clock(), "milliseconds")
        try:
            return self.store.save(doc, rev)
        except Contended:
            head = self.store.head(doc["id"])
            if head is None:
                raise
            fresh, fresh_rev = head
            fresh["media"] = doc["media"]
            fresh["updated_at"] = doc["updated_at"]
            return self.store.save(fresh, fresh_rev)


def _type_of(name: str) -> str:
    if name.endswith(".m3u8"):
        return "application/vnd.apple.mpegurl"
    if name.endswith(".ts"):
        return "video/mp2t"
    if name.endswith(".jpg"):
        return "image/jpeg"
    if name.endswith(".vtt"):
        return "text/vtt"
    return "application/octet-stream"
