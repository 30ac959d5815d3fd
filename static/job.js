// The job page: live status and counters, actions, throughput chart,
// workers, the emails table and the failed pages. Every value that comes
// from the server is put into the page with textContent (Trawl.el).
'use strict';

(() => {
  const { api, readJson, el, safeLink, fmt, FINISHED, ended, fraction, setBar } = Trawl;
  const root = document.getElementById('job');
  const jobId = root.dataset.jobId;
  const base = `/api/jobs/${encodeURIComponent(jobId)}`;
  let current = JSON.parse(root.dataset.initial);
  const $ = (id) => document.getElementById(id);
  const chart = new ThroughputChart($('chart'));

  // -- status, counters, progress ------------------------------------------------

  function renderProgress(doc) {
    const status = $('status');
    status.textContent = doc.status;
    status.dataset.status = doc.status;
    // A runnable job nobody works on (a supervisor restarting, none allowed here): say so.
    $('waiting').hidden = doc.waiting_for !== 'workers';
    const p = doc.pages;
    const values = {
      discovered: fmt.num(p.discovered), done: fmt.num(p.done), failed: fmt.num(p.failed),
      skipped: fmt.num(p.skipped), in_flight: fmt.num(p.in_flight), emails: fmt.num(doc.emails),
      bytes: fmt.bytes(doc.bytes), rate: fmt.rate(doc.rate),
      eta: FINISHED.includes(doc.status) ? 'done' : fmt.duration(doc.eta_s), workers: fmt.num(doc.workers),
    };
    for (const [key, text] of Object.entries(values)) {
      const dd = document.querySelector(`[data-counter="${key}"] dd`);
      if (dd.textContent !== text) dd.textContent = text;
    }
    const frac = fraction(doc);
    setBar($('bar'), frac, doc.status);
    const text = progressSentence(doc, frac);
    if ($('progress-text').textContent !== text) $('progress-text').textContent = text; // aria-live: real changes only
    $('job-error').textContent = doc.error ? `Error: ${doc.error}` : '';
    chart.summary = doc.rate ? `Average ${fmt.rate(doc.rate)} pages/s${FINISHED.includes(doc.status) ? '' : ' so far'}.` : '';
    updateButtons(doc);
  }

  function progressSentence(doc, frac) {
    const p = doc.pages;
    const pct = frac === null ? '' : ` (${Math.round(frac * 100)} %)`;
    const pages = `${fmt.num(ended(p))} of ${fmt.num(p.discovered)} pages ended${pct}`;
    const emails = `${fmt.num(doc.emails)} ${doc.emails === 1 ? 'email' : 'emails'}`;
    switch (doc.status) {
      case 'queued': return `Queued: waiting for a worker. ${pages}, ${emails}.`;
      case 'paused': return `Paused. ${pages}, ${emails}.`;
      case 'running': return doc.waiting_for === 'workers'
        ? `Running, waiting for workers: ${pages}, ${emails}.`
        : `Running: ${pages}, ${emails}, ${fmt.rate(doc.rate)} pages/s.`;
      default: return `Job ${doc.status}: ${pages}, ${fmt.num(p.failed)} failed, ${emails}.`;
    }
  }

  const ALLOWED = {
    pause: (d) => ['queued', 'running'].includes(d.status),
    resume: (d) => d.status === 'paused',
    cancel: (d) => ['queued', 'running', 'paused'].includes(d.status),
    retry: (d) => d.pages.failed > 0,
    delete: (d) => FINISHED.includes(d.status),
  };

  function updateButtons(doc) {
    document.querySelectorAll('#actions [data-action]').forEach((button) => {
      button.disabled = !ALLOWED[button.dataset.action](doc);
    });
  }

  // -- live updates ------------------------------------------------------------------

  const live = $('live');
  function showLive(state, info = {}) {
    const texts = {
      connecting: 'connecting…',
      polling: `live: polling every ${Math.round((info.delay || 2000) / 1000)} s`,
      sse: 'live: server-sent events',
      hidden: 'paused while this tab is hidden',
      reconnecting: `reconnecting… next try in ${Math.max(1, Math.round((info.delay || 1000) / 1000))} s`,
      fallback: 'event stream failed: polling instead',
      ended: 'job ended: no more updates',
      gone: 'this job was deleted',
    };
    live.dataset.state = state;
    live.textContent = texts[state] || state;
  }

  let lastStatus = current.status;
  let lastWorkers = current.workers;
  const feed = new ProgressFeed(jobId, current, {
    onProgress(doc, moved) {
      current = doc;
      renderProgress(doc);
      chart.add(ended(doc.pages));
      if (moved) refreshResults(doc);
      if (doc.status !== lastStatus || doc.workers !== lastWorkers) {
        lastStatus = doc.status;
        lastWorkers = doc.workers;
        workers.start();
      }
    },
    onTick() { chart.add(ended(current.pages)); },
    onState: showLive,
  });

  // -- actions -------------------------------------------------------------------------

  async function act(action) {
    const msg = $('action-msg');
    if (action === 'delete' && !window.confirm('Delete this job and everything it found?')) return;
    msg.textContent = `${action}…`;
    try {
      const resp = action === 'delete'
        ? await api(base, { method: 'DELETE' })
        : await api(`${base}/${action}`, { method: 'POST' });
      const data = await readJson(resp);
      if (!resp.ok) { msg.textContent = `Could not ${action}: ${data.error || `HTTP ${resp.status}`}`; return; }
      if (action === 'delete') { msg.textContent = 'Deleted.'; window.location.assign('/'); return; }
      msg.textContent = `Done: the job is now ${data.status}.`;
      feed.version = null; // the answer is the new state: fetch it in full
      feed.status = data.status;
      feed.start(Trawl.liveMode.get());
    } catch (err) {
      msg.textContent = `Could not ${action}: the server did not answer.`;
    }
  }

  document.querySelectorAll('#actions [data-action]').forEach((button) => {
    button.addEventListener('click', () => act(button.dataset.action));
  });

  // -- emails and failed pages --------------------------------------------------------

  // Reload a table when its count changes, at most every 3 s while the job
  // runs, and at once when it ends.
  function throttled(fn, ms) {
    let last = 0; let timer = null;
    return (urgent) => {
      const wait = urgent ? 0 : Math.max(0, last + ms - Date.now());
      clearTimeout(timer);
      timer = setTimeout(() => { last = Date.now(); fn(); }, wait);
    };
  }

  const emails = { offset: 0, limit: 50, q: '', site: '', sort: 'email', dir: 1, rows: [], total: 0, seen: -1 };
  const failed = { offset: 0, limit: 20, total: 0, seen: -1 };

  const loadEmailsSoon = throttled(loadEmails, 3000);
  const loadFailedSoon = throttled(loadFailed, 3000);

  function refreshResults(doc) {
    const over = FINISHED.includes(doc.status);
    if (doc.emails !== emails.seen) loadEmailsSoon(over);
    if (doc.pages.failed !== failed.seen) loadFailedSoon(over);
    if (ended(doc.pages) !== sites.seen) loadSitesSoon(over);
  }

  async function loadEmails() {
    const params = new URLSearchParams({ limit: emails.limit, offset: emails.offset });
    if (emails.q) params.set('q', emails.q);
    if (emails.site) params.set('site', emails.site);
    try {
      const resp = await api(`${base}/emails?${params}`);
      if (!resp.ok) return;
      const data = await resp.json();
      emails.rows = data.emails;
      emails.total = data.total;
      emails.seen = emails.q || emails.site ? emails.seen : data.total;
      renderEmails();
    } catch (err) { /* the next progress change retries */ }
  }

  function renderEmails() {
    const rows = [...emails.rows].sort((a, b) => {
      const x = a[emails.sort]; const y = b[emails.sort];
      const cmp = typeof x === 'number' ? x - y : String(x).localeCompare(String(y));
      return cmp * emails.dir;
    });
    const body = document.querySelector('#emails tbody');
    body.replaceChildren(...rows.map((r) => el('tr', {},
      el('td', { class: 'email' }, r.email),
      el('td', {}, r.domain),
      el('td', {}, r.site),
      el('td', { class: 'num' }, fmt.num(r.pages)),
      el('td', {}, (r.sources || []).join(', ')),
      el('td', { class: 'url' }, safeLink(r.first_url)))));
    $('emails-empty').hidden = rows.length > 0;
    $('emails-empty').textContent = emails.q || emails.site ? 'No address matches the filter.' : 'No addresses yet.';
    $('emails-total').textContent = `(${fmt.num(emails.total)})`;
    $('emails-sort-note').hidden = emails.total <= emails.limit;
    renderPager($('emails-pager'), emails);
    document.querySelectorAll('#emails th').forEach((th) => {
      const key = th.querySelector('[data-sort]').dataset.sort;
      if (key === emails.sort) th.setAttribute('aria-sort', emails.dir > 0 ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
    });
    const q = (emails.q ? `&q=${encodeURIComponent(emails.q)}` : '')
      + (emails.site ? `&site=${encodeURIComponent(emails.site)}` : '');
    $('dl-csv').href = `${base}/emails?format=csv${q}`;
    $('dl-json').href = `${base}/emails?format=jsonl${q}`;
    $('e-site').hidden = !emails.site;
    $('e-site').querySelector('[data-site]').textContent = emails.site || '';
  }

  function renderPager(pager, state) {
    const from = state.total ? state.offset + 1 : 0;
    const to = Math.min(state.total, state.offset + state.limit);
    pager.querySelector('[data-range]').textContent = `${fmt.num(from)}–${fmt.num(to)} of ${fmt.num(state.total)}`;
    pager.querySelector('[data-page="prev"]').disabled = state.offset === 0;
    pager.querySelector('[data-page="next"]').disabled = to >= state.total;
    pager.hidden = state.total <= state.limit && state.offset === 0;
  }

  function bindPager(pager, state, load) {
    pager.addEventListener('click', (event) => {
      const which = event.target.closest('[data-page]');
      if (!which) return;
      state.offset = which.dataset.page === 'next'
        ? state.offset + state.limit : Math.max(0, state.offset - state.limit);
      load();
    });
  }

  bindPager($('emails-pager'), emails, loadEmails);
  bindPager($('failed-pager'), failed, loadFailed);

  document.querySelectorAll('#emails [data-sort]').forEach((button) => {
    button.addEventListener('click', () => {
      const key = button.dataset.sort;
      emails.dir = emails.sort === key ? -emails.dir : 1;
      emails.sort = key;
      renderEmails();
    });
  });

  let filterTimer = null;
  $('e-filter').addEventListener('input', (event) => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => {
      emails.q = event.target.value.trim();
      emails.offset = 0;
      loadEmails();
    }, 250);
  });

  async function loadFailed() {
    const params = new URLSearchParams({ state: 'failed', limit: failed.limit, offset: failed.offset });
    try {
      const resp = await api(`${base}/pages?${params}`);
      if (!resp.ok) return;
      const data = await resp.json();
      failed.total = data.total;
      failed.seen = data.total;
      const body = document.querySelector('#failed tbody');
      body.replaceChildren(...data.pages.map((p) => el('tr', {},
        el('td', { class: 'url' }, safeLink(p.url)),
        el('td', { class: 'num' }, p.http_status === null ? '–' : p.http_status),
        el('td', {}, p.error || ''))));
      $('failed-empty').hidden = data.pages.length > 0;
      $('failed-total').textContent = `(${fmt.num(data.total)})`;
      renderPager($('failed-pager'), failed);
    } catch (err) { /* retried on the next change */ }
  }

  // -- sites: paged, filtered and sorted by the server, so 10,000 sites cost one page ----

  const sites = { offset: 0, limit: 25, state: '', sort: 'site', dir: 1, total: 0, seen: -1 };
  const loadSitesSoon = throttled(loadSites, 3000);

  async function loadSites() {
    const sort = (sites.dir < 0 ? '-' : '') + sites.sort;
    const params = new URLSearchParams({ limit: sites.limit, offset: sites.offset, sort, counts: '1' });
    if (sites.state) params.set('state', sites.state);
    const seen = ended(current.pages);
    try {
      const resp = await api(`${base}/sites?${params}`);
      if (!resp.ok) return;
      const data = await resp.json();
      sites.total = data.total;
      sites.seen = seen;
      renderSites(data);
    } catch (err) { /* retried on the next change */ }
  }

  function renderSites(data) {
    const body = document.querySelector('#sites tbody');
    body.replaceChildren(...data.sites.map((s) => el('tr', { dataset: { site: s.site, state: s.state } },
      el('td', { class: 'site' }, el('button', {
        type: 'button', class: 'linkish site-link', title: `Show the addresses found on ${s.site}`,
        dataset: { site: s.site },
      }, s.site)),
      el('td', {}, el('span', { class: 'site-state', dataset: { state: s.state } }, s.state)),
      el('td', { class: 'num' }, `${fmt.num(s.pages.done)} / ${fmt.num(s.pages.failed)} / ${fmt.num(s.pages.skipped)}`),
      el('td', { class: 'num' }, fmt.num(s.emails)),
      el('td', { class: 'num' }, fmt.num(s.own_emails)),
      el('td', { class: 'site-error' }, s.error || ''))));
    $('sites-empty').hidden = data.sites.length > 0;
    $('sites-empty').textContent = sites.state ? `No site is ${sites.state}.` : 'No sites yet.';
    const all = Object.values(data.states || {}).reduce((a, b) => a + b, 0);
    $('sites-total').textContent = `(${fmt.num(all)})`;
    document.querySelectorAll('#site-states button[data-state]').forEach((button) => {
      const state = button.dataset.state;
      button.setAttribute('aria-pressed', String(state === sites.state));
      button.querySelector('[data-count]').textContent = fmt.num(state ? (data.states || {})[state] : all);
    });
    document.querySelectorAll('#sites th').forEach((th) => {
      const key = (th.querySelector('[data-sort]') || {}).dataset;
      if (key && key.sort === sites.sort) th.setAttribute('aria-sort', sites.dir > 0 ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
    });
    renderPager($('sites-pager'), sites);
    $('dl-sites-csv').href = `${base}/sites?format=csv${sites.state ? `&state=${sites.state}` : ''}`;
  }

  bindPager($('sites-pager'), sites, loadSites);
  $('site-states').addEventListener('click', (event) => {
    const button = event.target.closest('button[data-state]');
    if (!button) return;
    sites.state = button.dataset.state;
    sites.offset = 0;
    loadSites();
  });
  document.querySelectorAll('#sites [data-sort]').forEach((button) => {
    button.addEventListener('click', () => {
      const key = button.dataset.sort;
      // Addresses sort most first; names and states A to Z.
      sites.dir = sites.sort === key ? -sites.dir : (key === 'emails' ? -1 : 1);
      sites.sort = key;
      sites.offset = 0;
      loadSites();
    });
  });
  document.querySelector('#sites tbody').addEventListener('click', (event) => {
    const link = event.target.closest('.site-link');
    if (!link) return;
    showSiteAddresses(link.dataset.site);
  });

  function showSiteAddresses(site) {
    emails.site = site;
    emails.offset = 0;
    loadEmails();
    if (site) $('emails-h').scrollIntoView({ block: 'start' });
  }
  $('e-site-clear').addEventListener('click', () => showSiteAddresses(''));

  // -- the completion webhook, when the job has one ------------------------------------

  const notifyUrl = (current.options || {}).notify_url;
  const STATE_LOOK = { pending: 'crawling', delivered: 'done', failed: 'unreachable' };

  function renderNotify(notify) {
    const line = $('notify-line');
    line.hidden = !notify;
    if (!notify) return;
    line.querySelector('[data-url]').textContent = notifyUrl || '';
    const badge = line.querySelector('[data-state]');
    badge.textContent = notify.state;
    badge.dataset.state = STATE_LOOK[notify.state] || notify.state;
    const tries = notify.attempts ? `after ${notify.attempts} ${notify.attempts === 1 ? 'attempt' : 'attempts'}` : '';
    const detail = notify.state === 'pending' && !FINISHED.includes(current.status)
      ? 'sent when the job ends' : [tries, notify.last_error].filter(Boolean).join(' · ');
    line.querySelector('[data-detail]').textContent = detail;
  }

  // Read the job object again after it ended, until the delivery settles.
  const notifyWatch = new Trawl.Repeater(async () => {
    if (!FINISHED.includes(current.status)) return 5000;
    const resp = await api(base);
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const notify = (await resp.json()).notify;
    renderNotify(notify);
    return notify && notify.state === 'pending' ? 3000 : null;
  });

  // -- workers on this job ---------------------------------------------------------------

  const workers = new Trawl.Repeater(async () => {
    const resp = await api('/api/workers');
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const mine = (await resp.json()).workers.filter((w) => w.job === jobId);
    document.querySelector('#job-workers tbody').replaceChildren(...mine.map((w) => el('tr', {},
      el('td', {}, el('code', {}, w.id)),
      el('td', {}, `${w.host} / ${w.pid}`),
      el('td', { class: 'num' }, fmt.num(w.pages)),
      el('td', { class: 'num' }, fmt.bytes(w.rss_bytes)),
      el('td', {}, fmt.ago(w.heartbeat_at)))));
    $('job-workers-empty').hidden = mine.length > 0;
    return FINISHED.includes(current.status) && !mine.length ? null : 5000;
  });

  // -- start -----------------------------------------------------------------------------

  const created = sessionStorage.getItem(`trawl.created.${jobId}`);
  if (created) $('created-in').textContent = `· the server answered in ${created} ms`;
  $('created').textContent = new Date(current.created_at).toLocaleString('en');

  renderProgress(current);
  chart.add(ended(current.pages));
  // SSE sends nothing while nothing changes: keep the chart's time axis moving.
  setInterval(() => {
    if (!document.hidden && !FINISHED.includes(current.status)) chart.add(ended(current.pages));
  }, 2000);
  renderNotify(current.notify);
  if (current.notify) notifyWatch.start();
  loadSites();
  loadEmails();
  loadFailed();
  workers.start();
  Trawl.liveMode.bind((mode) => { feed.start(mode); });
  feed.start(Trawl.liveMode.get());
})();
