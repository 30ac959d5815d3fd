% rebase('base.tpl', page='workers', scripts=['workers.js'])
<section class="card" aria-labelledby="workers-h">
  <h1 id="workers-h">Workers <span id="workers-count" class="muted"></span></h1>
  <p class="muted">Live worker processes on every host, refreshed every 5 s. A worker that stops sending heartbeats leaves this list within 15 s.</p>
  <table id="workers">
    <thead><tr><th scope="col">Worker</th><th scope="col">Host</th><th scope="col" class="num">PID</th><th scope="col">Job</th><th scope="col">State</th><th scope="col" class="num">Pages</th><th scope="col" class="num">Memory</th><th scope="col">Started</th><th scope="col">Heartbeat</th></tr></thead>
    <tbody></tbody>
  </table>
  <p id="workers-empty" class="muted">No worker processes are running. That is normal while there is no work: they start when a job is queued.</p>
  <p id="workers-state" class="muted small" role="status"></p>
</section>
