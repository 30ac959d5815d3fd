% rebase('base.tpl', page='health', scripts=[])
% healthy = report['status'] == 'ok'
<section class="card" aria-labelledby="health-h">
  <h1 id="health-h">Health: <span class="status" data-status="{{report['status']}}">{{'healthy' if healthy else 'unhealthy'}}</span></h1>
  <table class="health-checks" id="checks">
    <thead><tr><th scope="col">Check</th><th scope="col">State</th><th scope="col">Detail</th></tr></thead>
    <tbody>
    % for check in report['checks']:
    <tr class="{{'ok' if check['ok'] else 'bad'}}" data-check="{{check['name']}}" data-ok="{{'true' if check['ok'] else 'false'}}">
      <th scope="row">{{check['name']}}</th>
      <td><span class="mark" aria-hidden="true">{{'●' if check['ok'] else '✖'}}</span> {{'ok' if check['ok'] else 'failing'}}</td>
      <td>{{check['detail']}}</td>
    </tr>
    % end
    </tbody>
  </table>
  <p class="muted small">Same checks as <code>python health_check.py</code>. Machines: <a href="/health" id="health-json">GET /health</a> with <code>Accept: application/json</code>. <a href="/health">Check again</a>.</p>
</section>
