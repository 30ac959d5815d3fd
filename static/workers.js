// The workers page: the live worker processes from /api/workers, every 5 s.
'use strict';

(() => {
  const { api, el, fmt } = Trawl;
  const state = document.getElementById('workers-state');
  const poller = new Trawl.Repeater(async () => {
    const resp = await api('/api/workers');
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const { workers } = await resp.json();
    document.querySelector('#workers tbody').replaceChildren(...workers.map((w) => el('tr', {},
      el('td', {}, el('code', {}, w.id)),
      el('td', {}, w.host),
      el('td', { class: 'num' }, w.pid),
      el('td', {}, w.job ? el('a', { href: `/jobs/${encodeURIComponent(w.job)}` }, w.job) : '–'),
      el('td', {}, w.state || ''),
      el('td', { class: 'num' }, fmt.num(w.pages)),
      el('td', { class: 'num' }, fmt.bytes(w.rss_bytes)),
      el('td', {}, fmt.ago(w.started_at)),
      el('td', {}, fmt.ago(w.heartbeat_at)))));
    document.getElementById('workers-empty').hidden = workers.length > 0;
    document.getElementById('workers-count').textContent = `(${workers.length})`;
    state.textContent = `Updated ${new Date().toLocaleTimeString('en')}`;
    return 5000;
  }, { onError: (err, next) => { state.textContent = `Reconnecting… next try in ${Math.round(next / 1000)} s`; } });
  poller.start();
})();
