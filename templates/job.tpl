% rebase('base.tpl', page='job', scripts=['live.js', 'chart.js', 'job.js'])
<div id="job" data-job-id="{{job['id']}}" data-initial="{{initial}}">
<section class="job-head">
  <h1 id="job-name">{{job['name'] or 'Job ' + job['id']}}</h1>
  <p class="muted">Job <code>{{job['id']}}</code> · created <span id="created">{{job['created_at']}}</span> <span id="created-in"></span></p>
  % if job['options'].get('verify_tls') is False:
  <p class="warning" id="verify-tls-off" data-verify-tls="false">TLS certificates are not verified for this job (<code>verify_tls</code> false).</p>
  % end
  % if job['options'].get('max_pages_per_site'):
  <p class="muted" id="site-budget">At most {{job['options']['max_pages_per_site']}} pages per site.</p>
  % end
  <p class="status-line">
    <span class="label">Status</span>
    <strong id="status" class="status" data-status="{{job['status']}}">{{job['status']}}</strong>
    <span id="waiting" class="waiting"{{'' if job.get('waiting_for') else ' hidden'}}>waiting for workers</span>
    <span id="live" class="live" data-state="connecting" role="status">connecting…</span>
  </p>
  <p id="notify-line" class="muted small" hidden>Webhook <code data-url></code>: <span class="site-state" data-state></span> <span data-detail></span></p>
  <div class="check live-toggle">
    <input type="checkbox" id="f-sse" data-live-toggle>
    <label for="f-sse">Live updates (SSE)</label>
  </div>
</section>

<section class="card" aria-labelledby="progress-h">
  <h2 id="progress-h" class="visually-hidden">Progress</h2>
  <div class="bar big" id="bar" role="progressbar" aria-label="Pages ended" aria-valuemin="0" aria-valuemax="100"><div class="fill"></div></div>
  <p id="progress-text" class="progress-text" aria-live="polite"></p>
  <dl class="counters" id="counters">
    % for key, label in (('discovered', 'Discovered'), ('done', 'Done'), ('failed', 'Failed'), ('skipped', 'Skipped'), ('in_flight', 'In flight'), ('emails', 'Emails'), ('bytes', 'Downloaded'), ('rate', 'Pages/s'), ('eta', 'ETA'), ('workers', 'Workers')):
    <div class="counter" data-counter="{{key}}"><dt>{{label}}</dt><dd>–</dd></div>
    % end
  </dl>
  <p id="job-error" class="error" role="alert"></p>
  <div class="buttons" id="actions">
    <button type="button" data-action="pause">Pause</button>
    <button type="button" data-action="resume">Resume</button>
    <button type="button" data-action="cancel">Cancel</button>
    <button type="button" data-action="retry">Retry failed</button>
    <button type="button" data-action="delete" class="danger">Delete</button>
    <a class="button" id="run-again" href="/?from={{job['id']}}">Run again</a>
  </div>
  <p id="action-msg" class="muted" role="status"></p>
</section>

<div class="columns">
<section class="card" aria-labelledby="chart-h">
  <h2 id="chart-h">Throughput</h2>
  <div id="chart" class="chart"></div>
</section>
<section class="card" aria-labelledby="workers-h">
  <h2 id="workers-h">Workers on this job</h2>
  <table class="small" id="job-workers">
    <thead><tr><th scope="col">Worker</th><th scope="col">Host / pid</th><th scope="col" class="num">Pages</th><th scope="col" class="num">Memory</th><th scope="col">Heartbeat</th></tr></thead>
    <tbody></tbody>
  </table>
  <p id="job-workers-empty" class="muted small">No worker is on this job right now.</p>
</section>
</div>

<section class="card" aria-labelledby="sites-h">
  <h2 id="sites-h">Sites <span id="sites-total" class="muted"></span></h2>
  <div class="toolbar wrap">
    <div class="chips" id="site-states" role="group" aria-label="Show sites in state">
      <button type="button" data-state="" aria-pressed="true">all <span data-count></span></button>
      % for state in ('pending', 'crawling', 'done', 'unreachable', 'blocked'):
      <button type="button" data-state="{{state}}" aria-pressed="false"><span class="site-state" data-state="{{state}}">{{state}}</span> <span data-count></span></button>
      % end
    </div>
    <span class="spacer"></span>
    <a id="dl-sites-csv" class="button" href="/api/jobs/{{job['id']}}/sites?format=csv" download aria-label="Download the sites as CSV">Download CSV</a>
  </div>
  <table class="sites" id="sites">
    <thead><tr>
      <th scope="col" aria-sort="ascending"><button type="button" data-sort="site">Site</button></th>
      <th scope="col"><button type="button" data-sort="state">State</button></th>
      <th scope="col" class="num" title="done / failed / skipped">Pages</th>
      <th scope="col" class="num"><button type="button" data-sort="emails">Addresses</button></th>
      <th scope="col" class="num" title="addresses at the site's own domain">Own domain</th>
      <th scope="col">Error</th>
    </tr></thead>
    <tbody></tbody>
  </table>
  <p id="sites-empty" class="muted">No sites yet.</p>
  <div class="pager" id="sites-pager">
    <button type="button" data-page="prev">Previous</button>
    <span data-range></span>
    <button type="button" data-page="next">Next</button>
  </div>
</section>

<section class="card" aria-labelledby="emails-h">
  <h2 id="emails-h">Emails <span id="emails-total" class="muted"></span></h2>
  <div class="toolbar">
    <label for="e-filter">Filter</label>
    <input type="search" id="e-filter" placeholder="part of an address">
    <span id="e-site" class="chip" hidden>site <strong data-site></strong> <button type="button" id="e-site-clear" aria-label="Show every site">✕</button></span>
    <span class="spacer"></span>
    <a id="dl-csv" class="button" href="/api/jobs/{{job['id']}}/emails?format=csv" download>Download CSV</a>
    <a id="dl-json" class="button" href="/api/jobs/{{job['id']}}/emails?format=jsonl" download="trawl-{{job['id']}}-emails.jsonl">Download JSON</a>
  </div>
  <table class="emails" id="emails">
    <thead><tr>
      <th scope="col" aria-sort="ascending"><button type="button" data-sort="email">Email</button></th>
      <th scope="col"><button type="button" data-sort="domain">Domain</button></th>
      <th scope="col"><button type="button" data-sort="site">Site</button></th>
      <th scope="col" class="num"><button type="button" data-sort="pages">Pages</button></th>
      <th scope="col"><button type="button" data-sort="sources">Found as</button></th>
      <th scope="col"><button type="button" data-sort="first_url">First seen on</button></th>
    </tr></thead>
    <tbody></tbody>
  </table>
  <p id="emails-empty" class="muted">No addresses yet.</p>
  <p id="emails-sort-note" class="muted small" hidden>Pages follow the address order; a column sort reorders the page shown.</p>
  <div class="pager" id="emails-pager">
    <button type="button" data-page="prev">Previous</button>
    <span data-range></span>
    <button type="button" data-page="next">Next</button>
  </div>
</section>

<section class="card" aria-labelledby="failed-h">
  <h2 id="failed-h">Failed pages <span id="failed-total" class="muted"></span></h2>
  <table class="small" id="failed">
    <thead><tr><th scope="col">URL</th><th scope="col" class="num">HTTP</th><th scope="col">Reason</th></tr></thead>
    <tbody></tbody>
  </table>
  <p id="failed-empty" class="muted">No failed pages.</p>
  <div class="pager" id="failed-pager">
    <button type="button" data-page="prev">Previous</button>
    <span data-range></span>
    <button type="button" data-page="next">Next</button>
  </div>
</section>
</div>
