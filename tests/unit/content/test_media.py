"""The video pipeline on generated test videos (ffmpeg's testsrc2): HLS 720p and 360p and a cover,
checked with ffprobe; uploads of the wrong size, type or content refused, removed, the reason kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from bianjie.content.adapters.ffmpeg import FfmpegTranscoder
from bianjie.content.media import MediaService
from bianjie.content.model import ContentReviewRequest, VideoDraft
from bianjie.content.service import upload_key
from bianjie_dev.content.videos import ffprobe_streams, make_test_video

from tests.unit.content.conftest import CHIEF, REVIEWER_A, REVIEWER_B, Rig, staff

UPLOADER = staff("up1", "editor-video", org="ruijin")


def media(rig: Rig, max_bytes: int = 50_000_000) -> MediaService:
    return MediaService(
        rig.store, rig.objects, "uploads", "media", FfmpegTranscoder(), rig.service.audit, rig.clock, max_bytes
    )


def register(rig: Rig, size: int, content_type: str = "video/mp4") -> str:
    draft = VideoDraft(
        hospital="ruijin",
        title="脑卒中的早期识别",
        diseases=[{"code": "I63", "name": "脑卒中", "aliases": ["中风"]}],
        departments=["神经内科"],
        content_type=content_type,  # type: ignore[arg-type]
        size_bytes=size,
    )
    created = rig.service.create_video(UPLOADER, draft)
    assert created.upload_url.startswith("https://uploads.example/uploads/")
    return created.item.id


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_test_video(tmp_path_factory.mktemp("clip") / "clip.mp4", seconds=4)


def test_transcoded_to_hls_with_cover_then_reviewed(rig: Rig, clip: Path, tmp_path: Path) -> None:
    data = clip.read_bytes()
    video_id = register(rig, len(data))
    rig.objects.put("uploads", upload_key(video_id), data, content_type="video/mp4")
    assert media(rig).uploaded("uploads", upload_key(video_id)) == "ready"
    doc = rig.store.head(video_id)[0]  # type: ignore[index]
    assert doc["media"]["state"] == "ready" and 3.5 < doc["media"]["duration_s"] < 4.5
    assert [r["height"] for r in doc["media"]["renditions"]] == [720, 360]
    prefix = doc["media"]["prefix"]
    names = {o.key.removeprefix(prefix) for o in rig.objects.list("media", prefix)}
    assert {"master.m3u8", "720p.m3u8", "360p.m3u8", "cover.jpg", "720p_000.ts", "360p_000.ts"} <= names
    master = rig.objects.get("media", prefix + "master.m3u8").decode()
    assert "RESOLUTION=1280x720" in master and "360p.m3u8" in master
    segment = tmp_path / "seg.ts"
    segment.write_bytes(rig.objects.get("media", prefix + "360p_000.ts"))
    streams = ffprobe_streams(segment)
    assert {"codec_type": "video", "codec_name": "h264", "width": 640, "height": 360} in streams
    assert any(s["codec_type"] == "audio" for s in streams)
    # ready: the same three reviews
    rig.service.submit(UPLOADER, video_id)
    rig.service.review(REVIEWER_A, video_id, ContentReviewRequest(decision="approve", expected_status="review1"))
    rig.service.review(REVIEWER_B, video_id, ContentReviewRequest(decision="approve", expected_status="review2"))
    assert (
        rig.service.review(CHIEF, video_id, ContentReviewRequest(decision="approve", expected_status="final")).status
        == "published"
    )
    # a redelivered notification changes nothing
    assert media(rig).uploaded("uploads", upload_key(video_id)) == "stale"


def test_not_ready_cannot_be_submitted(rig: Rig) -> None:
    video_id = register(rig, 1000)
    with pytest.raises(Exception) as early:
        rig.service.submit(UPLOADER, video_id)
    assert getattr(early.value, "code", "") == "MEDIA_NOT_READY"


@pytest.mark.parametrize(
    ("declared", "body", "content_type", "max_bytes", "reason"),
    [
        (10, b"x" * 20, "video/mp4", 1000, "文件大小与登记不符"),
        (20, b"x" * 20, "video/mp4", 10, "文件过大"),
        (20, b"x" * 20, "image/png", 1000, "文件类型与登记不符"),
        (20, b"not a video at all!!", "video/mp4", 1000, "无法识别为视频"),
    ],
)
def test_bad_uploads_are_refused_and_removed(
    rig: Rig, declared: int, body: bytes, content_type: str, max_bytes: int, reason: str
) -> None:
    video_id = register(rig, declared)
    rig.objects.put("uploads", upload_key(video_id), body, content_type=content_type)
    assert media(rig, max_bytes).uploaded("uploads", upload_key(video_id)) == "refused"
    assert rig.objects.head("uploads", upload_key(video_id)) is None
    view = rig.service.get(UPLOADER, video_id)
    assert view.media is not None and view.media.state == "refused" and reason in (view.media.reason or "")


def test_uploads_for_another_hospital_are_refused(rig: Rig) -> None:
    other = staff("up2", "editor-video", org="renji")
    with pytest.raises(Exception) as refused:
        rig.service.create_video(
            other, VideoDraft(hospital="ruijin", title="x", content_type="video/mp4", size_bytes=10)
        )
    assert getattr(refused.value, "code", "") == "HOSPITAL_MISMATCH"
