// The home page: the job form (JSON to POST /api/jobs, or multipart when a
// seed file is attached), the totals strip and the recent jobs. The job list
// is polled as one request: never one event stream per row (browsers allow
// about six connections per origin).
'use strict';

(() => {
  const { api, readJson, el, fmt, FINISHED, ended, fraction, setBar, statusBadge } = Trawl;
  const form = document.getElementById('job-form');
  const $ = (id) => document.getElementById(id);

  Trawl.liveMode.bind();

  // -- the form -----------------------------------------------------------------------

  function clearErrors() {
    form.querySelectorAll('[data-error-for]').forEach((p) => { p.textContent = ''; });
    form.querySelectorAll('[aria-invalid]').forEach((f) => f.removeAttribute('aria-invalid'));
    $('form-error').textContent = '';
  }

  function showErrors(data, status) {
    const fields = data.fields || {};
    const unplaced = [];
    let first = null;
    for (const [name, message] of Object.entries(fields)) {
      const slot = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
      if (!slot) { unplaced.push(`${name}: ${message}`); continue; }
      slot.textContent = message;
      const input = form.querySelector(`[name="${CSS.escape(name)}"]:not([type=hidden])`);
      if (input) { input.setAttribute('aria-invalid', 'true'); first = first || input; }
    }
    const summary = data.error || `The server answered ${status}.`;
    $('form-error').textContent = unplaced.length ? `${summary} (${unplaced.join('; ')})` : summary;
    if (first) first.focus();
  }

  // JSON typed as the API wants it; a non-number is sent as typed so the
  // API names the field in its answer.
  function jsonBody() {
    const body = { urls: form.elements.urls.value, name: form.elements.name.value };
    form.querySelectorAll('input[data-int]').forEach((input) => {
      const raw = input.value.trim();
      if (raw !== '') body[input.name] = /^-?\d+$/.test(raw) ? Number(raw) : raw;
    });
    form.querySelectorAll('input[data-bool]').forEach((box) => { body[box.name] = box.checked; });
    return JSON.stringify(body);
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors();
    const button = $('start');
    const file = $('f-file').files[0];
    const options = { method: 'POST' };
    if (file) {
      options.body = new FormData(form); // multipart; hidden 0 + checked 1 keep the booleans
    } else {
      options.body = jsonBody();
      options.headers = { 'Content-Type': 'application/json' };
    }
    button.disabled = true;
    $('timing').textContent = 'Creating…';
    const started = performance.now();
    try {
      const resp = await api('/api/jobs', options);
      const ms = Math.round(performance.now() - started);
      const data = await readJson(resp);
      if (resp.status !== 202 || !data.id) {
        $('timing').textContent = `Refused in ${ms} ms.`;
        showErrors(data, resp.status);
        button.disabled = false;
        return;
      }
      $('timing').textContent = `Job created in ${ms} ms: opening it…`;
      try { sessionStorage.setItem(`trawl.created.${data.id}`, String(ms)); } catch (e) { /* ignore */ }
      setTimeout(() => window.location.assign(`/jobs/${encodeURIComponent(data.id)}`), 300);
    } catch (err) {
      $('timing').textContent = '';
      $('form-error').textContent = 'The server did not answer. Is it running? Try again.';
      button.disabled = false;
    }
  });

  // -- totals strip --------------------------------------------------------------------

  const stats = new Trawl.Repeater(async () => {
    const resp = await api('/api/stats');
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const data = await resp.json();
    const values = {
      running: data.jobs.running, queued: data.jobs.queued, completed: data.jobs.completed,
      workers: data.workers, emails: data.emails, pages_per_s: fmt.rate(data.pages_per_s),
    };
    for (const [key, value] of Object.entries(values)) {
      document.querySelector(`[data-stat="${key}"]`).textContent = typeof value === 'number' ? fmt.num(value) : value;
    }
    return data.jobs.running || data.jobs.queued ? 3000 : 10000;
  });

  // -- recent jobs ------------------------------------------------------------------------

  function jobRow(job) {
    const bar = el('div', { class: 'bar', role: 'progressbar', 'aria-label': 'Pages ended', 'aria-valuemin': 0, 'aria-valuemax': 100 },
      el('div', { class: 'fill' }));
    setBar(bar, fraction(job), job.status);
    return el('tr', { dataset: { jobId: job.id } },
      el('td', {}, el('a', { href: `/jobs/${encodeURIComponent(job.id)}` }, job.name || `Job ${job.id}`)),
      el('td', {}, statusBadge(job.status)),
      el('td', { class: 'progress-cell' }, bar,
        el('span', { class: 'small muted' }, `${fmt.num(ended(job.pages))} / ${fmt.num(job.pages.discovered)}`)),
      el('td', { class: 'num' }, fmt.num(job.emails)),
      el('td', { class: 'small' }, fmt.ago(job.created_at)));
  }

  const jobs = new Trawl.Repeater(async () => {
    const resp = await api('/api/jobs?limit=15');
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const data = await resp.json();
    document.querySelector('#jobs tbody').replaceChildren(...data.jobs.map(jobRow));
    $('jobs-empty').hidden = data.jobs.length > 0;
    $('jobs-state').textContent = '';
    const active = data.jobs.some((j) => !FINISHED.includes(j.status));
    return active ? 2000 : 10000;
  }, { onError: (err, next) => { $('jobs-state').textContent = `Reconnecting… next try in ${Math.round(next / 1000)} s`; } });

  stats.start();
  jobs.start();
})();
