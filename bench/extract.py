"""Throughput of trawl.extract over a generated corpus, next to a plain baseline,
and precision, recall and MB/s per published form of the labelled corpus.

    .venv/bin/python bench/extract.py [--pages 2000] [--repeat 3] [--per-form 40] [--before DIR]

The corpus: ~2,000 pages of ~15 KB, each with ~20 links (absolute, root-relative,
relative, with dot segments and fragments) and 0-3 addresses in mixed forms
(plain, mailto, entities, [at]/[dot], Cloudflare, JS escapes, JSON-LD, itemprop),
plus the usual noise: CSS @media, asset names like logo@2x.png, HTML entities,
inline scripts. The baseline is what a bare crawler does: one typical email
regex and one href regex over the whole page, with urljoin for the links.
Figures are CPU time (best of --repeat runs); nothing about time is asserted.
--before DIR (a checkout of an older Trawl, e.g. `git archive 7f13e6d | tar -x
-C DIR`) also times that tree's extract() on the same pages, in the same
process, rounds interleaved: on a busy machine only such side-by-side ratios
mean anything.

The per-form table uses tests/extract_corpus.py: --per-form pages for each
form (the form inside a typical page of ~15 KB of prose and markup, beside
nothing else), and as many pages of each trap; a trap's row counts the
addresses reported where none is published (precision is over all of them).
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from pathlib import Path
from urllib.parse import urljoin

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.extract_corpus import FORMS, form_sample, page  # noqa: E402
from tests.extract_traps import TRAPS  # noqa: E402
from trawl.extract import extract, extract_emails, extract_links  # noqa: E402

WORDS = (
    "the of and to in is for on that with as by at from our we you this are be it an or your "
    "team service product customer support quality delivery price order design project news "
    "office contact about company history market industry solution energy data cloud partner"
).split()


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 20))]
    if rng.random() < 0.2:
        words.insert(rng.randint(0, len(words)), rng.choice(["&mdash;", "&#8217;s", "&amp;", "&nbsp;"]))
    return " ".join(words).capitalize() + "."


def _cloudflare(address: str, key: int) -> str:
    return f"{key:02x}" + "".join(f"{byte ^ key:02x}" for byte in address.encode())


def _email_html(rng: random.Random, n: int) -> tuple[str, str]:
    user, domain = f"{rng.choice(['info', 'sales', 'jobs', 'press', 'anna.k'])}{n}", f"site{n % 97}.co.uk"
    address = f"{user}@{domain}"
    forms = [
        f"<p>Email {address} for details.</p>",
        f'<a href="mailto:{address}?subject=Hello">Write to us</a>',
        f"<p>{user}&#64;{domain.replace('.', '&#46;')}</p>",
        f"<p>{user} [at] {domain.replace('.', ' [dot] ')}</p>",
        f'<a href="/cdn-cgi/l/email-protection" data-cfemail="{_cloudflare(address, 0x42)}">'
        "[email&#160;protected]</a>",
        f'<script>var contact = "{user}\\u0040{domain}";</script>',
        f'<script type="application/ld+json">{{"@type":"Organization","email":"{address}"}}</script>',
        f'<span itemprop="email">{address}</span>',
    ]
    return rng.choice(forms), address


def _link(rng: random.Random, page: int) -> str:
    target = rng.randrange(20000)
    form = rng.randrange(6)
    href = [
        f"https://www.site{page % 50}.com/p/{target}.html",
        f"/p/{target}.html",
        f"{target}.html",
        f"../p/{target}.html#top",
        f"/search?q={rng.choice(WORDS)}&amp;page={target % 9}",
        f"https://cdn.other{target % 7}.net/a/{target}",
    ][form]
    return f'<a href="{href}" class="link">{rng.choice(WORDS)} {rng.choice(WORDS)}</a>'


def make_page(rng: random.Random, page: int, size: int = 15_000) -> tuple[str, set[str]]:
    """A page of about `size` characters and the addresses it publishes."""
    head = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Page</title>"
        "<link rel='icon' href='/img/logo@2x.png'>"
        "<style>@media (max-width: 600px) { .nav { display: none } }</style></head><body>"
    )
    parts = [head, "<nav>"] + [_link(rng, page) for _ in range(6)] + ["</nav><main>"]
    published = [_email_html(rng, page * 3 + i) for i in range(rng.choice([0, 0, 1, 1, 2, 3]))]
    emails = [html for html, _ in published]
    links = [_link(rng, page) for _ in range(14)]
    body = len("".join(parts))
    while body < size - 300:
        chunk = f"<p>{' '.join(_sentence(rng) for _ in range(3))}</p>"
        if links and rng.random() < 0.5:
            chunk += links.pop()
        if emails and rng.random() < 0.1:
            chunk += emails.pop()
        parts.append(chunk)
        body += len(chunk)
    parts += links + emails + ["</main><script>window.dataLayer = window.dataLayer || [];</script></body></html>"]
    return "".join(parts), {address for _, address in published}


EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
HREF_RE = re.compile(r"""href\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


def baseline(body: str, base_url: str) -> tuple[set, set]:
    links = {urljoin(base_url, href) for href in HREF_RE.findall(body)}
    return links, set(EMAIL_RE.findall(body))


def regexes_only(body: str, base_url: str) -> tuple[list, list]:
    return HREF_RE.findall(body), EMAIL_RE.findall(body)


def cpu_seconds(function, pages: list[tuple[str, str]], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        for body, url in pages:
            function(body, url)
        best = min(best, time.process_time() - started)
    return best


def _scores(results: list[set], truth: list[set]) -> tuple[int, int, int]:
    hits = sum(len(got & want) for got, want in zip(results, truth))
    return hits, sum(map(len, truth)) - hits, sum(len(got - want) for got, want in zip(results, truth))


def _ratio(numerator: int, denominator: int) -> str:
    return f"{numerator / denominator:.2f}" if denominator else "  - "


def per_form(count: int, repeat: int) -> None:
    """Precision, recall and MB/s of extract_emails() for each form and trap."""
    rng = random.Random(20261201)
    rows = [(name, [form_sample(name, rng, size=15_000) for _ in range(count)]) for name in FORMS]
    rows += [(f"trap:{name}", [(page(body, rng, size=15_000), set()) for _ in range(count)])
             for name, body in TRAPS.items()]
    print(f"\n{'form (page of ~15 KB)':28} {'kind':10} {'found':>6} {'missed':>6} {'false':>6} {'prec':>5} {'recall':>6} {'MB/s':>7}")
    totals = [0, 0, 0]
    for name, samples in rows:
        bodies = [(body, "") for body, _ in samples]
        results = [set(extract_emails(body)) for body, _ in bodies]
        hits, missed, wrong = _scores(results, [want for _, want in samples])
        totals = [totals[0] + hits, totals[1] + missed, totals[2] + wrong]
        megabytes = sum(len(body.encode()) for body, _ in bodies) / 1e6
        seconds = cpu_seconds(lambda body, url: extract_emails(body), bodies, repeat)
        kind = FORMS[name][0] if name in FORMS else "-"
        print(f"{name:28} {kind:10} {hits:6} {missed:6} {wrong:6} {_ratio(hits, hits + wrong):>5} "
              f"{_ratio(hits, hits + missed):>6} {megabytes / seconds:7.1f}")
    hits, missed, wrong = totals
    print(f"{'overall':28} {'':10} {hits:6} {missed:6} {wrong:6} {_ratio(hits, hits + wrong):>5} "
          f"{_ratio(hits, hits + missed):>6}")


def _older_extract(directory: str):
    """The extract module of an older checkout (trawl/extract.py or trawl/extract/)."""
    import importlib.util

    root = Path(directory) / "trawl" / "extract.py"
    if not root.exists():
        root = Path(directory) / "trawl" / "extract" / "__init__.py"
    spec = importlib.util.spec_from_file_location("trawl_extract_before", root)
    module = importlib.util.module_from_spec(spec)
    sys.modules["trawl_extract_before"] = module
    spec.loader.exec_module(module)
    return module


def side_by_side(directory: str, pages: list[tuple[str, str]], megabytes: float, repeat: int) -> None:
    before = _older_extract(directory)
    best: dict[str, float] = {}
    for _ in range(max(repeat, 5)):
        for name, module in (("before", before), ("after", sys.modules["trawl.extract"])):
            best[name] = min(best.get(name, float("inf")), cpu_seconds(module.extract, pages, 1))
    print(f"\nextract() side by side, {directory} vs this tree: before {megabytes / best['before']:.1f} MB/s, "
          f"after {megabytes / best['after']:.1f} MB/s, ratio {best['before'] / best['after']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--per-form", type=int, default=40, help="pages per form and per trap (0: skip)")
    parser.add_argument("--before", help="an older checkout to time side by side")
    args = parser.parse_args()
    rng = random.Random(20261123)
    generated = [make_page(rng, n) for n in range(args.pages)]
    pages = [(body, f"https://www.site{n % 50}.com/dir/page{n}.html") for n, (body, _) in enumerate(generated)]
    truth = [addresses for _, addresses in generated]
    megabytes = sum(len(body.encode()) for body, _ in pages) / 1e6
    found = [extract(body, url) for body, url in pages]
    print(f"corpus: {len(pages)} pages, {megabytes:.1f} MB, "
          f"{sum(len(c.links) for c in found) / len(pages):.1f} links/page, "
          f"{sum(map(len, truth))} published addresses")
    for name, results in (("trawl", [set(c.emails) for c in found]),
                          ("baseline regex", [baseline(body, url)[1] for body, url in pages])):
        hits = sum(len(got & want) for got, want in zip(results, truth))
        wrong = sum(len(got - want) for got, want in zip(results, truth))
        print(f"{name:>16}: {hits} found, {sum(map(len, truth)) - hits} missed, {wrong} false")
    rows = [
        ("trawl extract() (links + emails)", extract),
        ("  of which extract_links()", extract_links),
        ("  of which extract_emails()", lambda body, url: extract_emails(body)),
        ("baseline: 2 regexes + urljoin", baseline),
        ("baseline: 2 regexes only", regexes_only),
        ("  of which the email regex", lambda body, url: EMAIL_RE.findall(body)),
    ]
    print(f"{'':36} {'MB/s':>8} {'us/page':>9}")
    for name, function in rows:
        seconds = cpu_seconds(function, pages, args.repeat)
        print(f"{name:36} {megabytes / seconds:8.1f} {seconds / len(pages) * 1e6:9.1f}")
    if args.before:
        side_by_side(args.before, pages, megabytes, args.repeat)
    if args.per_form:
        per_form(args.per_form, args.repeat)


if __name__ == "__main__":
    main()
