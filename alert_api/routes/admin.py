"""``/v1/admin``: partners and their keys, field gateways, duty officers, the audit log (admin key only)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Response

from alert_api.accounts import AccountError, AuditEntry, Gateway, Officer
from alert_api.deps import AccountsDep, AdminDep, OutboxDep
from alert_api.routes.partner import delivery_public, partner_public
from alert_api.schemas import (
    MAX_INT,
    AuditEntryPublic,
    AuditList,
    DeliveryList,
    GatewayCreate,
    GatewayCreated,
    GatewayList,
    GatewayPublic,
    KeyCreated,
    KeyList,
    KeyPublic,
    OfficerAccountUpdate,
    OfficerCreate,
    OfficerList,
    OfficerPublic,
    PartnerCreate,
    PartnerCreated,
    PartnerList,
    PartnerPublic,
    PartnerUpdate,
)

router = APIRouter(prefix="/v1/admin", tags=["admin"])

PartnerId = Annotated[str, Path(pattern=r"^p_[0-9a-f]{12}$")]
GatewayId = Annotated[str, Path(pattern=r"^g_[0-9a-f]{12}$")]
KeyId = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")]
Username = Annotated[str, Path(pattern=r"^[a-z][a-z0-9._-]{1,63}$")]


def _error(error: AccountError) -> HTTPException:
    return HTTPException(status_code=error.status, detail=str(error))


def officer_public(officer: Officer) -> OfficerPublic:
    return OfficerPublic(username=officer.username, display_name=officer.display_name,
                         role=officer.role, disabled=officer.disabled,  # type: ignore[arg-type]
                         created_at=officer.created_at)


def audit_public(entry: AuditEntry) -> AuditEntryPublic:
    return AuditEntryPublic(id=entry.id, at=entry.at, actor_kind=entry.actor_kind, actor=entry.actor,
                            action=entry.action, target=entry.target, detail=entry.detail, remote=entry.remote)


@router.post("/partners", response_model=PartnerCreated, status_code=201, summary="Register a partner")
def create_partner(body: PartnerCreate, admin: AdminDep, accounts: AccountsDep) -> PartnerCreated:
    """Registers a navigation partner and makes its first API key, shown only in this answer."""
    partner, key = accounts.create_partner(body.name, body.scopes, body.rate_limit_per_minute)
    accounts.audit("admin", admin.name, "partner.create", partner.partner_id,
                   {"name": body.name, "scopes": sorted(body.scopes)}, admin.remote)
    return PartnerCreated(partner=partner_public(partner), api_key=key)


@router.get("/partners", response_model=PartnerList, summary="List partners")
def list_partners(admin: AdminDep, accounts: AccountsDep) -> PartnerList:
    partners = [partner_public(p) for p in accounts.list_partners()]
    return PartnerList(count=len(partners), data=partners)


@router.get("/partners/{partner_id}", response_model=PartnerPublic, summary="One partner")
def get_partner(partner_id: PartnerId, admin: AdminDep, accounts: AccountsDep) -> PartnerPublic:
    partner = accounts.get_partner(partner_id)
    if partner is None:
        raise HTTPException(status_code=404, detail=f"no partner {partner_id!r}")
    return partner_public(partner)


@router.patch("/partners/{partner_id}", response_model=PartnerPublic, summary="Change a partner")
def update_partner(partner_id: PartnerId, body: PartnerUpdate, admin: AdminDep, accounts: AccountsDep) -> PartnerPublic:
    """Name, scopes, rate limit, or ``disabled`` (refuses its keys and stops its webhooks)."""
    try:
        partner = accounts.update_partner(partner_id, name=body.name, scopes=body.scopes,
                                          rate_limit_per_minute=body.rate_limit_per_minute, disabled=body.disabled)
    except AccountError as error:
        raise _error(error) from None
    accounts.audit("admin", admin.name, "partner.update", partner_id, body.model_dump(exclude_none=True), admin.remote)
    return partner_public(partner)


@router.post("/partners/{partner_id}/keys", response_model=KeyCreated, status_code=201, summary="New API key")
def create_key(partner_id: PartnerId, admin: AdminDep, accounts: AccountsDep) -> KeyCreated:
    try:
        key_id, key = accounts.create_key(partner_id)
    except AccountError as error:
        raise _error(error) from None
    accounts.audit("admin", admin.name, "partner.key.create", partner_id, {"key_id": key_id}, admin.remote)
    return KeyCreated(key_id=key_id, api_key=key)


@router.get("/partners/{partner_id}/keys", response_model=KeyList, summary="A partner's keys (ids only)")
def list_keys(partner_id: PartnerId, admin: AdminDep, accounts: AccountsDep) -> KeyList:
    keys = [KeyPublic(**k) for k in accounts.list_keys(partner_id)]
    return KeyList(count=len(keys), data=keys)


@router.delete("/partners/{partner_id}/keys/{key_id}", status_code=204, response_class=Response,
               summary="Revoke an API key")
def revoke_key(partner_id: PartnerId, key_id: KeyId, admin: AdminDep, accounts: AccountsDep) -> Response:
    try:
        accounts.revoke_key(partner_id, key_id)
    except AccountError as error:
        raise _error(error) from None
    accounts.audit("admin", admin.name, "partner.key.revoke", partner_id, {"key_id": key_id}, admin.remote)
    return Response(status_code=204)


@router.get("/partners/{partner_id}/deliveries", response_model=DeliveryList, summary="A partner's deliveries")
def partner_deliveries(partner_id: PartnerId, admin: AdminDep, outbox: OutboxDep,
                       status: Annotated[Literal["pending", "delivered", "dead"] | None, Query()] = None,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> DeliveryList:
    items = [delivery_public(d) for d in outbox.deliveries(partner_id, status=status, limit=limit)]
    return DeliveryList(count=len(items), data=items)


def gateway_public(gateway: Gateway) -> GatewayPublic:
    return GatewayPublic(gateway_id=gateway.gateway_id, name=gateway.name, stations=list(gateway.stations),
                         exercise=gateway.exercise, key_id=gateway.key_id, created_at=gateway.created_at,
                         revoked_at=gateway.revoked_at)


@router.post("/gateways", response_model=GatewayCreated, status_code=201, summary="Register a field gateway")
def create_gateway(body: GatewayCreate, admin: AdminDep, accounts: AccountsDep) -> GatewayCreated:
    """Registers a gateway that posts readings to ``/v1/ingest/readings`` for the stations listed; its key
    (``sbg_…``) is in this answer only. To change its stations or key, register a new one and revoke this one."""
    try:
        gateway, key = accounts.create_gateway(body.name, body.stations, body.exercise)
    except AccountError as error:
        raise _error(error) from None
    accounts.audit("admin", admin.name, "gateway.create", gateway.gateway_id,
                   {"name": body.name, "stations": list(gateway.stations), "exercise": body.exercise}, admin.remote)
    return GatewayCreated(gateway=gateway_public(gateway), api_key=key)


@router.get("/gateways", response_model=GatewayList, summary="List field gateways (revoked ones too)")
def list_gateways(admin: AdminDep, accounts: AccountsDep) -> GatewayList:
    items = [gateway_public(g) for g in accounts.list_gateways()]
    return GatewayList(count=len(items), data=items)


@router.get("/gateways/{gateway_id}", response_model=GatewayPublic, summary="One field gateway")
def get_gateway(gateway_id: GatewayId, admin: AdminDep, accounts: AccountsDep) -> GatewayPublic:
    gateway = accounts.get_gateway(gateway_id)
    if gateway is None:
        raise HTTPException(status_code=404, detail=f"no gateway {gateway_id!r}")
    return gateway_public(gateway)


@router.delete("/gateways/{gateway_id}", response_model=GatewayPublic, summary="Revoke a field gateway's key")
def revoke_gateway(gateway_id: GatewayId, admin: AdminDep, accounts: AccountsDep) -> GatewayPublic:
    try:
        gateway = accounts.revoke_gateway(gateway_id)
    except AccountError as error:
        raise _error(error) from None
    accounts.audit("admin", admin.name, "gateway.revoke", gateway_id, {}, admin.remote)
    return gateway_public(gateway)


@router.post("/officers", response_model=OfficerPublic, status_code=201, summary="Register a duty officer")
def create_officer(body: OfficerCreate, admin: AdminDep, accounts: AccountsDep) -> OfficerPublic:
    """The password (12+ characters) is stored as a scrypt hash."""
    try:
        officer = accounts.create_officer(body.username, body.display_name, body.password, body.role)
    except AccountError as error:
        raise _error(error) from None
    accounts.audit("admin", admin.name, "officer.create", body.username, {"role": body.role}, admin.remote)
    return officer_public(officer)


@router.get("/officers", response_model=OfficerList, summary="List duty officers")
def list_officers(admin: AdminDep, accounts: AccountsDep) -> OfficerList:
    officers = [officer_public(o) for o in accounts.list_officers()]
    return OfficerList(count=len(officers), data=officers)


@router.patch("/officers/{username}", response_model=OfficerPublic, summary="Change a duty officer")
def update_officer(username: Username, body: OfficerAccountUpdate, admin: AdminDep,
                   accounts: AccountsDep) -> OfficerPublic:
    """Disable, set a new password or change the role; disabling or a new password ends the officer's sessions."""
    try:
        officer = accounts.update_officer(username, disabled=body.disabled, password=body.password, role=body.role)
    except AccountError as error:
        raise _error(error) from None
    detail = body.model_dump(exclude_none=True, exclude={"password"})
    if body.password is not None:
        detail["password"] = "changed"
    accounts.audit("admin", admin.name, "officer.update", username, detail, admin.remote)
    return officer_public(officer)


@router.get("/audit", response_model=AuditList, summary="The audit log, oldest first")
def audit(admin: AdminDep, accounts: AccountsDep,
          after_id: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
          actor: Annotated[str | None, Query(max_length=128)] = None,
          action: Annotated[str | None, Query(max_length=64)] = None,
          limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> AuditList:
    """Who did what: admin changes, partner subscriptions and replays, officer logins and actions."""
    entries = [audit_public(e) for e in accounts.audit_entries(limit=limit, after_id=after_id, actor=actor,
                                                                action=action)]
    return AuditList(count=len(entries), data=entries)
