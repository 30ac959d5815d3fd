// Live progress of one job: polling with ETags, or Server-Sent Events.
//
// Polling sends its own If-None-Match with cache: 'no-store' (with the
// default cache mode the browser would answer from its cache and the page
// would never see the 304). It polls every 2 s, every 1 s while the numbers
// move, 5-10 s once they have stood still, backs off with jitter on errors
// (cap 60 s) and sleeps while the tab is hidden. SSE mode listens on
// /api/jobs/<id>/events (the browser resumes with Last-Event-ID by itself)
// and falls back to polling when the stream keeps failing. Polling mode
// never opens the stream.
'use strict';

class ProgressFeed {
  constructor(jobId, initial, { onProgress, onTick, onState }) {
    this.jobId = jobId;
    this.base = `/api/jobs/${encodeURIComponent(jobId)}`;
    this.version = initial ? initial.version : null;
    this.status = initial ? initial.status : null;
    this.onProgress = onProgress;
    this.onTick = onTick || (() => {});
    this.onState = onState || (() => {});
    this.unchanged = 0;
    this.source = null;
    this.sseErrors = 0;
    this.mode = 'poll';
    this.poller = new Trawl.Repeater(() => this.poll(), {
      onError: (err, next) => this.onState('reconnecting', { delay: next, error: String(err.message || err) }),
    });
    document.addEventListener('visibilitychange', () => {
      if (this.mode === 'poll' && !this.poller.stopped && document.hidden) this.onState('hidden');
    });
  }

  get finished() { return Trawl.FINISHED.includes(this.status); }

  start(mode) {
    this.stop();
    this.mode = mode === 'sse' && 'EventSource' in window ? 'sse' : 'poll';
    if (this.mode === 'sse') this.openStream();
    else this.poller.start();
  }

  stop() {
    this.poller.stop();
    if (this.source) { this.source.close(); this.source = null; }
  }

  // Something changed on our side (an action): look again at once.
  kick() {
    if (this.mode === 'sse') { if (!this.source) this.openStream(); } else this.poller.start();
  }

  accept(doc) {
    const moved = doc.version !== this.version;
    this.version = doc.version;
    this.status = doc.status;
    this.onProgress(doc, moved);
    return moved;
  }

  // -- polling ---------------------------------------------------------------

  nextDelay(moved) {
    if (this.finished) return null; // nothing more will happen by itself
    if (moved) { this.unchanged = 0; return 1000; }
    this.unchanged += 1;
    if (this.unchanged < 5) return 2000;
    if (this.unchanged < 30) return 5000;
    return 10000;
  }

  async poll() {
    const headers = {};
    if (this.version !== null) headers['If-None-Match'] = `"${this.version}"`;
    const resp = await Trawl.api(`${this.base}/progress`, { headers });
    let moved = false;
    if (resp.status === 200) {
      moved = this.accept(await resp.json());
    } else if (resp.status === 404) {
      this.onState('gone');
      return null;
    } else if (resp.status !== 304) {
      throw new Error(`HTTP ${resp.status}`);
    }
    this.onTick(moved);
    const delay = this.nextDelay(moved);
    this.onState(delay === null ? 'ended' : 'polling', { delay });
    return delay;
  }

  // -- Server-Sent Events --------------------------------------------------------

  openStream() {
    const source = new EventSource(`${this.base}/events`);
    this.source = source;
    this.onState('connecting', { mode: 'sse' });
    source.onopen = () => { this.onState('sse'); };
    source.addEventListener('progress', (event) => {
      this.sseErrors = 0;
      let doc;
      try { doc = JSON.parse(event.data); } catch (e) { return; }
      this.accept(doc);
      this.onTick(true);
      this.onState('sse');
    });
    source.addEventListener('done', () => {
      source.close();
      if (this.source === source) this.source = null;
      this.onState('ended');
    });
    source.onerror = () => {
      if (this.source !== source) return;
      this.sseErrors += 1;
      // The browser retries by itself (resuming with Last-Event-ID); when the
      // stream is refused or keeps dropping, poll instead.
      if (source.readyState === EventSource.CLOSED || this.sseErrors >= 3) {
        source.close();
        this.source = null;
        this.sseErrors = 0;
        this.mode = 'poll';
        this.onState('fallback');
        this.poller.start();
      } else {
        this.onState('reconnecting', { delay: 3000 });
      }
    };
  }
}
