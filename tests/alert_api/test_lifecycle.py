"""One lifecycle for pipeline messages and duty officers' actions (alert_api.lifecycle, the store, /v1/officer)."""

from __future__ import annotations

import doctest
import itertools
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

import alert_api.lifecycle
from alert_api.lifecycle import AlertState, Hold, Publish, derive_id, route_pipeline_message
from alert_api.models import LifecycleError
from alert_api.store import SqlAlertStore
from suibou.contracts import AlertEvent, AlertLevel, Hazard, MsgType

MakeAlert = Callable[..., AlertEvent]


def pipeline(make_alert: MakeAlert, sequence: int, level: int, previous: int, *, alert_id: str = "P",
             msg_type: MsgType | None = None) -> AlertEvent:
    """The pipeline's message ``sequence`` of alert ``alert_id``, referencing its previous one."""
    kind = msg_type or (MsgType.ALERT if sequence == 0 else MsgType.UPDATE)
    return make_alert(alert_id, sequence, minutes=10 * sequence, msg_type=kind, level=AlertLevel(level),
                      previous_level=AlertLevel(previous), exercise=False, drill_id=None,
                      references=(f"{alert_id}.{sequence - 1}",) if sequence else ())


def chain_is_unbroken(store: SqlAlertStore, alert_id: str) -> list[tuple[int, str, int, str]]:
    """Asserts sequences 0..n, each message referencing the one before; returns (seq, type, level, source)."""
    alert = store.get_alert(alert_id)
    assert alert is not None
    events = [m.event for m in alert.messages]
    assert [e.sequence for e in events] == list(range(len(events)))
    for earlier, later in itertools.pairwise(events):
        assert later.references == (earlier.event_id,)
    return [(e.sequence, e.msg_type.value, int(e.level), m.source) for e, m in zip(events, alert.messages)]


def test_docstring_examples_run() -> None:
    assert doctest.testmod(alert_api.lifecycle).failed == 0


def test_derived_ids_stay_within_the_contract() -> None:
    assert derive_id("A", ".r1") == "A.r1"
    long = derive_id("x" * 125, ".r1")
    assert len(long) == 128 and long.endswith(".r1") and long != derive_id("x" * 124 + "y", ".r1")


# --------------------------------------------------------------------------- the pure rule


def state(**changes: Any) -> AlertState:
    values: dict[str, Any] = {"alert_id": "P", "source_alert_id": "P", "manual": False, "rebased": False,
                              "generation": 0, "sequence": 1, "last_event_id": "P.1", "level": AlertLevel.DANGER,
                              "active": True, "pipeline_sequence": 1}
    values.update(changes)
    return AlertState(**values)


def test_pipeline_messages_pass_unchanged_while_only_the_pipeline_speaks(make_alert: MakeAlert) -> None:
    event = pipeline(make_alert, 2, 5, 4)
    decision = route_pipeline_message(event, state())
    assert isinstance(decision, Publish) and decision.event == event and not decision.rebased
    first = route_pipeline_message(pipeline(make_alert, 0, 3, 1), None)
    assert isinstance(first, Publish) and first.new_alert


def test_after_an_acknowledgement_pipeline_messages_are_rebased_not_held(make_alert: MakeAlert) -> None:
    acked = state(rebased=True, sequence=2, last_event_id="P:2:officer")
    decision = route_pipeline_message(pipeline(make_alert, 2, 2, 4), acked)
    assert isinstance(decision, Publish)
    assert (decision.event.event_id, decision.event.sequence, decision.event.references) == ("P.2", 3, ("P:2:officer",))
    assert decision.event.previous_level is AlertLevel.DANGER and not decision.manual


@pytest.mark.parametrize(
    ("sequence", "level", "previous", "msg_type", "published"),
    [
        (2, 5, 4, None, True),  # escalation above the officer's level 4: published
        (2, 3, 4, None, False),  # lowering: held
        (2, 1, 4, MsgType.CANCEL, False),  # the pipeline's cancel: held
        (1, 4, 3, None, False),  # stale (sequence already seen): held
    ],
)
def test_under_manual_control_only_escalations_are_published(
    make_alert: MakeAlert, sequence: int, level: int, previous: int, msg_type: MsgType | None, published: bool
) -> None:
    manual = state(manual=True, rebased=True, sequence=2, last_event_id="P:2:officer")
    decision = route_pipeline_message(pipeline(make_alert, sequence, level, previous, msg_type=msg_type), manual)
    assert isinstance(decision, Publish) is published
    if isinstance(decision, Publish):
        assert not decision.manual and decision.event.sequence == 3  # control returns to the pipeline


def test_a_raise_that_stays_below_the_officers_level_is_held(make_alert: MakeAlert) -> None:
    raised_by_officer = state(manual=True, rebased=True, sequence=2, level=AlertLevel.FLOODING)
    assert isinstance(route_pipeline_message(pipeline(make_alert, 2, 4, 3), raised_by_officer), Hold)


def test_after_an_officers_cancel_only_an_escalation_opens_a_new_alert(make_alert: MakeAlert) -> None:
    cancelled = state(manual=True, rebased=True, sequence=2, level=AlertLevel.NONE, active=False)
    held = route_pipeline_message(pipeline(make_alert, 2, 4, 4), cancelled)
    assert isinstance(held, Hold) and "cancelled by a duty officer" in held.reason
    reopened = route_pipeline_message(pipeline(make_alert, 2, 5, 4), cancelled)
    assert isinstance(reopened, Publish) and reopened.new_alert
    event = reopened.event
    assert (event.alert_id, event.sequence, event.msg_type, event.references) == ("P.r1", 0, MsgType.ALERT, ())
    assert event.event_id == "P.2" and event.reason["reopens"] == "P"


# --------------------------------------------------------------------------- in the store


def test_officer_update_then_pipeline_lowering_is_held_and_escalation_published(
    store: SqlAlertStore, make_alert: MakeAlert
) -> None:
    store.add(pipeline(make_alert, 0, 3, 1))
    store.add(pipeline(make_alert, 1, 4, 3))
    message = store.officer_action("P", "update", "tanaka", level=AlertLevel.DANGER, note="camera shows overflow")
    assert (message.event.sequence, message.event.references, message.source) == (2, ("P.1",), "officer")
    assert store.add(pipeline(make_alert, 2, 3, 4)) is True  # taken, but held
    assert store.add(pipeline(make_alert, 2, 3, 4)) is False  # and a duplicate after that
    assert store.add(pipeline(make_alert, 3, 5, 3)) is True  # escalation: published
    assert chain_is_unbroken(store, "P") == [
        (0, "Alert", 3, "pipeline"), (1, "Update", 4, "pipeline"), (2, "Update", 4, "officer"),
        (3, "Update", 5, "pipeline"),
    ]
    alert = store.get_alert("P", with_held=True)
    assert alert is not None and not alert.manual
    assert [(h.event.event_id, h.alert_id) for h in alert.held] == [("P.2", "P")]
    assert store.counts().held == 1


def test_a_pipeline_message_after_a_manual_cancel_does_not_resurrect_the_alert(
    store: SqlAlertStore, make_alert: MakeAlert
) -> None:
    store.add(pipeline(make_alert, 0, 4, 1))
    store.officer_action("P", "cancel", "tanaka", note="gauge fault, no flooding")
    store.add(pipeline(make_alert, 1, 2, 4))  # the pipeline lowers: held
    store.add(pipeline(make_alert, 2, 1, 2, msg_type=MsgType.CANCEL))  # and ends its alert: held
    assert chain_is_unbroken(store, "P") == [(0, "Alert", 4, "pipeline"), (1, "Cancel", 1, "officer")]
    assert store.counts().active == 0 and store.counts().held == 2


def test_an_escalation_after_a_manual_cancel_is_a_new_alert_that_takes_later_messages(
    store: SqlAlertStore, make_alert: MakeAlert
) -> None:
    store.add(pipeline(make_alert, 0, 3, 1))
    store.officer_action("P", "cancel", "tanaka")
    store.add(pipeline(make_alert, 1, 5, 3))  # the river got worse
    store.add(pipeline(make_alert, 2, 2, 5))
    store.add(pipeline(make_alert, 3, 1, 2, msg_type=MsgType.CANCEL))
    assert chain_is_unbroken(store, "P") == [(0, "Alert", 3, "pipeline"), (1, "Cancel", 1, "officer")]
    assert chain_is_unbroken(store, "P.r1") == [
        (0, "Alert", 5, "pipeline"), (1, "Update", 2, "pipeline"), (2, "Cancel", 1, "pipeline")]
    reopened = store.get_alert("P.r1")
    assert reopened is not None and reopened.messages[0].event.event_id == "P.1"


def test_acknowledge_keeps_the_level_and_the_pipeline_in_control(store: SqlAlertStore, make_alert: MakeAlert) -> None:
    store.add(pipeline(make_alert, 0, 4, 1))
    ack = store.officer_action("P", "acknowledge", "sato", note="seen on camera 3")
    assert (ack.event.level, ack.event.msg_type, ack.action) == (AlertLevel.DANGER, MsgType.UPDATE, "acknowledge")
    assert ack.event.reason == {"action": "acknowledge", "source": "duty_officer", "note": "seen on camera 3"}
    store.add(pipeline(make_alert, 1, 2, 4))  # a lowering after an ack is published
    store.add(pipeline(make_alert, 2, 1, 2, msg_type=MsgType.CANCEL))
    assert chain_is_unbroken(store, "P") == [
        (0, "Alert", 4, "pipeline"), (1, "Update", 4, "officer"), (2, "Update", 2, "pipeline"),
        (3, "Cancel", 1, "pipeline")]


def test_officer_issue_makes_a_manual_alert_with_the_areas_known_polygon(
    store: SqlAlertStore, make_alert: MakeAlert
) -> None:
    store.add(pipeline(make_alert, 0, 2, 1))
    issued = store.officer_issue(officer="tanaka", area_id="R-ZENPUKUJI-03", hazard=Hazard.FLOOD,
                                 level=AlertLevel.FLOODING, note="overflow reported by police")
    event = issued.event
    assert event.alert_id.startswith("duty:R-ZENPUKUJI-03:flood:") and event.msg_type is MsgType.ALERT
    assert event.polygon == make_alert().polygon and event.area_name_ja == "善福寺川"
    assert event.headline == ("善福寺川 氾濫発生情報（警戒レベル5） / "
                              "Zenpukuji River: flooding occurring (alert level 5)")
    assert event.reason == {"action": "issue", "source": "duty_officer", "note": "overflow reported by police"}
    with pytest.raises(LifecycleError) as unknown:
        store.officer_issue(officer="tanaka", area_id="R-NOWHERE", hazard=Hazard.FLOOD, level=AlertLevel.DANGER)
    assert unknown.value.status == 422


@pytest.mark.parametrize(
    ("action", "level", "status"),
    [("update", None, 422), ("update", AlertLevel.NONE, 422), ("shout", None, 422)],
)
def test_officer_actions_that_do_not_fit_are_refused(store: SqlAlertStore, make_alert: MakeAlert, action: str,
                                                     level: AlertLevel | None, status: int) -> None:
    store.add(pipeline(make_alert, 0, 3, 1))
    with pytest.raises(LifecycleError) as error:
        store.officer_action("P", action, "tanaka", level=level)
    assert error.value.status == status


def test_no_action_on_unknown_or_cancelled_alerts_or_stale_sequences(store: SqlAlertStore,
                                                                    make_alert: MakeAlert) -> None:
    with pytest.raises(LifecycleError) as unknown:
        store.officer_action("NOPE", "acknowledge", "tanaka")
    assert unknown.value.status == 404
    store.add(pipeline(make_alert, 0, 3, 1))
    with pytest.raises(LifecycleError) as stale:
        store.officer_action("P", "acknowledge", "tanaka", expected_sequence=5)
    assert stale.value.status == 409
    store.officer_action("P", "cancel", "tanaka", expected_sequence=0)
    with pytest.raises(LifecycleError) as cancelled:
        store.officer_action("P", "update", "tanaka", level=AlertLevel.DANGER)
    assert cancelled.value.status == 409


# --------------------------------------------------------------------------- over HTTP


def test_duty_officer_acts_over_http_and_is_named_in_the_audit_log(
    api: TestClient, callers: Any, store: SqlAlertStore, make_alert: MakeAlert, admin: dict[str, str]
) -> None:
    store.add(pipeline(make_alert, 0, 3, 1))
    officer = callers.officer("tanaka")
    acked = api.post("/v1/officer/alerts/P/acknowledge", headers=officer, json={"note": "confirmed"})
    assert acked.status_code == 200, acked.text
    updated = api.post("/v1/officer/alerts/P/update", headers=officer,
                       json={"level": 5, "note": "flooding at Ogikubo", "expected_sequence": 1})
    body = updated.json()
    assert (body["level"], body["sequence"], body["manual"], body["source"]) == (5, 2, True, "duty_officer")
    assert body["messages"][2]["officer"] == "tanaka" and body["messages"][2]["action"] == "update"
    assert body["messages"][2]["headline"].startswith("善福寺川 氾濫発生情報（警戒レベル5）")
    stale = api.post("/v1/officer/alerts/P/cancel", headers=officer, json={"expected_sequence": 1})
    assert stale.status_code == 409
    cancelled = api.post("/v1/officer/alerts/P/cancel", headers=officer, json={"note": "water receding"})
    assert (cancelled.json()["msg_type"], cancelled.json()["active"]) == ("Cancel", False)
    assert api.post("/v1/officer/alerts/P/acknowledge", headers=officer, json={}).status_code == 409
    assert api.post("/v1/officer/alerts/NOPE/acknowledge", headers=officer, json={}).status_code == 404
    store.add(pipeline(make_alert, 1, 2, 3))
    held = api.get("/v1/alerts/P", headers=officer).json()["held"]
    assert [h["event_id"] for h in held] == ["P.1"] and "cancelled by a duty officer" in held[0]["reason"]
    audit = api.get("/v1/admin/audit", params={"actor": "tanaka"}, headers=admin).json()["data"]
    assert [e["action"] for e in audit] == ["officer.login", "alert.acknowledge", "alert.update", "alert.cancel"]
    assert audit[2]["target"] == "P" and audit[2]["detail"]["note"] == "flooding at Ogikubo"


def test_officer_issues_an_exercise_alert_over_http(api: TestClient, callers: Any, store: SqlAlertStore,
                                                    make_alert: MakeAlert) -> None:
    officer = callers.officer("sato")
    polygon = {"type": "Polygon", "coordinates": [[[139.6, 35.7], [139.61, 35.7], [139.61, 35.71], [139.6, 35.7]]]}
    issued = api.post("/v1/officer/alerts", headers=officer, json={
        "area_id": "R-TEST-1", "hazard": "flood", "level": 4, "exercise": True, "area_name": "Test reach",
        "area_name_ja": "試験区間", "polygon": polygon})
    assert issued.status_code == 201, issued.text
    body = issued.json()
    assert (body["status"], body["msg_type"], body["manual"]) == ("Exercise", "Alert", True)
    assert body["headline"].startswith("EXERCISE/訓練 試験区間")
    bad = {"area_id": "R-TEST-1", "hazard": "flood", "level": 4,
           "polygon": {"type": "Polygon", "coordinates": [[[139.6, 35.7], [139.61, 35.7], [139.61, 35.71]]]}}
    assert api.post("/v1/officer/alerts", headers=officer, json=bad).status_code == 422
    assert api.post("/v1/officer/alerts", headers=officer,
                    json={"area_id": "R-TEST-1", "hazard": "flood", "level": 1}).status_code == 422


def test_officer_login_rules(api: TestClient, callers: Any, admin: dict[str, str]) -> None:
    callers.officer("kato")
    wrong = api.post("/v1/officer/login", json={"username": "kato", "password": "not the password"})
    assert wrong.status_code == 401
    assert api.post("/v1/officer/login", json={"username": "nobody", "password": "x" * 12}).status_code == 401
    observer = callers.officer("ito", role="observer")
    assert api.get("/v1/officer/me", headers=observer).json()["role"] == "observer"
    assert api.post("/v1/officer/alerts/P/acknowledge", headers=observer, json={}).status_code == 403
    assert api.get("/v1/alerts", headers=observer).status_code == 200
    assert api.post("/v1/officer/logout", headers=observer).status_code == 204
    assert api.get("/v1/alerts", headers=observer).status_code == 401
    # Disabling an officer ends its sessions.
    kato = callers.client.post("/v1/officer/login", json={"username": "kato",
                                                          "password": "correct horse battery staple"}).json()["token"]
    assert api.patch("/v1/admin/officers/kato", headers=admin, json={"disabled": True}).status_code == 200
    assert api.get("/v1/alerts", headers={"Authorization": f"Bearer {kato}"}).status_code == 401
    failed = [e["action"] for e in api.get("/v1/admin/audit", params={"actor": "kato"}, headers=admin).json()["data"]]
    assert "officer.login_failed" in failed


def test_repeated_failed_logins_are_refused_for_a_while(api: TestClient, callers: Any) -> None:
    callers.officer("mori")
    for _ in range(10):
        assert api.post("/v1/officer/login", json={"username": "mori", "password": "wrong password"}).status_code == 401
    locked = api.post("/v1/officer/login", json={"username": "mori", "password": "correct horse battery staple"})
    assert locked.status_code == 429 and 290 <= int(locked.headers["retry-after"]) <= 300
