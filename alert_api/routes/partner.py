"""``/v1/partner``: a partner's own account, webhook subscription, deliveries and dead letters.

Every route acts on the partner the API key belongs to; there is no partner id
in these paths, so no key can reach another partner's data.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response

from alert_api.accounts import Partner
from alert_api.deps import AccountsDep, ApiConfigDep, OutboxDep, PartnerDep, WebhookPartnerDep, WorkerDep
from alert_api.models import check_bbox
from alert_api.schemas import (
    DeliveryList,
    DeliveryPublic,
    PartnerPublic,
    ReplayRequest,
    ReplayResult,
    WebhookPublic,
    WebhookSubscription,
)
from alert_api.webhooks import Delivery, UnsafeUrl, check_url

router = APIRouter(prefix="/v1/partner", tags=["partner"])


def partner_public(partner: Partner) -> PartnerPublic:
    return PartnerPublic(
        partner_id=partner.partner_id, name=partner.name, scopes=sorted(partner.scopes),  # type: ignore[arg-type]
        rate_limit_per_minute=partner.rate_limit_per_minute, webhook_url=partner.webhook_url,
        webhook_bbox=list(partner.webhook_bbox) if partner.webhook_bbox else None, disabled=partner.disabled,
        created_at=partner.created_at,
    )


def delivery_public(delivery: Delivery) -> DeliveryPublic:
    return DeliveryPublic(
        event_id=delivery.event_id, webhook_id=delivery.webhook_id, status=delivery.status,  # type: ignore[arg-type]
        attempts=delivery.attempts, next_attempt_at=delivery.next_attempt_at, last_error=delivery.last_error,
        last_status=delivery.last_status, created_at=delivery.created_at, delivered_at=delivery.delivered_at,
    )


def _webhook(partner: Partner) -> WebhookPublic:
    assert partner.webhook_secret is not None
    return WebhookPublic(url=partner.webhook_url, bbox=list(partner.webhook_bbox) if partner.webhook_bbox else None,
                         secret=partner.webhook_secret)


@router.get("", response_model=PartnerPublic, summary="This partner's account")
def me(principal: PartnerDep) -> PartnerPublic:
    assert principal.partner is not None
    return partner_public(principal.partner)


@router.put("/webhook", response_model=WebhookPublic, summary="Subscribe to webhooks (or change the URL)",
            responses={403: {"description": "Key lacks webhooks:receive"},
                       422: {"description": "URL not allowed (https only, public hosts only) or not valid"}})
def subscribe(body: WebhookSubscription, principal: WebhookPartnerDep, accounts: AccountsDep,
              config: ApiConfigDep, request: Request) -> WebhookPublic:
    """Every message published from now on is POSTed to ``url``, signed per Standard Webhooks with
    the ``secret`` in the answer (exercise messages only with the ``exercises`` scope).

    The URL is normalised (surrounding whitespace dropped, IDNA host, dotted-quad IPv4, percent-encoded
    path) and its host resolved: every address must be public. The answer's ``url`` is what is stored
    and called."""
    assert principal.partner is not None
    try:
        url = check_url(body.url, allow_insecure=config.webhook_allow_insecure, resolver=request.app.state.resolver)
        bbox = check_bbox((body.bbox[0], body.bbox[1], body.bbox[2], body.bbox[3])) if body.bbox else None
    except (UnsafeUrl, ValueError) as error:
        raise HTTPException(status_code=422, detail=str(error)) from None
    partner = accounts.set_webhook(principal.partner.partner_id, url, bbox)
    accounts.audit("partner", partner.partner_id, "webhook.subscribe", partner.partner_id,
                   {"url": url, "bbox": list(bbox) if bbox else None}, principal.remote)
    return _webhook(partner)


@router.get("/webhook", response_model=WebhookPublic, summary="The webhook subscription and its signing secret")
def get_webhook(principal: WebhookPartnerDep) -> WebhookPublic:
    assert principal.partner is not None
    return _webhook(principal.partner)


@router.delete("/webhook", status_code=204, response_class=Response, summary="Unsubscribe from webhooks")
def unsubscribe(principal: WebhookPartnerDep, accounts: AccountsDep) -> Response:
    """No more messages are queued for this partner; queued ones wait until it subscribes again."""
    assert principal.partner is not None
    accounts.clear_webhook(principal.partner.partner_id)
    accounts.audit("partner", principal.name, "webhook.unsubscribe", principal.name, remote=principal.remote)
    return Response(status_code=204)


@router.post("/webhook/rotate-secret", response_model=WebhookPublic, summary="Replace the signing secret")
def rotate_secret(principal: WebhookPartnerDep, accounts: AccountsDep) -> WebhookPublic:
    assert principal.partner is not None
    accounts.rotate_webhook_secret(principal.partner.partner_id)
    accounts.audit("partner", principal.name, "webhook.rotate_secret", principal.name, remote=principal.remote)
    partner = accounts.get_partner(principal.partner.partner_id)
    assert partner is not None
    return _webhook(partner)


@router.get("/webhook/deliveries", response_model=DeliveryList, summary="Recent deliveries, newest first")
def deliveries(principal: WebhookPartnerDep, outbox: OutboxDep,
               status: Annotated[Literal["pending", "delivered", "dead"] | None, Query()] = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> DeliveryList:
    items = [delivery_public(d) for d in outbox.deliveries(principal.name, status=status, limit=limit)]
    return DeliveryList(count=len(items), data=items)


@router.get("/webhook/dead-letters", response_model=DeliveryList, summary="Deliveries that gave up")
def dead_letters(principal: WebhookPartnerDep, outbox: OutboxDep,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> DeliveryList:
    """Messages whose every attempt failed; replay them once the receiver works again."""
    items = [delivery_public(d) for d in outbox.deliveries(principal.name, status="dead", limit=limit)]
    return DeliveryList(count=len(items), data=items)


@router.post("/webhook/dead-letters/replay", response_model=ReplayResult, summary="Send dead letters again")
def replay(body: ReplayRequest, principal: WebhookPartnerDep, outbox: OutboxDep, accounts: AccountsDep,
           worker: WorkerDep) -> ReplayResult:
    """Queues the dead letters again (all, or ``event_ids``), in their original order, under their
    original ``webhook-id``."""
    count = outbox.replay(principal.name, body.event_ids)
    accounts.audit("partner", principal.name, "webhook.replay", principal.name,
                   {"event_ids": body.event_ids, "replayed": count}, principal.remote)
    if worker is not None:
        worker.wake()
    return ReplayResult(replayed=count)
