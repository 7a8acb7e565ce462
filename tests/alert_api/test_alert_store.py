"""The alert store: idempotent ingestion and the current-alert queries, on SQLite and in memory."""

from __future__ import annotations

import datetime as dt
import doctest
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import alert_api.store
from alert_api.store import AlertQuery, AlertStore, InMemoryAlertStore, SqlAlertStore
from suibou.contracts import AlertEvent, AlertLevel, AreaKind, Hazard, MsgType

MakeAlert = Callable[..., AlertEvent]

T0 = dt.datetime(2005, 9, 4, 12, 0, tzinfo=dt.timezone.utc)
RECEIVED = dt.datetime(2005, 9, 4, 12, 0, 5, tzinfo=dt.timezone.utc)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AlertStore]:
    if request.param == "memory":
        yield InMemoryAlertStore(clock=lambda: RECEIVED)
        return
    sql = SqlAlertStore(f"sqlite:///{tmp_path / 'db' / 'alerts.db'}", clock=lambda: RECEIVED)
    yield sql
    sql.close()


def ids(alerts: list[alert_api.store.Alert]) -> list[str]:
    return [alert.alert_id for alert in alerts]


def test_docstring_examples_run() -> None:
    assert doctest.testmod(alert_api.store).failed == 0


def test_add_is_idempotent_on_event_id(store: AlertStore, make_alert: MakeAlert) -> None:
    event = make_alert()
    assert store.add(event) is True
    assert store.add(event) is False
    assert store.counts() == alert_api.store.StoreCounts(alerts=1, active=1, messages=1)


def test_message_round_trips_every_field(store: AlertStore, make_alert: MakeAlert) -> None:
    event = make_alert(
        previous_level=AlertLevel.CAUTION,
        area_kind=AreaKind.ZONE,
        hazard=Hazard.LANDSLIDE,
        references=("x.0", "x.1"),
        reason={"probability": 0.81, "drivers": ["rain_60min_mm"], "note": "警戒"},
        event_time=T0 + dt.timedelta(microseconds=250),
    )
    store.add(event)
    alert = store.get_alert(event.alert_id)
    assert alert is not None
    assert alert.messages[0].event == event
    assert alert.messages[0].received_at == RECEIVED
    assert alert.latest.event == event


def test_latest_message_is_current_state_and_onset_is_first(store: AlertStore, make_alert: MakeAlert) -> None:
    store.add(make_alert(sequence=1, minutes=30, msg_type=MsgType.UPDATE, level=AlertLevel.DANGER))
    store.add(make_alert(sequence=0, minutes=0))
    [alert] = store.list_alerts(AlertQuery())
    assert alert.latest.event.sequence == 1
    assert alert.latest.event.level is AlertLevel.DANGER
    assert alert.onset == T0


def test_history_is_ordered_by_sequence(store: AlertStore, make_alert: MakeAlert) -> None:
    for sequence in (2, 0, 1):
        store.add(make_alert(sequence=sequence, minutes=10 * sequence))
    alert = store.get_alert("A-ZENPUKUJI-1")
    assert alert is not None
    assert [m.event.sequence for m in alert.messages] == [0, 1, 2]


def test_unknown_alert_is_none(store: AlertStore) -> None:
    assert store.get_alert("nope") is None


def test_cancelled_alerts_are_hidden_unless_asked_for(store: AlertStore, make_alert: MakeAlert) -> None:
    store.add(make_alert("A", 0))
    store.add(make_alert("A", 1, minutes=5, msg_type=MsgType.CANCEL, level=AlertLevel.NONE))
    store.add(make_alert("B", 0))
    assert ids(store.list_alerts(AlertQuery())) == ["B"]
    assert sorted(ids(store.list_alerts(AlertQuery(include_cancelled=True)))) == ["A", "B"]
    assert store.counts() == alert_api.store.StoreCounts(alerts=2, active=1, messages=3)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (AlertQuery(exercise=True), ["DRILL"]),
        (AlertQuery(exercise=False), ["REAL-SLOPE", "REAL-RIVER"]),
        (AlertQuery(area_id="Z-TAKAO-7"), ["REAL-SLOPE"]),
        (AlertQuery(hazard=Hazard.LANDSLIDE), ["REAL-SLOPE"]),
        (AlertQuery(min_level=AlertLevel.DANGER), ["REAL-SLOPE", "REAL-RIVER"]),
        (AlertQuery(since=T0 + dt.timedelta(minutes=20)), ["REAL-SLOPE", "REAL-RIVER"]),
        (AlertQuery(since=T0 + dt.timedelta(minutes=40)), ["REAL-SLOPE"]),
        (AlertQuery(limit=2), ["REAL-SLOPE", "REAL-RIVER"]),
        (AlertQuery(exercise=False, min_level=AlertLevel.FLOODING), []),
    ],
)
def test_filters_apply_to_the_latest_message(
    store: AlertStore, make_alert: MakeAlert, query: AlertQuery, expected: list[str]
) -> None:
    store.add(make_alert("DRILL", 0, minutes=0, level=AlertLevel.WARNING))
    # Raised at level 3 at minute 10, updated to level 4 at minute 30.
    store.add(make_alert("REAL-RIVER", 0, minutes=10, exercise=False, drill_id=None))
    store.add(make_alert("REAL-RIVER", 1, minutes=30, exercise=False, drill_id=None,
                         msg_type=MsgType.UPDATE, level=AlertLevel.DANGER))
    store.add(make_alert("REAL-SLOPE", 0, minutes=45, exercise=False, drill_id=None, level=AlertLevel.DANGER,
                         area_id="Z-TAKAO-7", area_kind=AreaKind.ZONE, hazard=Hazard.LANDSLIDE))
    assert ids(store.list_alerts(query)) == expected


def test_ties_in_time_are_listed_by_alert_id(store: AlertStore, make_alert: MakeAlert) -> None:
    for alert_id in ("C", "A", "B"):
        store.add(make_alert(alert_id))
    assert ids(store.list_alerts(AlertQuery())) == ["A", "B", "C"]


def test_sqlite_store_persists_across_instances(tmp_path: Path, make_alert: MakeAlert) -> None:
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    first = SqlAlertStore(url)
    first.add(make_alert())
    first.close()
    second = SqlAlertStore(url)
    assert second.add(make_alert()) is False
    assert ids(second.list_alerts(AlertQuery())) == ["A-ZENPUKUJI-1"]
    second.close()


def test_in_memory_sqlite_url_is_shared_between_threads(make_alert: MakeAlert) -> None:
    store = SqlAlertStore("sqlite://")
    writer = threading.Thread(target=store.add, args=(make_alert(),))
    writer.start()
    writer.join()
    assert store.counts().messages == 1


@pytest.mark.parametrize("limit", [0, 1001])
def test_query_rejects_out_of_range_limit(limit: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        AlertQuery(limit=limit)


def test_query_rejects_naive_since() -> None:
    with pytest.raises(ValueError, match="offset"):
        AlertQuery(since=dt.datetime(2005, 9, 4))


def test_only_sqlite_and_postgresql_are_supported() -> None:
    assert alert_api.store._insert_ignoring_duplicates("postgresql") is not None
    with pytest.raises(ValueError, match="SQLite and PostgreSQL"):
        alert_api.store._insert_ignoring_duplicates("mysql")
