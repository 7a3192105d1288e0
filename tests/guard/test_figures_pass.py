"""The guard loop's figures pass: `status.guard` written where it is stale, within a time limit."""

from __future__ import annotations

import asyncio
import datetime
import math
import time

import psycopg
import pytest

from selfheal.controller import guard_loop
from selfheal.controller.config import OperatorConfig
from selfheal.controller.state import OperatorState
from selfheal.controller.views import view_of
from selfheal.core.guard.evaluate import Counts
from selfheal.core.guard.figures import guard_status, staleness
from selfheal.registry import guard_store
from selfheal.services import kube
from tests.guard import registry_rows
from tests.guard.registry_rows import connect
from tests.support import own_world_fixtures

# A control plane of this module's own: the session's operator watches every namespace of the
# shared one and writes its own first figures into the objects this test creates.
devenv, admin_database_url, kube_client, custom_api = own_world_fixtures("selfheal-figures-devenv-")


SHOWN = {"state": "Healthy", "applications24h": 1000, "successPercent": 90.0, "rollbackPercent": 5.0}


def figures(**changes) -> dict:
    return {**SHOWN, **changes}


@pytest.mark.parametrize(
    ("shown", "stale"),
    [
        (None, math.inf),  # nothing shown yet
        (figures(state="Inconclusive"), math.inf),  # a new state, whatever the counts
        (figures(applications24h=0, successPercent=None, rollbackPercent=None), math.inf),  # figures appear
        (figures(applications24h=995), 0.0),  # 0.5 % off: not worth a write
        (figures(applications24h=980), 2.0),  # 2 % off
        (figures(successPercent=89.7), 0.0),  # 0.3 point off
        (figures(rollbackPercent=6.0), 2.0),  # a whole point off
        ({**SHOWN, "switchedOffFor": ["dev-1"]}, math.inf),  # any other field: exactly
    ],
)
def test_staleness_of_what_status_shows(shown, stale):
    assert staleness(shown, figures()) == pytest.approx(stale)


def test_staleness_matches_the_figures_the_pass_computes():
    day = Counts(total=1000, failures=100, rollbacks=50)
    assert staleness(SHOWN, guard_status(state="Healthy", day=day)) == 0.0
    assert staleness(SHOWN, guard_status(state="Healthy", day=Counts(0, 0, 0))) == math.inf


def _patch_with_traffic(url: str, namespace: str, name: str, *, applications: int) -> str:
    patch_id = registry_rows.new_patch(url, prefix="fig", description="figures pass")
    with connect(url) as conn:
        conn.execute(
            "UPDATE sdk_self_healing_registry SET source_namespace = %s, source_name = %s WHERE id = %s",
            (namespace, name, patch_id),
        )
        conn.execute(  # through the rollup trigger, as every writer: 10 % failures, half of them rolled back
            """INSERT INTO sdk_patch_applications (patch_id, developer_id, sdk_language, success, rollback_triggered)
               SELECT %s, 'dev-1', 'node', i %% 10 <> 0, i %% 20 = 0 FROM generate_series(1, %s) AS i""",
            (patch_id, applications),
        )
    return patch_id


def _figures_pass(url: str, api, namespace: str, names: list[str]) -> int:
    """One figures pass of a real GuardLoop over these objects (kopf's index as the bench builds
    it: the objects as the API server lists them); the writes it left for the next pass."""
    views = {}
    for name in names:
        o = api.get_namespaced_custom_object("selfheal.molam.io", "v1alpha1", namespace, "selfhealpatches", name)
        views[(namespace, name)] = view_of(spec=o["spec"], meta=o["metadata"], status=o.get("status") or {})

    async def go() -> int:
        state = OperatorState.create(OperatorConfig(database_url=url))
        for key, view in views.items():
            state.views.see(key, view)
        await state.pool.open()
        try:
            loop = guard_loop.GuardLoop(state=state)
            await loop._figures(now=time.time())
            return loop.figures_deferred
        finally:
            await state.pool.close()

    return asyncio.run(go())


def test_figures_pass_writes_only_stale_status_and_stops_at_its_time_limit(
    fresh_database, kube_client, patches, namespace, monkeypatch
):
    monkeypatch.setattr(kube, "api_client", lambda: kube_client)
    # Without a verdict yet the state is Inconclusive; each has 1,000 applications, 90 % success, 5 % rolled back.
    shown = {"state": "Inconclusive", "applications24h": 1000, "successPercent": 90.0, "rollbackPercent": 5.0}
    statuses = {
        "close": {**shown, "applications24h": 996},  # 0.4 % off: left as it is
        "behind": {**shown, "applications24h": 900},  # 10 % off
        "blank": None,  # never written
    }
    for name, guard in statuses.items():
        patch_id = _patch_with_traffic(fresh_database, namespace, name, applications=1000)
        patches.create(name)
        status = {"registryId": patch_id, **({"guard": guard} if guard else {})}
        patches.patch_status(name, status)

    # Time enough for every write (the limit is what the second pass tests, not this machine's speed).
    monkeypatch.setattr(guard_loop, "FIGURES_WRITE_SECONDS", 120.0)
    assert _figures_pass(fresh_database, patches.api, namespace, list(statuses)) == 0
    assert patches.get("close")["status"]["guard"]["applications24h"] == 996
    assert patches.get("behind")["status"]["guard"] == shown
    assert patches.get("blank")["status"]["guard"] == shown

    # No time left: nothing written, every stale object counted for the next pass.
    patches.patch_status("behind", {"guard": statuses["behind"]})
    patches.patch_status("blank", {"guard": None})
    monkeypatch.setattr(guard_loop, "FIGURES_WRITE_SECONDS", 0.0)
    assert _figures_pass(fresh_database, patches.api, namespace, list(statuses)) == 2
    assert patches.get("behind")["status"]["guard"]["applications24h"] == 900
    assert "guard" not in patches.get("blank")["status"]


def _applications(url: str, patch_id: str, *, at: datetime.datetime, count: int) -> None:
    with connect(url) as conn:  # through the rollup trigger
        conn.execute(
            """INSERT INTO sdk_patch_applications (patch_id, developer_id, sdk_language, success, rollback_triggered,
                                                   applied_at)
               SELECT %s, 'dev-1', 'node', i %% 2 = 0, i %% 4 = 0, %s FROM generate_series(1, %s) AS i""",
            (patch_id, at, count),
        )


def test_day_figures_equal_figures_24h_and_read_settled_hours_once_an_hour(fresh_database):
    url = fresh_database
    patch_id = registry_rows.new_patch(url, prefix="day", description="24 h figures")
    hour = datetime.datetime.now(datetime.UTC).replace(minute=0, second=0, microsecond=0)
    now = hour + datetime.timedelta(minutes=30)
    _applications(url, patch_id, at=now - datetime.timedelta(hours=20), count=10)  # settled
    _applications(url, patch_id, at=now - datetime.timedelta(hours=1), count=5)  # the previous hour
    _applications(url, patch_id, at=now - datetime.timedelta(minutes=5), count=3)  # the current hour

    async def both(day: guard_store.DayFigures, at: datetime.datetime):
        async with await psycopg.AsyncConnection.connect(url) as conn:
            return (await day.read(conn, now=at)).get(patch_id), (await guard_store.figures_24h(conn, now=at)).get(
                patch_id
            )

    day = guard_store.DayFigures()
    cached, exact = asyncio.run(both(day, now))
    assert cached == exact and cached.total == 18
    # The previous and the current hour are read on every call.
    _applications(url, patch_id, at=now - datetime.timedelta(hours=1), count=4)
    _applications(url, patch_id, at=now - datetime.timedelta(minutes=1), count=1)
    cached, exact = asyncio.run(both(day, now + datetime.timedelta(minutes=1)))
    assert cached == exact and cached.total == 23
    # A row written by SQL 10 hours back counts from the next hour on.
    _applications(url, patch_id, at=now - datetime.timedelta(hours=10), count=7)
    cached, exact = asyncio.run(both(day, now + datetime.timedelta(minutes=2)))
    assert (cached.total, exact.total) == (23, 30)
    cached, exact = asyncio.run(both(day, now + datetime.timedelta(hours=1)))
    assert cached == exact and cached.total == 30
