// The video page's player: the <video data-src="/content/media/<id>/master.m3u8"> element plays HLS
// through hls.js wherever Media Source Extensions exist (Android, desktop, iOS 17.1+), else natively
// (older iOS). hls.js first: Chromium answers canPlayType(HLS) with "maybe" and then cannot play it.
// Segments come straight from storage through the presigned URLs the playlists carry.
import Hls from 'hls.js';

function status(text: string): void {
  const el = document.getElementById('player-status');
  if (el) el.textContent = text;
}

export function attach(video: HTMLVideoElement): string {
  const src = video.dataset.src;
  if (!src) return 'none';
  if (Hls.isSupported()) {
    const hls = new Hls({ maxBufferLength: 30 });
    hls.on(Hls.Events.MANIFEST_PARSED, (_e, data) => {
      video.dataset.levels = String(data.levels.length);
      status('');
    });
    hls.on(Hls.Events.ERROR, (_e, data) => {
      if (data.fatal) status('视频加载失败，请稍后重试');
    });
    hls.loadSource(src);
    hls.attachMedia(video);
    video.dataset.engine = 'hls.js';
    return 'hls.js';
  }
  if (video.canPlayType('application/vnd.apple.mpegurl')) {
    // no Media Source Extensions (older iOS): the browser's own HLS
    video.src = src;
    video.dataset.engine = 'native';
    return 'native';
  }
  status('您的浏览器不支持播放此视频');
  video.dataset.engine = 'unsupported';
  return 'unsupported';
}

const player = document.getElementById('player');
if (player instanceof HTMLVideoElement) attach(player);
