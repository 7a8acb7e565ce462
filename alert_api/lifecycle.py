"""How pipeline messages and duty-officer actions make one alert lifecycle.

The pipeline decides levels with hysteresis and sends Alert, Update and Cancel
messages that reference each other (``pipelines/alerts.py``). The API publishes
them unchanged, same ``alert_id``, ``event_id``, ``sequence`` and
``references``, for as long as only the pipeline speaks.

Duty officers can acknowledge, update and cancel an alert, and issue one by
hand. Each action is a new message in the alert (next ``sequence``,
``references`` = the alert's previous message). From the first officer message
on, the alert is *rebased*: later pipeline messages keep their ``event_id`` but
are published at the alert's next sequence and reference the alert's previous
message, so a partner always sees one unbroken chain.

The rule for pipeline messages once an officer has **updated or cancelled** an
alert (the alert is under *manual control*; an acknowledgement does not take
control):

1. A pipeline message that *escalates* (its level is above the pipeline's
   previous level) and is above the alert's current level is published, and
   hands the alert back to the pipeline: new evidence beats an older judgement.
2. Any other pipeline message (a lowering, a Cancel, a repeat) is *held*:
   recorded with the reason, shown to officers, never sent to partners.
3. After an officer's Cancel the alert id is finished (CAP receivers treat a
   Cancel as final). An escalating pipeline message opens a **new** alert,
   ``<pipeline alert id>.r<n>`` (msgType Alert, sequence 0), which takes the
   pipeline's later messages; nothing else re-opens it.

So a pipeline message arriving after a manual cancel never silently resurrects
the cancelled alert: it is held, or, if the river got worse, it raises a new
alert that partners see as new.

Examples:
    >>> import datetime as dt
    >>> from suibou.contracts import AreaKind, Hazard
    >>> t = dt.datetime(2005, 9, 4, 12, tzinfo=dt.timezone.utc)
    >>> def msg(seq, level, previous, kind=MsgType.UPDATE):
    ...     return AlertEvent(event_id=f"A:{seq}", event_time=t, alert_id="A", sequence=seq, msg_type=kind,
    ...         area_id="R-1", area_kind=AreaKind.REACH, hazard=Hazard.FLOOD, level=AlertLevel(level),
    ...         previous_level=AlertLevel(previous), headline="h", references=(f"A:{seq - 1}",))
    >>> cancelled = AlertState(alert_id="A", source_alert_id="A", manual=True, rebased=True, generation=0,
    ...     sequence=3, last_event_id="A:2:officer", level=AlertLevel.NONE, active=False, pipeline_sequence=2)
    >>> route_pipeline_message(msg(3, 3, 4), cancelled)
    Hold(alert_id='A', reason='held: the alert was cancelled by a duty officer')
    >>> reopened = route_pipeline_message(msg(3, 5, 4), cancelled)
    >>> reopened.event.alert_id, reopened.event.msg_type.value, reopened.event.sequence, reopened.new_alert
    ('A.r1', 'Alert', 0, True)
"""

from __future__ import annotations

import dataclasses
import hashlib

from suibou.contracts import AlertEvent, AlertLevel, MsgType

#: Longest identifier the contracts allow.
MAX_ID = 128


def derive_id(base: str, suffix: str) -> str:
    """``base`` + ``suffix``, shortened with a hash of ``base`` if that would exceed 128 characters.

    Examples:
        >>> derive_id("live:R-1:flood:20050904T122200Z", ".r1")
        'live:R-1:flood:20050904T122200Z.r1'
        >>> len(derive_id("x" * 127, ":3:officer"))
        128
    """
    if len(base) + len(suffix) <= MAX_ID:
        return base + suffix
    digest = hashlib.sha256(base.encode()).hexdigest()[:12]
    keep = MAX_ID - len(suffix) - len(digest) - 1
    return f"{base[:keep]}-{digest}{suffix}"


@dataclasses.dataclass(frozen=True)
class AlertState:
    """What the lifecycle needs to know about a published alert.

    Attributes:
        alert_id: The published alert's id.
        source_alert_id: The pipeline alert whose messages it receives; ``None``
            for an alert a duty officer issued by hand.
        manual: A duty officer has updated or cancelled it (see the module rules).
        rebased: An officer message is in its history, or it was re-opened:
            pipeline messages no longer keep their own sequence.
        generation: How often its source alert has been re-opened.
        sequence: Sequence of its latest published message.
        last_event_id: Id of its latest published message.
        level: Its current level.
        active: False once cancelled.
        pipeline_sequence: Highest pipeline sequence received for it (-1: none).
    """

    alert_id: str
    source_alert_id: str | None
    manual: bool
    rebased: bool
    generation: int
    sequence: int
    last_event_id: str
    level: AlertLevel
    active: bool
    pipeline_sequence: int


@dataclasses.dataclass(frozen=True)
class Publish:
    """Publish ``event`` (as rewritten for the published lifecycle).

    Attributes:
        event: The message as partners will see it.
        new_alert: It opens a published alert (msgType Alert).
        manual: Whether the alert is under manual control afterwards.
        rebased: Whether the alert is rebased afterwards.
        generation: The alert's generation (see :class:`AlertState`).
    """

    event: AlertEvent
    new_alert: bool
    manual: bool
    rebased: bool
    generation: int


@dataclasses.dataclass(frozen=True)
class Hold:
    """Record the message, do not publish it."""

    alert_id: str
    reason: str


def route_pipeline_message(event: AlertEvent, state: AlertState | None) -> Publish | Hold:
    """Decides what a pipeline message becomes, given the published alert bound to its alert id.

    Args:
        event: The message as the pipeline sent it.
        state: The published alert that receives messages of ``event.alert_id``,
            or ``None`` if there is none yet.

    Returns:
        :class:`Publish` with the message to publish, or :class:`Hold`.
    """
    if state is None:
        return Publish(event, new_alert=True, manual=False, rebased=False, generation=0)
    if not state.rebased:
        # Only the pipeline has spoken: its ids, sequences and references stand as sent.
        return Publish(event, new_alert=False, manual=False, rebased=False, generation=state.generation)
    if event.sequence <= state.pipeline_sequence:
        return Hold(state.alert_id, "held: stale, a later pipeline message of this alert was already received")
    escalates = event.msg_type is not MsgType.CANCEL and event.level > event.previous_level
    if not state.active:
        if state.manual and escalates:
            reopened = dataclasses.replace(
                event,
                alert_id=derive_id(event.alert_id, f".r{state.generation + 1}"),
                sequence=0,
                msg_type=MsgType.ALERT,
                references=(),
                previous_level=AlertLevel.NONE,
                reason={**event.reason, "reopens": state.alert_id},
            )
            return Publish(reopened, new_alert=True, manual=False, rebased=True, generation=state.generation + 1)
        reason = ("held: the alert was cancelled by a duty officer" if state.manual
                  else "held: the alert is already cancelled")
        return Hold(state.alert_id, reason)
    if state.manual and not (escalates and event.level > state.level):
        return Hold(state.alert_id, "held: a duty officer controls this alert; only an escalation above "
                                    f"level {int(state.level)} is published")
    published = dataclasses.replace(
        event,
        alert_id=state.alert_id,
        sequence=state.sequence + 1,
        msg_type=MsgType.CANCEL if event.msg_type is MsgType.CANCEL else MsgType.UPDATE,
        references=(state.last_event_id,),
        previous_level=state.level,
    )
    return Publish(published, new_alert=False, manual=False, rebased=True, generation=state.generation)


__all__ = ["AlertState", "Hold", "Publish", "derive_id", "route_pipeline_message"]
