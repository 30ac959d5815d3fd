// Helpers shared by every page: API calls with the CSRF token, DOM building
// with textContent only (crawled text is never parsed as HTML), number
// formats, the remembered live-update mode, and a visibility-aware poller.
'use strict';

const Trawl = (() => {
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || '';
  const LIVE_KEY = 'trawl.liveMode';

  function api(path, options = {}) {
    const headers = new Headers(options.headers || {});
    const method = (options.method || 'GET').toUpperCase();
    if (!headers.has('Accept')) headers.set('Accept', 'application/json');
    if (csrf && !['GET', 'HEAD'].includes(method)) headers.set('X-CSRF-Token', csrf);
    return fetch(path, { credentials: 'same-origin', cache: 'no-store', ...options, method, headers })
      .then((resp) => {
        // The login session ended (token changed, cookie expired): log in again, then come back.
        if (resp.status === 401 && csrf) {
          window.location.assign(`/login?next=${encodeURIComponent(window.location.pathname)}`);
        }
        return resp;
      });
  }

  async function readJson(resp) {
    try { return await resp.json(); } catch (e) { return {}; }
  }

  // el('a', {href: url, class: 'x'}, 'text', childNode): strings become text nodes.
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'dataset') Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // Only http(s) links from crawled data become clickable.
  function safeLink(url, text) {
    if (/^https?:\/\//i.test(url || '')) {
      return el('a', { href: url, rel: 'noopener noreferrer nofollow', target: '_blank' }, text || url);
    }
    return el('span', {}, text || url || '');
  }

  const fmt = {
    num: (n) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en')),
    bytes(n) {
      if (!n) return '0 B';
      const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
      let i = 0; let v = n;
      while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
      return `${v.toFixed(v >= 10 || i === 0 ? 0 : 1)} ${units[i]}`;
    },
    duration(s) {
      if (s === null || s === undefined) return '–';
      s = Math.round(s);
      if (s < 60) return `${s} s`;
      if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
      return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    },
    ago(iso) {
      if (!iso) return '–';
      const s = (Date.now() - Date.parse(iso)) / 1000;
      if (!isFinite(s)) return '–';
      if (s < 5) return 'just now';
      if (s < 90) return `${Math.round(s)} s ago`;
      if (s < 5400) return `${Math.round(s / 60)} min ago`;
      if (s < 129600) return `${Math.round(s / 3600)} h ago`;
      return new Date(iso).toLocaleDateString('en');
    },
    rate: (r) => (r ? `${Number(r).toFixed(r < 10 ? 1 : 0)}` : '0'),
  };

  const FINISHED = ['completed', 'failed', 'cancelled'];

  function ended(pages) { return pages.done + pages.failed + pages.skipped; }

  // Fraction of discovered pages that ended, or null while nothing is known.
  function fraction(doc) {
    if (FINISHED.includes(doc.status)) return 1;
    if (!doc.pages.discovered) return null;
    return Math.min(1, ended(doc.pages) / doc.pages.discovered);
  }

  function setBar(bar, frac, status) {
    const fill = bar.querySelector('.fill');
    bar.dataset.status = status || '';
    if (frac === null) {
      bar.classList.add('indeterminate');
      fill.style.width = '';
      bar.removeAttribute('aria-valuenow');
    } else {
      bar.classList.remove('indeterminate');
      fill.style.width = `${(frac * 100).toFixed(1)}%`;
      bar.setAttribute('aria-valuenow', String(Math.round(frac * 100)));
    }
  }

  function statusBadge(status) {
    return el('span', { class: 'status', dataset: { status } }, status);
  }

  const liveMode = {
    get() {
      try { return localStorage.getItem(LIVE_KEY) === 'sse' ? 'sse' : 'poll'; } catch (e) { return 'poll'; }
    },
    set(mode) {
      try { localStorage.setItem(LIVE_KEY, mode === 'sse' ? 'sse' : 'poll'); } catch (e) { /* private mode */ }
    },
    // Keep every [data-live-toggle] checkbox in step with the stored choice.
    bind(onChange) {
      document.querySelectorAll('[data-live-toggle]').forEach((box) => {
        box.checked = liveMode.get() === 'sse';
        box.addEventListener('change', () => {
          liveMode.set(box.checked ? 'sse' : 'poll');
          if (onChange) onChange(liveMode.get());
        });
      });
    },
  };

  // Runs `task` (async, returns the next delay in ms) again and again, never
  // while the tab is hidden; errors back off exponentially with jitter to 60 s.
  class Repeater {
    constructor(task, { onError } = {}) {
      this.task = task;
      this.onError = onError;
      this.timer = null;
      this.errors = 0;
      this.stopped = true;
      this.running = false;
      this.onVisible = () => { if (!document.hidden && !this.stopped) this.now(); };
      document.addEventListener('visibilitychange', this.onVisible);
    }

    start() { this.stopped = false; this.now(); }

    stop() { this.stopped = true; clearTimeout(this.timer); this.timer = null; }

    now() { clearTimeout(this.timer); this.timer = setTimeout(() => this.run(), 0); }

    later(ms) { clearTimeout(this.timer); if (!this.stopped) this.timer = setTimeout(() => this.run(), ms); }

    async run() {
      if (this.stopped || this.running) return;
      if (document.hidden) return; // visibilitychange restarts us
      this.running = true;
      let next;
      try {
        next = await this.task();
        this.errors = 0;
      } catch (err) {
        this.errors += 1;
        next = Repeater.backoff(this.errors);
        if (this.onError) this.onError(err, next);
      } finally {
        this.running = false;
      }
      if (next === null || next === undefined) this.stop();
      else this.later(next);
    }

    static backoff(errors) {
      const cap = Math.min(60000, 1000 * 2 ** Math.min(errors, 10));
      return cap / 2 + Math.random() * (cap / 2);
    }
  }

  return { api, readJson, el, safeLink, fmt, FINISHED, ended, fraction, setBar, statusBadge, liveMode, Repeater, csrf };
})();
