"""The one SQL layer: SQLite (embedded default) and MySQL/MariaDB through pymysql.

Layout: `dialect` holds every difference between the two databases,
`database` pooled connections, transactions and retries, `schema` the
versioned migrations; the other modules are the queries, grouped by table.
Nothing outside this package writes SQL.
"""

from trawl.store.database import Database, Session
from trawl.store.schema import migrate


def open_database(url: str, migrate_now: bool = False) -> Database:
    db = Database(url)
    if migrate_now:
        migrate(db)
    return db


__all__ = ["Database", "Session", "migrate", "open_database"]
