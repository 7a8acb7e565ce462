"""The alert store: idempotent ingestion, the current-alert queries and the message log, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import doctest
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

import alert_api.db
import alert_api.store
from alert_api.store import AlertQuery, AlertStore, InMemoryAlertStore, SqlAlertStore
from suibou.contracts import AlertEvent, AlertLevel, AreaKind, Hazard, MsgType

MakeAlert = Callable[..., AlertEvent]

T0 = dt.datetime(2005, 9, 4, 12, 0, tzinfo=dt.UTC)
RECEIVED = dt.datetime(2005, 9, 4, 12, 0, 5, tzinfo=dt.UTC)


def ids(alerts: list[alert_api.store.Alert]) -> list[str]:
    return [alert.alert_id for alert in alerts]


def test_docstring_examples_run() -> None:
    assert doctest.testmod(alert_api.store).failed == 0


def test_add_is_idempotent_on_event_id(store: AlertStore, make_alert: MakeAlert) -> None:
    event = make_alert()
    assert store.add(event) is True
    assert store.add(event) is False
    assert store.counts() == alert_api.store.StoreCounts(alerts=1, active=1, messages=1)


def test_in_memory_store_is_the_same_store(make_alert: MakeAlert) -> None:
    store = InMemoryAlertStore(clock=lambda: RECEIVED)
    assert (store.add(make_alert()), store.add(make_alert())) == (True, False)
    assert [a.alert_id for a in store.list_alerts(AlertQuery())] == ["A-ZENPUKUJI-1"]


def test_message_round_trips_every_field(store: AlertStore, make_alert: MakeAlert) -> None:
    event = make_alert(
        previous_level=AlertLevel.CAUTION,
        area_kind=AreaKind.ZONE,
        hazard=Hazard.LANDSLIDE,
        references=("x.0", "x.1"),
        reason={"probability": 0.81, "drivers": ["rain_60min_mm"], "note": "警戒"},
        event_time=T0 + dt.timedelta(microseconds=250),
        area_name="Takao slope 7", area_name_ja="高尾 7",
        polygon=((139.25, 35.62), (139.26, 35.62), (139.26, 35.63), (139.25, 35.62)),
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
    with pytest.raises(ValueError, match="SQLite and PostgreSQL"):
        alert_api.db.create_db_engine("mysql://localhost/suibou")


def test_messages_after_a_cursor_come_in_publication_order(store: AlertStore, make_alert: MakeAlert) -> None:
    for n, alert_id in enumerate(("B", "A", "C")):
        store.add(make_alert(alert_id, minutes=10 - n))
    store.add(make_alert("A", 1, minutes=20, msg_type=MsgType.UPDATE, level=AlertLevel.DANGER))
    page, following = store.messages_after(0, include_exercises=True, limit=2)
    assert [m.event.event_id for m in page] == ["B.0", "A.0"]
    assert [m.cursor for m in page] == [1, 2] and following == 2
    page, following = store.messages_after(following, include_exercises=True, limit=10)
    assert [m.event.event_id for m in page] == ["C.0", "A.1"] and following == 4
    assert store.messages_after(following, include_exercises=True) == ([], 4)
    assert store.latest_cursor() == 4


def test_message_log_hides_exercises_from_those_who_may_not_see_them(store: AlertStore,
                                                                      make_alert: MakeAlert) -> None:
    store.add(make_alert("DRILL"))
    store.add(make_alert("REAL", exercise=False, drill_id=None))
    store.add(make_alert("DRILL", 1, minutes=5, msg_type=MsgType.UPDATE))
    page, following = store.messages_after(0, include_exercises=False)
    assert [m.event.event_id for m in page] == ["REAL.0"]
    assert following == 3  # past the hidden messages too
    assert len(store.active_alerts(include_exercises=False)) == 1
    assert len(store.active_alerts(include_exercises=True)) == 2


def test_bbox_filters_alerts_and_messages(store: AlertStore, make_alert: MakeAlert) -> None:
    far = ((139.25, 35.62), (139.26, 35.62), (139.26, 35.63), (139.25, 35.62))
    store.add(make_alert("NEAR"))
    store.add(make_alert("FAR", area_id="Z-TAKAO-7", polygon=far))
    store.add(make_alert("NOWHERE", area_id="R-X", polygon=()))
    box = (139.60, 35.69, 139.62, 35.71)
    assert ids(store.list_alerts(AlertQuery(bbox=box))) == ["NEAR"]
    assert [m.event.alert_id for m in store.messages_after(0, include_exercises=True, bbox=box)[0]] == ["NEAR"]
    with pytest.raises(ValueError, match="bbox"):
        AlertQuery(bbox=(140.0, 35.0, 139.0, 36.0))


def test_store_of_the_first_schema_is_migrated(tmp_path: Path, make_alert: MakeAlert) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(
            'CREATE TABLE alert_messages (event_id VARCHAR(128) PRIMARY KEY, alert_id VARCHAR(128), sequence BIGINT, '
            'msg_type VARCHAR(16), area_id VARCHAR(128), area_kind VARCHAR(16), hazard VARCHAR(16), level SMALLINT, '
            'previous_level SMALLINT, exercise BOOLEAN, drill_id VARCHAR(128), event_time DATETIME, headline TEXT, '
            '"references" TEXT, reason TEXT, received_at DATETIME)'))
        for sequence, level in ((0, 3), (1, 4)):
            connection.execute(sa.text(
                "INSERT INTO alert_messages VALUES (:id, 'OLD', :seq, :type, 'R-1', 'reach', 'flood', :level, 3, 0, "
                "NULL, :t, 'h', :refs, '{}', :t)"),
                {"id": f"OLD.{sequence}", "seq": sequence, "type": "Update" if sequence else "Alert", "level": level,
                 "refs": '["OLD.0"]' if sequence else "[]", "t": f"2005-09-04 12:0{sequence}:00.000000"})
    engine.dispose()
    store = SqlAlertStore(url)
    alert = store.get_alert("OLD")
    assert alert is not None and [m.event.sequence for m in alert.messages] == [0, 1]
    assert alert.latest.event.level is AlertLevel.DANGER and [m.cursor for m in alert.messages] == [1, 2]
    assert store.add(make_alert("OLD", 1)) is False
    store.close()
