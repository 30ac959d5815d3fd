"""A local test website: a real HTTP server the engine tests crawl.

Every crawl in the test suite targets one of these, never the network.
`TestSite` serves pages and custom routes from a `ThreadingHTTPServer` on
127.0.0.x, counts every request it answers (end-to-end tests assert that
each page was fetched exactly once) and has ready-made hostile routes:
gzip, a latin-1 page, a page that fails before it works, a slow page, an
oversized page, a gzip bomb, redirect loops and redirects to other sites.

    with TestSite() as site:
        site.add_page("/", "<a href='/a'>a</a>")
        truth = generate_site(site, pages=200, seed=1)

Tests get a started site from the `site` fixture (`from tests.site import site`).
"""

from __future__ import annotations

import functools
import gzip
import random
import threading
import zlib
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

Handler = Callable[[BaseHTTPRequestHandler], None]
MiB = 1024 * 1024
# What a crawler asks every site for before its pages.
CRAWLER_FILES = frozenset({"/robots.txt", "/sitemap.xml"})


def reply(h: BaseHTTPRequestHandler, status: int, body: bytes = b"", headers: dict | None = None) -> None:
    """Send one complete response; custom route handlers use this."""
    headers = {"Content-Type": "text/html; charset=utf-8", **(headers or {})}
    h.send_response(status)
    for name, value in headers.items():
        h.send_header(name, value)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)


class _RequestHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 so clients keep connections alive, as real servers let them.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, each
    # response would stall ~40 ms on the client's delayed ACK.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self.server.site._dispatch(self)

    do_HEAD = do_GET

    def log_message(self, format: str, *args) -> None:
        pass  # keep test output clean


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops SYNs when a crawler opens dozens of
    # connections at once, and each drop costs a 1 s retransmit.
    request_queue_size = 1024
    site: TestSite
    ssl_context = None  # an ssl.SSLContext makes this an HTTPS server

    def get_request(self):
        sock, address = super().get_request()
        if self.ssl_context is not None:
            # The handshake runs on first read, in the request's thread, so a
            # client that rejects our certificate never blocks accept().
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request, client_address) -> None:
        pass  # clients abort on purpose (cancel, byte caps); that is not an error


class TestSite:
    """A threaded HTTP server on `host`:<free port> with a request counter."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, host: str = "127.0.0.1", ssl_context=None, name: str | None = None):
        self.host = host
        self.ssl_context = ssl_context
        self.name = name or host  # the host name in URLs (a certificate's name)
        self._routes: dict[str, Handler] = {}
        self._hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._active = 0
        self._peak = 0
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None  # kept after stop(), so URLs stay printable

    # ------------------------------------------------------------- lifecycle

    def start(self) -> TestSite:
        self._stopping.clear()
        self._server = _Server((self.host, 0), _RequestHandler)
        self._server.site = self
        self._server.ssl_context = self.ssl_context
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes the slow routes so their threads end
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> TestSite:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def origin(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.name}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.origin + path

    # ------------------------------------------------------------- counting

    def hits(self, path: str) -> int:
        """Requests answered for `path` (the request target, query included)."""
        with self._lock:
            return self._hits[path]

    def all_hits(self) -> dict[str, int]:
        with self._lock:
            return dict(self._hits)

    def page_hits(self) -> dict[str, int]:
        """Requests per path, the crawler's own files (robots.txt, sitemap.xml) left out."""
        return {path: n for path, n in self.all_hits().items() if path not in CRAWLER_FILES}

    def peak_concurrency(self) -> int:
        """Most requests this site was answering at the same moment."""
        with self._lock:
            return self._peak

    def reset_hits(self) -> None:
        with self._lock:
            self._hits.clear()
            self._peak = self._active

    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        target = h.path
        with self._lock:
            self._hits[target] += 1
            self._active += 1
            self._peak = max(self._peak, self._active)
        try:
            handler = self._routes.get(target) or self._routes.get(urlsplit(target).path)
            (handler or _not_found)(h)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up; nothing to answer
        finally:
            with self._lock:
                self._active -= 1

    # ------------------------------------------------------------- routes

    def add_route(self, path: str, handler: Handler) -> str:
        """Serve `path` (exact target, or path without query) with `handler(h)`."""
        self._routes[path] = handler
        return path

    def add_page(
        self, path: str, body: str | bytes, status: int = 200, headers: dict | None = None
    ) -> str:
        if isinstance(body, str):
            body = body.encode("utf-8")
            headers = {"Content-Type": "text/html; charset=utf-8", **(headers or {})}
        else:
            headers = {"Content-Type": "text/html", **(headers or {})}
        return self.add_route(path, lambda h: reply(h, status, body, headers))

    def set_robots(self, text: str | None, status: int = 200) -> str:
        """Serve robots.txt with `text` and `status`; None removes it (404)."""
        if text is None:
            self._routes.pop("/robots.txt", None)
            return "/robots.txt"
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        return self.add_page("/robots.txt", text, status=status, headers=headers)

    def add_redirect(self, path: str, location: str, status: int = 302) -> str:
        return self.add_route(path, lambda h: reply(h, status, b"", {"Location": location}))

    def add_redirect_loop(self, path: str = "/loop/a", other: str = "/loop/b") -> str:
        """`path` redirects to `other`, which redirects back, forever."""
        self.add_redirect(path, other)
        self.add_redirect(other, path)
        return path

    def add_gzip_page(self, path: str = "/gzip.html", text: str | None = None) -> str:
        text = text or "<html><body><p>Compressed page: gzip@trawl-test.org</p></body></html>"
        body = gzip.compress(text.encode("utf-8"))
        headers = {"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip"}
        return self.add_route(path, lambda h: reply(h, 200, body, headers))

    def add_latin1_page(self, path: str = "/latin1.html", text: str = "Café Müller — Größe") -> str:
        """Latin-1 bytes; the charset is only in <meta>, not in the header."""
        html = f'<html><head><meta charset="iso-8859-1"></head><body><p>{text}</p></body></html>'
        body = html.replace("—", "-").encode("latin-1")
        return self.add_page(path, body, headers={"Content-Type": "text/html"})

    def add_flaky_page(
        self, path: str = "/flaky.html", failures: int = 1, status: int = 500, text: str = "ok now"
    ) -> str:
        """Answer `status` the first `failures` times, then 200 with `text`."""
        remaining = [failures]
        lock = threading.Lock()

        def handler(h: BaseHTTPRequestHandler) -> None:
            with lock:
                failing = remaining[0] > 0
                remaining[0] -= 1
            if failing:
                reply(h, status, b"temporarily broken")
            else:
                reply(h, 200, text.encode("utf-8"))

        return self.add_route(path, handler)

    def add_slow_page(self, path: str = "/slow.html", delay_s: float = 30.0, text: str = "slow") -> str:
        """Wait `delay_s` (or until the site stops) before answering."""

        def handler(h: BaseHTTPRequestHandler) -> None:
            self._stopping.wait(delay_s)
            reply(h, 200, text.encode("utf-8"))

        return self.add_route(path, handler)

    def add_oversized_page(self, path: str = "/big.html", size: int = 6 * MiB) -> str:
        chunk = b"<p>" + b"x" * 1017 + b"</p>\n"
        body = (chunk * (size // len(chunk) + 1))[:size]
        return self.add_page(path, body, headers={"Content-Type": "text/html; charset=utf-8"})

    def add_gzip_bomb(self, path: str = "/bomb.html", size: int = 64 * MiB) -> str:
        """A small gzip body that inflates to `size` bytes of HTML-ish zeros."""
        body = _gzip_of_zeros(size)
        headers = {"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip"}
        return self.add_route(path, lambda h: reply(h, 200, body, headers))


def _not_found(h: BaseHTTPRequestHandler) -> None:
    reply(h, 404, b"<html><body>not found</body></html>")


@functools.lru_cache(maxsize=4)
def _gzip_of_zeros(size: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: gzip framing
    block = bytes(MiB)
    parts = [packer.compress(block) for _ in range(size // MiB)]
    parts.append(packer.compress(bytes(size % MiB)))
    parts.append(packer.flush())
    return b"".join(parts)


# ------------------------------------------------------------- generated sites

_DOMAINS = ("acme-widgets.com", "northwind-traders.org", "contoso-labs.net", "fabrikam.de", "tailspin.io")
_FIRST = ("anna", "ben", "carla", "dmitri", "eva", "farid", "grace", "hiro", "ines", "jonas")
_LAST = ("berg", "costa", "dubois", "eriksen", "fischer", "garcia", "huang", "ivanova", "jensen", "kowalski")
_FILLER = (
    "Our team publishes quarterly reports on regional logistics and supply. "
    "Visitors can browse the archive, read the notes and contact the editors. "
)


@dataclass
class GroundTruth:
    """What a perfect crawl of a generated site finds, starting at `root`."""

    root: str
    depth: dict[str, int] = field(default_factory=dict)  # page URL -> link hops from root
    emails_by_url: dict[str, set[str]] = field(default_factory=dict)

    @property
    def urls(self) -> set[str]:
        return set(self.depth)

    @property
    def emails(self) -> set[str]:
        return set().union(*self.emails_by_url.values())

    def urls_within(self, max_depth: int) -> set[str]:
        return {url for url, d in self.depth.items() if d <= max_depth}

    def emails_within(self, max_depth: int) -> set[str]:
        return set().union(*(self.emails_by_url[url] for url in self.urls_within(max_depth)))


def generate_site(
    site: TestSite,
    pages: int = 100,
    links_per_page: int = 10,
    emails_per_page: int | tuple[int, int] = 1,
    seed: int = 0,
    filler_bytes: int = 0,
) -> GroundTruth:
    """Add a deterministic linked site to `site` and return its ground truth.

    Page 0 is "/", the others "/p/<n>.html". A tree of links makes every page
    reachable from "/"; random links and a fragment link to "/" on every page
    make the dedupe work. `emails_per_page` is a count or an inclusive
    (low, high) range; addresses come from a shared pool, so many appear on
    several pages, as plain text or as mailto: links.
    """
    rng = random.Random(seed)
    low, high = (emails_per_page, emails_per_page) if isinstance(emails_per_page, int) else emails_per_page
    paths = ["/"] + [f"/p/{n}.html" for n in range(1, pages)]
    pool = _email_pool(rng, max(high, 1, pages * high // 2))
    fanout = max(2, links_per_page // 2)
    links: list[list[int]] = []
    for n in range(pages):
        children = [c for c in range(n * fanout + 1, n * fanout + fanout + 1) if c < pages]
        extra = [rng.randrange(pages) for _ in range(max(0, links_per_page - len(children)))]
        links.append(children + extra)
    truth = GroundTruth(root=site.url("/"))
    for n, path in enumerate(paths):
        emails = rng.sample(pool, rng.randint(low, high))
        truth.emails_by_url[site.url(path)] = set(emails)
        site.add_page(path, _render_page(rng, site, n, [paths[t] for t in links[n]], emails, filler_bytes))
    truth.depth = _bfs_depths(links, [site.url(p) for p in paths])
    return truth


def _email_pool(rng: random.Random, size: int) -> list[str]:
    pool = set()
    while len(pool) < size:
        name = f"{rng.choice(_FIRST)}.{rng.choice(_LAST)}{rng.randrange(1000)}"
        pool.add(f"{name}@{rng.choice(_DOMAINS)}")
    return sorted(pool)


def _render_page(
    rng: random.Random, site: TestSite, n: int, targets: list[str], emails: list[str], filler_bytes: int
) -> str:
    out = [f"<!doctype html><html><head><title>Page {n}</title></head><body>", '<a href="/#top">Home</a>']
    for target in targets:
        href = site.url(target) if rng.random() < 0.3 else target
        out.append(f'<p><a href="{href}">Link to {target}</a></p>')
    for email in emails:
        if rng.random() < 0.5:
            out.append(f'<p>Write to <a href="mailto:{email}">us</a>.</p>')
        else:
            out.append(f"<p>Contact: {email}</p>")
    filler = _FILLER * (filler_bytes // len(_FILLER) + 1)
    out.append(f"<p>{filler[:filler_bytes]}</p></body></html>")
    return "\n".join(out)


def _bfs_depths(links: list[list[int]], urls: list[str]) -> dict[str, int]:
    depth = {0: 0}
    queue = deque([0])
    while queue:
        n = queue.popleft()
        for t in links[n]:
            if t not in depth:
                depth[t] = depth[n] + 1
                queue.append(t)
    return {urls[n]: d for n, d in depth.items()}


@pytest.fixture
def site():
    """A started TestSite on 127.0.0.1, stopped after the test."""
    with TestSite() as test_site:
        yield test_site


# ------------------------------------------------------------- sites with a contact page

_CONTACT = (("/contact", "Contact"), ("/kontakt", "Kontakt"), ("/contacto", "Contacto"), ("/contact-us", "Contact us"))
_TEAM = (("/about/team", "Our team"), ("/ueber-uns/team", "Team"), ("/about/people", "People"))
_IMPRINT = ("Impressum", "Imprint", "Legal notice")


@dataclass
class ContactSite:
    """A generated site whose addresses are only on three pages at depth 1, 2 and 3."""

    pages: dict[str, str]  # path -> HTML
    emails: set[str]
    address_paths: list[str]  # depth 1, 2, 3


def contact_site(seed: int, pages: int = 200, domain: str = "acme-widgets.com") -> ContactSite:
    """Like a small company site: a home page with 20-60 article links, nav and footer, a blog,
    and the addresses only on a contact page (depth 1, its link in the top nav or the footer),
    a team page under /about (depth 2) and an imprint page (depth 3) whose URL is a plain
    article URL: only its link text ("Impressum", ...) says what it is.

    Deterministic for a seed; `pages` pages, every one within 3 hops of "/".
    """
    rng = random.Random(seed)
    contact_path, contact_text = rng.choice(_CONTACT)
    team_path, team_text = rng.choice(_TEAM)
    articles = [f"/p/{n}.html" for n in range(1, pages - 6)]
    imprint_path = articles[-1]
    nav_contact = rng.random() < 0.5
    nav = [("/", "Home"), ("/blog", "Blog"), ("/about", "About us"), ("/products", "Products")]
    if nav_contact:
        nav.append((contact_path, contact_text))
    footer = [("/privacy", "Privacy")] + ([] if nav_contact else [(contact_path, contact_text)])
    emails = [f"{name}@{domain}" for name in ("info", "team", "legal")]
    out: dict[str, str] = {}

    def page(title: str, body_links: list[tuple[str, str]], text: str = "") -> str:
        parts = [f"<!doctype html><html><head><title>{title}</title></head><body><nav>"]
        parts += [f'<a href="{href}">{label}</a>' for href, label in nav]
        parts.append("</nav><main>")
        parts += [f'<p><a href="{href}">{label}</a></p>' for href, label in body_links]
        parts.append(f"<p>{text or _FILLER}</p></main><footer>")
        parts += [f'<a href="{href}">{label}</a>' for href, label in footer]
        parts.append("</footer></body></html>")
        return "\n".join(parts)

    home_articles = articles[: rng.randint(20, 60)]
    out["/"] = page("Home", [(a, f"Article {a[3:-5]}") for a in home_articles])
    out["/blog"] = page("Blog", [(a, f"Article {a[3:-5]}") for a in rng.sample(articles[:-1], 20)])
    out["/products"] = page("Products", [(a, f"Product {a[3:-5]}") for a in rng.sample(articles[:-1], 15)])
    out["/privacy"] = page("Privacy", [])
    out["/about"] = page("About us", [(team_path, team_text)] + [(a, "Story") for a in rng.sample(articles[:-1], 5)])
    out[contact_path] = page(contact_text, [], f"Write to {emails[0]}.")
    out[team_path] = page(team_text, [(imprint_path, rng.choice(_IMPRINT))],
                          f'Our team: <a href="mailto:{emails[1]}">{emails[1]}</a>')
    out[imprint_path] = page("Article", [], f"Responsible for this site: {emails[2]}")
    # A tree of articles below the home page's, so every one is reachable; plus random links.
    plain = [a for a in articles if a != imprint_path]
    for i, path in enumerate(plain):
        children = plain[len(home_articles) + i * 4: len(home_articles) + i * 4 + 4]
        extra = rng.sample(plain, 6)
        out.setdefault(path, page("Article", [(c, f"Article {c[3:-5]}") for c in children + extra]))
    return ContactSite(out, set(emails), [contact_path, team_path, imprint_path])


def generate_contact_site(site: TestSite, seed: int, pages: int = 200) -> ContactSite:
    generated = contact_site(seed, pages)
    for path, html in generated.pages.items():
        site.add_page(path, html)
    return generated
