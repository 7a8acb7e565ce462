"""``/v1/officer``: duty officers log in, and acknowledge, issue, update and cancel alerts.

Each action is published as a message of the alert (next sequence, referencing
the previous message) and delivered to partners like a pipeline message; the
officer's name goes to the audit log. How later pipeline messages are treated
is the rule in :mod:`alert_api.lifecycle`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from alert_api import service
from alert_api.deps import AccountsDep, ActingOfficerDep, ApiConfigDep, OfficerDep, Principal, StoreDep, client_of
from alert_api.geo import GeometryError, check_polygon
from alert_api.login_guard import HashGate, LoginGuard, Refusal
from alert_api.models import LifecycleError
from alert_api.routes.admin import officer_public
from alert_api.schemas import (
    ID_PATTERN,
    AlertDetail,
    LoginRequest,
    LoginResponse,
    OfficerIssue,
    OfficerLevelChange,
    OfficerNote,
    OfficerPublic,
)
from alert_api.store import AlertStore
from suibou.contracts import AlertLevel

router = APIRouter(prefix="/v1/officer", tags=["duty officers"])

AlertId = Annotated[str, Path(pattern=ID_PATTERN, max_length=128)]


@router.post("/login", response_model=LoginResponse, summary="Log in; returns a session token",
             responses={401: {"description": "Wrong user name or password"},
                        429: {"description": "Login throttled (see Retry-After): too many attempts from this "
                                             "address or in all, too many failures for this user name from this "
                                             "address, or the password hashes are busy"}})
async def login(body: LoginRequest, request: Request, accounts: AccountsDep) -> LoginResponse:
    """Checks the password (Argon2id) and opens a 12-hour session. Throttled per client address, per user
    name and address, per user name (paced, never locked) and in all; see ``alert_api.login_guard``."""
    guard: LoginGuard = request.app.state.login_guard
    gate: HashGate = request.app.state.hash_gate
    remote = client_of(request)
    client = remote or "unknown"
    refusal = guard.admit_user(body.username, client)  # the address's own rate: LoginThrottleMiddleware
    if refusal is None and not gate.try_enter():
        refusal = Refusal("the API is busy checking other logins; try again shortly", 1)
    if refusal is not None:
        raise HTTPException(status_code=429, detail=refusal.reason, headers={"Retry-After": str(refusal.retry_after)})
    try:
        result = await gate.run(accounts.login, body.username, body.password)
    finally:
        gate.leave()
    if result is None:
        guard.failed(body.username, client)
        await run_in_threadpool(accounts.audit, "officer", body.username, "officer.login_failed", body.username,
                                None, remote)
        raise HTTPException(status_code=401, detail="wrong user name or password")
    guard.succeeded(body.username, client)
    officer, token, expires = result
    await run_in_threadpool(accounts.audit, "officer", officer.username, "officer.login", officer.username,
                            None, remote)
    return LoginResponse(token=token, expires_at=expires, officer=officer_public(officer))


@router.post("/logout", status_code=204, response_class=Response, summary="End this session")
def logout(principal: OfficerDep, accounts: AccountsDep) -> Response:
    accounts.logout(principal.token)
    accounts.audit("officer", principal.name, "officer.logout", principal.name, remote=principal.remote)
    return Response(status_code=204)


@router.get("/me", response_model=OfficerPublic, summary="The logged-in officer")
def me(principal: OfficerDep) -> OfficerPublic:
    assert principal.officer is not None
    return officer_public(principal.officer)


def _detail(store: AlertStore, alert_id: str, principal: Principal) -> AlertDetail:
    detail = service.get_alert(store, alert_id, principal)
    assert detail is not None
    return detail


def _act(store: AlertStore, accounts: AccountsDep, principal: Principal, alert_id: str,
         action: str, body: OfficerNote, level: AlertLevel | None = None) -> AlertDetail:
    try:
        message = store.officer_action(alert_id, action, principal.name, level=level, note=body.note,
                                       expected_sequence=body.expected_sequence)
    except LifecycleError as error:
        raise HTTPException(status_code=error.status, detail=str(error)) from None
    accounts.audit("officer", principal.name, f"alert.{action}", alert_id,
                   {"event_id": message.event.event_id, "sequence": message.event.sequence,
                    "level": int(message.event.level), "note": body.note}, principal.remote)
    return _detail(store, alert_id, principal)


@router.post("/alerts", response_model=AlertDetail, status_code=201, summary="Issue an alert by hand",
             responses={422: {"description": "No polygon given and none known for the area"}})
def issue(body: OfficerIssue, store: StoreDep, accounts: AccountsDep, principal: ActingOfficerDep,
          config: ApiConfigDep) -> AlertDetail:
    """A new alert (msgType Alert) for an area, under the officer's control from the start."""
    if body.drill_id is not None and not body.exercise:
        raise HTTPException(status_code=422, detail="drill_id is for exercises only")
    polygon = None
    if body.polygon is not None:
        try:
            polygon = check_polygon(body.polygon.coordinates[0], config.service_area)
        except GeometryError as error:
            raise HTTPException(status_code=422, detail=str(error)) from None
    try:
        message = store.officer_issue(
            officer=principal.name, area_id=body.area_id, hazard=body.hazard, level=AlertLevel(body.level),
            exercise=body.exercise, note=body.note, area_kind=body.area_kind, area_name=body.area_name,
            area_name_ja=body.area_name_ja, polygon=polygon, drill_id=body.drill_id)
    except LifecycleError as error:
        raise HTTPException(status_code=error.status, detail=str(error)) from None
    accounts.audit("officer", principal.name, "alert.issue", message.event.alert_id,
                   {"event_id": message.event.event_id, "level": body.level, "area_id": body.area_id,
                    "exercise": body.exercise, "drill_id": body.drill_id, "note": body.note}, principal.remote)
    return _detail(store, message.event.alert_id, principal)


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertDetail, summary="Acknowledge an alert",
             responses={404: {"description": "No such alert"}, 409: {"description": "Cancelled or changed meanwhile"}})
def acknowledge(alert_id: AlertId, body: OfficerNote, store: StoreDep, accounts: AccountsDep,
                principal: ActingOfficerDep) -> AlertDetail:
    """Confirms the alert as it stands (an Update at the same level); the pipeline keeps control."""
    return _act(store, accounts, principal, alert_id, "acknowledge", body)


@router.post("/alerts/{alert_id}/update", response_model=AlertDetail, summary="Set an alert's level",
             responses={404: {"description": "No such alert"}, 409: {"description": "Cancelled or changed meanwhile"}})
def update(alert_id: AlertId, body: OfficerLevelChange, store: StoreDep, accounts: AccountsDep,
           principal: ActingOfficerDep) -> AlertDetail:
    """Sets the level (2-5) and takes the alert under the officer's control."""
    return _act(store, accounts, principal, alert_id, "update", body, AlertLevel(body.level))


@router.post("/alerts/{alert_id}/cancel", response_model=AlertDetail, summary="Cancel an alert",
             responses={404: {"description": "No such alert"}, 409: {"description": "Cancelled or changed meanwhile"}})
def cancel(alert_id: AlertId, body: OfficerNote, store: StoreDep, accounts: AccountsDep,
           principal: ActingOfficerDep) -> AlertDetail:
    """Ends the alert (msgType Cancel). Later pipeline messages for it are held; only an escalation opens a new
    alert."""
    return _act(store, accounts, principal, alert_id, "cancel", body)
