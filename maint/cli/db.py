"""``maint db``: the store's schema revision, and its upgrade."""

from __future__ import annotations

import click

from maint.cli.options import db_option, echo_json, format_option


@click.group()
def db() -> None:
    """The store's schema: which revision it has, and upgrading it to this maint's.

    Every command that opens the store upgrades it first (a store of maint 0.1.0, which records no
    revision, counts as maint_0001); these commands show and do it on their own, e.g. before a
    scheduled run. A store upgraded by a newer maint is refused (exit 3): upgrade maint.
    """


@db.command("current")
@format_option
@db_option
def current(output_format: str, db_url: str | None) -> None:
    """Print the store's schema revision and this maint's newest (head); change nothing (not even create it)."""
    from maint.store import Store, StoreMissing, migrations

    try:
        store = Store(db_url, upgrade=False, create=False)
    except StoreMissing as missing:
        click.echo(f"maint: {missing}", err=True)
        return
    try:
        revision = store.schema_revision()
    finally:
        store.close()
    if output_format == "json":
        echo_json({"store": store.safe_url, "revision": revision, "head": migrations.HEAD,
                   "at_head": revision == migrations.HEAD})  # fmt: skip
        return
    click.echo(f"store     {store.safe_url}")
    click.echo(f"revision  {_described(revision)}")
    click.echo(f"head      {_described(migrations.HEAD)}")
    if revision != migrations.HEAD:
        click.echo("'maint db upgrade' (or any command that opens the store) upgrades it")


@db.command("upgrade")
@format_option
@db_option
def upgrade(output_format: str, db_url: str | None) -> None:
    """Upgrade the store's schema to this maint's newest revision (a new store is created at it).

    Safe to run while other maint commands use the store: the upgrade is one transaction under the
    store's schema lock, and it runs once however many processes open an old store at the same time.
    """
    from maint.store import Store, migrations

    store = Store(db_url)
    store.close()
    done = store.upgraded
    if output_format == "json":
        echo_json({"store": store.safe_url, "before": done.before if done else migrations.HEAD,
                   "after": migrations.HEAD, "upgraded": done is not None})  # fmt: skip
    elif done is None:
        click.echo(f"store {store.safe_url} is at revision {migrations.HEAD} already (the newest)")
    elif done.before is None:
        click.echo(f"created store {store.safe_url} at revision {done.after}")
    else:
        click.echo(f"upgraded store {store.safe_url} from revision {_described(done.before)} to {done.after}")


def _described(revision: str | None) -> str:
    from maint.store import migrations

    if revision is None:
        return "none (a new store: no tables yet)"
    return f"{revision} ({migrations.summary(revision)})"
