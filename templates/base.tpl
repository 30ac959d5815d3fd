<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{{csrf}}">
<title>{{title}}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/trawl.css">
</head>
<body data-page="{{page}}">
<header class="top">
  <a class="brand" href="/">Trawl</a>
  <nav aria-label="Main">
    <a href="/"{{!' aria-current="page"' if path == '/' else ''}}>New crawl</a>
    <a href="/workers"{{!' aria-current="page"' if path == '/workers' else ''}}>Workers</a>
    <a href="/health"{{!' aria-current="page"' if path == '/health' else ''}}>Health</a>
    % if login and csrf:
    <form method="post" action="/logout" class="inline">
      <input type="hidden" name="csrf_token" value="{{csrf}}">
      <button type="submit" class="linkish">Log out</button>
    </form>
    % end
  </nav>
</header>
<main>
{{!base}}
</main>
<script src="/static/common.js"></script>
% for script in get('scripts', []):
<script src="/static/{{script}}"></script>
% end
</body>
</html>
