"""Bloom filters in front of the store's unique keys.

Each worker keeps one `SeenPages` per job: the page keys (`url_hash`) it
knows already have a row in the job's pages table, because it inserted
them, found them there, or claimed them. A link whose key the filter
holds costs no database round trip; every other link goes to the store,
whose insert-if-absent on (job_id, url_hash) is the exact answer. Links of
one page are de-duplicated with a set before they get here, and email
addresses never meet a filter: their unique key (job_id, email) is exact.

A Bloom filter answers "probably seen" falsely with a small probability,
and that would drop a URL silently. So the filter is sized to make the
expected number of URLs lost per job below 1e-9.

The arithmetic. At most n = max_pages + seeds keys ever enter the filter
(links past max_pages are not stored, so they are never added either).
pybloom-live's fixed `BloomFilter(capacity C, error_rate p)` uses
k = ceil(log2(1/p)) slices of s = ceil(C * ln(1/p) / (k * ln(2)^2)) bits,
one bit per slice per key, so after n keys a key that is not in it is
reported present with probability

    f(n) = (1 - (1 - 1/s)^n)^k  ~=  (1 - e^(-n/s))^k.

Every URL that could be lost is a distinct new URL looked up while at most
n keys are in the filter, and there are at most n of those, so the expected
loss per job is at most L = n * f(n). We take C = 4n and p = 1e-6 (k = 20):
then n/s = k * ln(2)^2 / (4 * ln(1/p)) = 0.174, f = 0.160^20 = 1.1e-16, and
L = n * 1.1e-16: 1.1e-13 for n = 1,000 and 1.1e-10 for n = 1,000,000 (the
largest max_pages), below 1e-9 in both. `bloom_for` checks L from the
filter's real s and k and halves p until it holds, so the bound is
computed, not assumed. Memory: 4n * 28.8 bits, 14 MB at n = 10^6,
14 KB at n = 1,000.

Cost, and the exact cache in front. pybloom-live hashes every key with two
salted SHA-512s for k = 20 slices: about 7 us per lookup of a present key,
which at ~20 links a page was ~30 % of a page's CPU in the benchmark
(bench/crawl.py --profile). Most links of a site are its navigation,
repeated on every page, so `SeenPages` keeps the keys it met recently in
two plain sets (a generational LRU: when the young set fills, it becomes
the old one and the old one is dropped) and asks the Bloom filter only
about keys not in them. A set answers in ~0.05 us and never errs, so the
loss arithmetic above is unchanged; it holds at most 2 × HOT_KEYS keys
(~3.5 MB at ~110 bytes a key), whatever the job's size. HOT_KEYS was 65,536:
then the sets alone made a worker's RSS grow by ~11 MB from a 20,000- to a
200,000-page job (measured, bench/crawl.py on 8 hosts); navigation links
repeat within a site's last few thousand pages, so a smaller set still
catches them.

Should more than n keys arrive anyway (they cannot, but a filter past its
capacity has no guarantee), the filter stops answering and every link goes
to the database: slower, never lossy.
"""

from __future__ import annotations

import math
from typing import Iterable

from pybloom_live import BloomFilter

MAX_EXPECTED_LOSS = 1e-9
CAPACITY_FACTOR = 4
FIRST_ERROR_RATE = 1e-6
MIN_CAPACITY = 4096
HOT_KEYS = 16_384


def false_positive_rate(bits_per_slice: int, slices: int, keys: int) -> float:
    """Probability that a key never added is reported present after `keys` adds."""
    return (1.0 - (1.0 - 1.0 / bits_per_slice) ** keys) ** slices


def expected_loss(bloom: BloomFilter, keys: int) -> float:
    """Upper bound on URLs lost when up to `keys` keys enter `bloom` (see module docstring)."""
    return keys * false_positive_rate(bloom.bits_per_slice, bloom.num_slices, keys)


def bloom_for(max_keys: int, max_loss: float = MAX_EXPECTED_LOSS) -> BloomFilter:
    """A fixed-size filter for `max_keys` keys whose expected loss is below `max_loss`."""
    keys = max(1, max_keys)
    capacity = max(MIN_CAPACITY, CAPACITY_FACTOR * keys)
    error_rate = FIRST_ERROR_RATE
    while True:
        bloom = BloomFilter(capacity=capacity, error_rate=error_rate)
        if expected_loss(bloom, keys) < max_loss:
            return bloom
        error_rate /= 2


class SeenPages:
    """Page keys one worker knows are stored for one job."""

    def __init__(self, max_keys: int):
        self.max_keys = max(1, max_keys)
        self._bloom = bloom_for(self.max_keys)
        self.loss_bound = expected_loss(self._bloom, self.max_keys)
        self.exhausted = False
        # Recently met keys, exact: the young set and the generation before it.
        self._young: set[str] = set()
        self._old: set[str] = set()

    def __contains__(self, key: str) -> bool:
        if key in self._young or key in self._old:
            return True
        if self.exhausted or key not in self._bloom:
            return False
        self._touch(key)
        return True

    def unseen(self, keys: Iterable[str]) -> list[str]:
        """The keys not (probably) stored yet: the ones worth asking the database about."""
        return [k for k in keys if k not in self]

    def remember(self, keys: Iterable[str]) -> None:
        """Record keys now certainly in the pages table."""
        bloom = self._bloom
        for key in keys:
            if key in self._young or key in self._old:
                continue  # met before: already in the filter
            self._touch(key)
            if self.exhausted:
                continue
            if bloom.count >= self.max_keys:
                # More keys than the arithmetic allows for: stop trusting the filter.
                self.exhausted = True
                continue
            bloom.add(key)

    def _touch(self, key: str) -> None:
        young = self._young
        young.add(key)
        if len(young) >= HOT_KEYS:
            self._old, self._young = young, set()

    def __len__(self) -> int:
        return self._bloom.count

    @property
    def memory_bytes(self) -> int:
        return math.ceil(self._bloom.num_bits / 8)
