"""The store's schema revisions, applied with Alembic's operations (no alembic.ini, no env.py).

Each revision is a module here with ``revision``, ``down_revision``, ``summary`` and ``upgrade(op)``;
:func:`revisions` lists them oldest first. The store records its revision in Alembic's version table
(``alembic_version``, one row). A store without that table holds maint 0.1.0's schema (revision
maint_0001, which creates only the tables a store lacks) or no tables at all (a new store): either is
upgraded through every revision.

Opening a store (:class:`maint.store.Store`) reads its revision in one query (:func:`current`) and, when
it is not :data:`HEAD`, upgrades it (:func:`upgrade`) in one transaction that holds the schema lock: the
write lock for SQLite (``BEGIN IMMEDIATE``), an advisory lock on PostgreSQL. A second process opening
the store at the same moment waits for it and then finds the store at head. A revision this maint does
not know was written by a newer maint: :func:`check_known` refuses it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from maint import __version__
from maint.errors import BadInput
from maint.store.ledger_writer import ensure_head
from maint.store.schema import SCHEMA_LOCK

if TYPE_CHECKING:
    from alembic.operations import Operations

VERSION_TABLE = "alembic_version"


@dataclass(frozen=True)
class Revision:
    """One schema revision: its id, what it changes, and the function that applies it."""

    id: str
    down: str | None
    summary: str
    upgrade: Callable[[Operations], None]


# The ids of :func:`revisions`, oldest first, known without importing them (a store at head never needs
# their modules).
IDS = ("maint_0001", "maint_0002", "maint_0003")
FIRST, HEAD = IDS[0], IDS[-1]


def revisions() -> tuple[Revision, ...]:
    """Every revision, oldest first."""
    from maint.store.migrations import v0001_release_0_1_0, v0002_result_skip_kind_task, v0003_result_command

    return tuple(
        Revision(module.revision, module.down_revision, module.summary, module.upgrade)
        for module in (v0001_release_0_1_0, v0002_result_skip_kind_task, v0003_result_command)
    )


def summary(revision: str) -> str:
    """What ``revision`` (one of :data:`IDS`) changed, in a few words."""
    return next(known.summary for known in revisions() if known.id == revision)


# Alembic's own version table, as Alembic creates it.
version = sa.Table(
    VERSION_TABLE,
    sa.MetaData(),
    sa.Column("version_num", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


@dataclass(frozen=True)
class Upgrade:
    """What :func:`upgrade` did: the revision the store had (None: a new store, no tables) and the one it
    has now; ``recorded`` is False when the store had no version table (maint 0.1.0 wrote it)."""

    before: str | None
    after: str
    recorded: bool = True


def current(engine: Engine) -> str | None:
    """The revision the store records, in one query; None when it records none (no version table: a new
    store or one of maint 0.1.0). Errors that mean the store cannot be used now propagate."""
    try:
        with engine.connect() as connection:
            found = connection.execute(sa.select(version.c.version_num)).scalars().all()
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):  # no such table (PostgreSQL: undefined table)
        return None
    return str(found[0]) if len(found) == 1 else None


def stored(connection: sa.Connection) -> str | None:
    """The revision the store records, read inside the caller's transaction; None when it records none."""
    if not sa.inspect(connection).has_table(VERSION_TABLE):
        return None
    found = connection.execute(sa.select(version.c.version_num)).scalars().all()
    return str(found[0]) if len(found) == 1 else None


def check_known(revision: str | None, shown: str) -> None:
    """BadInput when ``revision`` is none of this maint's: a newer maint upgraded the store ``shown``."""
    if revision is not None and revision not in IDS:
        raise BadInput(
            f"store {shown} has schema revision {revision}, which maint {__version__} does not know "
            f"(its newest is {HEAD}): a newer maint upgraded it",
            hint="upgrade maint to use this store",
        )


def upgrade(engine: Engine, shown: str) -> Upgrade | None:
    """Bring the store ``shown`` to :data:`HEAD` under the schema lock, in one transaction: the pending
    revisions, then the ledger's head and coverage (:func:`maint.store.ledger.ensure_head`), then the
    version. Returns what was done; None when the store was at head already (another process upgraded
    it while this one waited for the lock). Raises BadInput for a revision of a newer maint."""
    # Alembic is imported only here: a store at head does not pay for its import (about 0.1 s).
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    with schema_lock(engine) as connection:
        before = stored(connection)
        if before == HEAD:
            return None
        check_known(before, shown)
        has_tables = bool(set(sa.inspect(connection).get_table_names()) - {VERSION_TABLE})
        pending = revisions()[0 if before is None else IDS.index(before) + 1 :]
        operations = Operations(MigrationContext.configure(connection))
        for revision in pending:
            revision.upgrade(operations)
        ensure_head(connection)
        version.create(connection, checkfirst=True)
        connection.execute(version.delete())
        connection.execute(version.insert().values(version_num=HEAD))
    if before is None:
        return Upgrade(FIRST if has_tables else None, HEAD, recorded=False)
    return Upgrade(before, HEAD)


@contextlib.contextmanager
def schema_lock(engine: Engine) -> Iterator[sa.Connection]:
    """A connection in a transaction that no other process can change the schema in at the same time,
    committed when the block ends (rolled back on an exception).

    SQLite: ``BEGIN IMMEDIATE`` takes the write lock at once (pysqlite would begin only at the first
    write, and DDL would commit on its own). PostgreSQL (transactional DDL): an advisory lock held until
    the transaction ends. Elsewhere: a plain transaction.
    """
    if engine.dialect.name != "sqlite":
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(sa.select(sa.func.pg_advisory_xact_lock(SCHEMA_LOCK)))
            yield connection
        return
    with engine.connect() as plain:
        connection = plain.execution_options(isolation_level="AUTOCOMMIT")  # the transaction is ours
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            if getattr(connection.connection.dbapi_connection, "in_transaction", False):
                connection.exec_driver_sql("ROLLBACK")
            raise
        connection.exec_driver_sql("COMMIT")
