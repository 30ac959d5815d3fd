"""The schema and its versioned migrations.

Migrations are an append-only list: each entry is applied once, in order,
inside its own transaction where the database allows it, and recorded in
`schema_migrations`. DDL is written once with a few dialect tokens ({pk},
{text}, {bigtext}, {table_opts}). Times are stored as epoch seconds (DOUBLE)
so both databases compare and index them the same way.
"""

from __future__ import annotations

import time

from trawl.store.database import Database, Session

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "jobs, pages, emails, workers", [
        """CREATE TABLE jobs (
            id VARCHAR(32) NOT NULL PRIMARY KEY,
            name VARCHAR(200) NOT NULL DEFAULT '',
            options {text} NOT NULL,
            seeds {bigtext} NOT NULL,
            seeded INTEGER NOT NULL DEFAULT 0,
            status VARCHAR(16) NOT NULL,
            version BIGINT NOT NULL DEFAULT 1,
            pages_discovered BIGINT NOT NULL DEFAULT 0,
            pages_done BIGINT NOT NULL DEFAULT 0,
            pages_failed BIGINT NOT NULL DEFAULT 0,
            pages_skipped BIGINT NOT NULL DEFAULT 0,
            pages_in_flight BIGINT NOT NULL DEFAULT 0,
            emails BIGINT NOT NULL DEFAULT 0,
            bytes BIGINT NOT NULL DEFAULT 0,
            error {text} NULL,
            created_at DOUBLE NOT NULL,
            started_at DOUBLE NULL,
            updated_at DOUBLE NOT NULL,
            finished_at DOUBLE NULL
        ){table_opts}""",
        "CREATE INDEX idx_jobs_status ON jobs (status, id)",
        """CREATE TABLE pages (
            id {pk},
            job_id VARCHAR(32) NOT NULL,
            url {text} NOT NULL,
            url_hash CHAR(32) NOT NULL,
            host VARCHAR(255) NOT NULL,
            -- Registered domain of the seed this page descends from: the
            -- same_domain scope of its links (and of its redirect target).
            site VARCHAR(255) NOT NULL DEFAULT '',
            depth INTEGER NOT NULL,
            state VARCHAR(10) NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            not_before DOUBLE NOT NULL DEFAULT 0,
            lease_owner VARCHAR(40) NULL,
            lease_token VARCHAR(32) NULL,
            lease_until DOUBLE NULL,
            http_status INTEGER NULL,
            bytes BIGINT NOT NULL DEFAULT 0,
            error VARCHAR(500) NULL,
            fetched_at DOUBLE NULL,
            UNIQUE (job_id, url_hash)
        ){table_opts}""",
        # The claim: WHERE job_id = ? AND state = 'pending' [AND host IN ...] ORDER BY id.
        "CREATE INDEX idx_pages_claim ON pages (job_id, state, host, id)",
        "CREATE INDEX idx_pages_state ON pages (job_id, state, id)",
        # The lease sweep: WHERE state = 'leased' AND lease_until < now.
        "CREATE INDEX idx_pages_lease ON pages (state, lease_until)",
        "CREATE INDEX idx_pages_fetched ON pages (fetched_at)",
        """CREATE TABLE emails (
            id {pk},
            job_id VARCHAR(32) NOT NULL,
            email VARCHAR(320) NOT NULL,
            domain VARCHAR(255) NOT NULL,
            first_url {text} NOT NULL,
            pages INTEGER NOT NULL DEFAULT 1,
            sources VARCHAR(255) NOT NULL DEFAULT '',
            created_at DOUBLE NOT NULL,
            UNIQUE (job_id, email)
        ){table_opts}""",
        """CREATE TABLE workers (
            id VARCHAR(40) NOT NULL PRIMARY KEY,
            role VARCHAR(16) NOT NULL DEFAULT 'worker',
            host VARCHAR(255) NOT NULL,
            pid INTEGER NOT NULL,
            job_id VARCHAR(32) NULL,
            state VARCHAR(16) NOT NULL DEFAULT 'running',
            pages BIGINT NOT NULL DEFAULT 0,
            rss_bytes BIGINT NOT NULL DEFAULT 0,
            started_at DOUBLE NOT NULL,
            heartbeat_at DOUBLE NOT NULL
        ){table_opts}""",
        "CREATE INDEX idx_workers_heartbeat ON workers (heartbeat_at)",
    ]),
    # One row per (job, site): the per-site results, kept current by the
    # same batch commits that move the job's counters (trawl/store/sites.py).
    (2, "sites, emails.site", [
        """CREATE TABLE sites (
            job_id VARCHAR(32) NOT NULL,
            site VARCHAR(255) NOT NULL,
            seed {text} NOT NULL,
            state VARCHAR(12) NOT NULL DEFAULT 'pending',
            pages_discovered BIGINT NOT NULL DEFAULT 0,
            pages_claimed BIGINT NOT NULL DEFAULT 0,
            pages_done BIGINT NOT NULL DEFAULT 0,
            pages_failed BIGINT NOT NULL DEFAULT 0,
            pages_skipped BIGINT NOT NULL DEFAULT 0,
            -- Ended pages the site's server answered (done, a 4xx, a non-HTML
            -- body) and pages robots.txt refused: what tells done, blocked
            -- and unreachable apart once every page has ended.
            pages_reached BIGINT NOT NULL DEFAULT 0,
            pages_blocked BIGINT NOT NULL DEFAULT 0,
            emails BIGINT NOT NULL DEFAULT 0,
            own_emails BIGINT NOT NULL DEFAULT 0,
            error VARCHAR(500) NULL,
            PRIMARY KEY (job_id, site)
        ){table_opts}""",
        "CREATE INDEX idx_sites_state ON sites (job_id, state, site)",
        "CREATE INDEX idx_sites_emails ON sites (job_id, emails, site)",
        "ALTER TABLE emails ADD COLUMN site VARCHAR(255) NOT NULL DEFAULT ''",
        "CREATE INDEX idx_emails_site ON emails (job_id, site, email)",
        # Jobs crawled before this version get their sites from their pages
        # (counts and a coarse state; their addresses keep site '').
        """INSERT INTO sites (job_id, site, seed, state, pages_discovered, pages_done,
                              pages_failed, pages_skipped, pages_reached)
           SELECT job_id, site, COALESCE(MIN(CASE WHEN depth = 0 THEN url END), MIN(url)),
                  CASE WHEN SUM(CASE WHEN state IN ('pending', 'leased') THEN 1 ELSE 0 END) > 0
                       THEN 'crawling'
                       WHEN SUM(CASE WHEN state = 'done' THEN 1 ELSE 0 END) > 0 THEN 'done'
                       ELSE 'unreachable' END,
                  COUNT(*), SUM(CASE WHEN state = 'done' THEN 1 ELSE 0 END),
                  SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END),
                  SUM(CASE WHEN state = 'skipped' THEN 1 ELSE 0 END),
                  SUM(CASE WHEN state = 'done' THEN 1 ELSE 0 END)
           FROM pages GROUP BY job_id, site""",
    ]),
    # Completion webhooks: one delivery row per job with a notify_url,
    # written when the job ends and worked off by trawl/notify.py.
    (3, "notify deliveries", [
        """CREATE TABLE deliveries (
            job_id VARCHAR(32) NOT NULL PRIMARY KEY,
            url {text} NOT NULL,
            state VARCHAR(12) NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at DOUBLE NOT NULL,
            created_at DOUBLE NOT NULL,
            delivered_at DOUBLE NULL,
            last_error VARCHAR(500) NULL,
            lease_owner VARCHAR(40) NULL,
            lease_until DOUBLE NULL
        ){table_opts}""",
        "CREATE INDEX idx_deliveries_due ON deliveries (state, next_at)",
    ]),
    # Contact pages first: claims order a job's pending pages by priority
    # (trawl/priority.py), then id; the indexes serve both claim queries
    # (with and without a host list). The per-site page budget counts in
    # sites.pages_claimed (migration 2).
    (4, "pages.priority, sites.note", [
        "ALTER TABLE pages ADD COLUMN priority INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX idx_pages_claim_priority ON pages (job_id, state, host, priority, id)",
        "CREATE INDEX idx_pages_priority ON pages (job_id, state, priority, id)",
        # Why a done site stopped early: "site page budget reached" (trawl/store/budget.py).
        "ALTER TABLE sites ADD COLUMN note VARCHAR(200) NULL",
    ]),
]

LATEST_VERSION = MIGRATIONS[-1][0]


def _render(ddl: str, db: Database) -> str:
    return ddl.format(**db.dialect.ddl)


def _ensure_migrations_table(s: Session) -> None:
    s.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER NOT NULL PRIMARY KEY, name VARCHAR(200) NOT NULL,"
        " applied_at DOUBLE NOT NULL)"
    )


def current_version(db: Database) -> int:
    with db.read() as s:
        _ensure_migrations_table(s)
        return int(s.scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations") or 0)


def migrate(db: Database) -> list[int]:
    """Apply every migration not yet recorded; returns the versions applied.

    Safe from several processes at once: migrators are serialised (SQLite by
    its write lock, MySQL by a named lock, see `Dialect.migration_lock`) and
    re-read the recorded version once they hold it. The version row is
    written after the DDL, so a migration that fails half-way on MySQL
    (where DDL commits implicitly) is not recorded as applied.
    """
    applied = []
    with db.read() as lock_session, db.dialect.migration_lock(lock_session):
        for version, name, statements in MIGRATIONS:
            with db.transaction() as s:
                _ensure_migrations_table(s)
                if s.scalar("SELECT COUNT(*) FROM schema_migrations WHERE version = ?", (version,)):
                    continue
                for ddl in statements:
                    s.execute(_render(ddl, db))
                s.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, time.time()),
                )
            applied.append(version)
    return applied
