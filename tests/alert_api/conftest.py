"""Fixtures for the alert API tests: alert messages built from the contracts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from suibou.contracts import AlertEvent, AlertLevel, AreaKind, Hazard, MsgType

T0 = dt.datetime(2005, 9, 4, 12, 0, tzinfo=dt.timezone.utc)

MakeAlert = Callable[..., AlertEvent]


@pytest.fixture
def make_alert() -> MakeAlert:
    """Builds an :class:`AlertEvent`; ``minutes`` after 2005-09-04 12:00 UTC sets its time.

    The event id defaults to ``<alert_id>.<sequence>``.
    """

    def make(
        alert_id: str = "A-ZENPUKUJI-1",
        sequence: int = 0,
        *,
        minutes: float = 0,
        msg_type: MsgType = MsgType.ALERT,
        level: AlertLevel = AlertLevel.WARNING,
        **fields: Any,
    ) -> AlertEvent:
        values: dict[str, Any] = {
            "event_id": f"{alert_id}.{sequence}",
            "event_time": T0 + dt.timedelta(minutes=minutes),
            "alert_id": alert_id,
            "sequence": sequence,
            "msg_type": msg_type,
            "area_id": "R-ZENPUKUJI-03",
            "area_kind": AreaKind.REACH,
            "hazard": Hazard.FLOOD,
            "level": level,
            "headline": f"Level {int(level)} on the Zenpukuji",
            "exercise": True,
            "drill_id": "d1",
        }
        values.update(fields)
        return AlertEvent(**values)

    return make
