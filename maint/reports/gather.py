"""What a run's report shows, read from the store: the run, the tickets it touched, the trend, its seal."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from maint.store import Store

TREND_RUNS = 30


def report_document(store: Store, run_id: str) -> dict[str, Any]:
    """The report of one run: the run document of ``maint runs show --format json`` plus ``tickets``
    (each ticket action the run took), ``trend`` (status counts of the latest ``TREND_RUNS`` runs of
    the same playbooks, oldest first, up to and including this one) and ``ledger`` (the run's seal, or
    None).

    ``run_id`` may be a unique prefix. Raises BadInput when no run or several runs match.
    """
    return store.report_document(run_id, TREND_RUNS)
