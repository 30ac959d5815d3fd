% rebase('base.tpl', page='login', scripts=[])
<section class="card narrow" aria-labelledby="login-h">
  <h1 id="login-h">Log in to Trawl</h1>
  <form method="post" action="/login">
    <input type="hidden" name="next" value="{{next}}">
    <div class="field">
      <label for="f-token">API token</label>
      <input type="password" id="f-token" name="token" autocomplete="current-password" required autofocus>
      <p class="hint">The value of <code>TRAWL_API_TOKEN</code> on the server.</p>
    </div>
    % if error:
    <p class="error" role="alert">{{error}}</p>
    % end
    <div class="actions"><button type="submit" class="primary">Log in</button></div>
  </form>
</section>
