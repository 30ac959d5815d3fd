% rebase('base.tpl', page='home', scripts=['home.js'])
% p = prefill or {}
% def checked(name):
%   return 'checked' if p.get(name, True) else ''
% end
<section class="stats" id="stats" aria-label="Totals across all jobs">
  % for key, label in (('running', 'running'), ('queued', 'queued'), ('completed', 'completed'), ('workers', 'live workers'), ('emails', 'emails found'), ('pages_per_s', 'pages/s now')):
  <div class="stat"><span class="num" data-stat="{{key}}">–</span><span class="label">{{label}}</span></div>
  % end
</section>

<div class="columns">
<section class="card form-card" aria-labelledby="new-crawl">
  <h1 id="new-crawl">{{'Run again' if prefill else 'New crawl'}}</h1>
  <form id="job-form" method="post" action="/api/jobs" enctype="multipart/form-data" novalidate>
    <input type="hidden" name="csrf_token" value="{{csrf}}">
    <div class="field">
      <label for="f-urls">Seed URLs</label>
      <textarea id="f-urls" name="urls" rows="6" spellcheck="false" placeholder="https://example.org/&#10;https://example.net/about" aria-describedby="h-urls e-urls">{{p.get('urls', '')}}</textarea>
      <p class="hint" id="h-urls">One URL per line (http or https), up to 10,000.</p>
      <p class="error" id="e-urls" data-error-for="urls"></p>
    </div>
    <div class="field">
      <label for="f-file">Seed list file (.txt or .csv)</label>
      <input type="file" id="f-file" name="urls_file" accept=".txt,.csv,text/plain,text/csv" aria-describedby="e-urls_file">
      <p class="error" id="e-urls_file" data-error-for="urls_file"></p>
    </div>
    <div class="field">
      <label for="f-name">Name</label>
      <input type="text" id="f-name" name="name" maxlength="200" value="{{p.get('name', '')}}" aria-describedby="e-name">
      <p class="error" id="e-name" data-error-for="name"></p>
    </div>
    <div class="grid">
      % for name, label, default, hint in (('max_depth', 'Max depth', 2, '0 = seeds only'), ('max_pages', 'Max pages', 1000, 'up to 1,000,000'), ('concurrency', 'Concurrency', 50, 'fetches per worker, 1–100'), ('per_host_connections', 'Host connections', 4, '1–100'), ('per_host_delay_ms', 'Host delay (ms)', 0, 'between requests to a host'), ('workers', 'Workers', '', 'empty = automatic'), ('max_pages_per_site', 'Max pages per site', '', 'empty = no limit; e.g. 20 for contact discovery')):
      % value = p.get(name, default)
      <div class="field">
        <label for="f-{{name}}">{{label}}</label>
        <input type="text" inputmode="numeric" id="f-{{name}}" name="{{name}}" data-int value="{{'' if value is None else value}}" placeholder="{{'auto' if name == 'workers' else 'no limit' if name == 'max_pages_per_site' else ''}}" aria-describedby="h-{{name}} e-{{name}}">
        <p class="hint" id="h-{{name}}">{{hint}}</p>
        <p class="error" id="e-{{name}}" data-error-for="{{name}}"></p>
      </div>
      % end
    </div>
    <div class="checks">
      % for name, label in (('same_domain', 'Same domain only'), ('obey_robots', 'Obey robots.txt'), ('use_sitemaps', 'Use sitemaps'), ('verify_tls', 'Verify TLS certificates')):
      <div class="check">
        <input type="hidden" name="{{name}}" value="0">
        <input type="checkbox" id="f-{{name}}" name="{{name}}" value="1" data-bool {{checked(name)}}>
        <label for="f-{{name}}">{{label}}</label>
        <p class="error" id="e-{{name}}" data-error-for="{{name}}"></p>
      </div>
      % end
      <div class="check live-toggle">
        <input type="checkbox" id="f-sse" data-live-toggle>
        <label for="f-sse">Live updates (SSE)</label>
        <span class="hint">off = polling every 2 s</span>
      </div>
    </div>
    <p class="error" id="form-error" role="alert"></p>
    <div class="actions">
      <button type="submit" id="start" class="primary">Start crawl</button>
      <span id="timing" class="muted" role="status"></span>
    </div>
  </form>
</section>

<section class="card" aria-labelledby="recent">
  <h2 id="recent">Recent jobs</h2>
  <table class="jobs" id="jobs">
    <thead><tr><th scope="col">Name</th><th scope="col">Status</th><th scope="col">Progress</th><th scope="col" class="num">Emails</th><th scope="col">Created</th></tr></thead>
    <tbody></tbody>
  </table>
  <p id="jobs-empty" class="muted" hidden>No jobs yet: start one with the form.</p>
  <p id="jobs-state" class="muted small" role="status"></p>
</section>
</div>
