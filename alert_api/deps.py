"""FastAPI dependencies of the alert API, as ``Annotated`` aliases: components and callers.

Components (store, accounts, outbox, hazard index, roads, console) live on
``app.state``, set up by the application's lifespan; tests swap them through
``app.dependency_overrides``.

Every ``/v1`` route needs ``Authorization: Bearer <token>``, one of:

- a partner API key (``sbk_…``), with scopes ``alerts:read``,
  ``webhooks:receive`` and ``exercises``, and a rate limit;
- a duty officer's session token (``sbs_…``, from ``POST /v1/officer/login``);
- the admin key (``SUIBOU_ADMIN_KEY``, or the generated key file).

Field gateways' keys (``sbg_…``) work only on ``/v1/ingest`` (:func:`require_gateway`);
every other route refuses them.

Officers and the admin see exercise alerts; a partner sees them only with the
``exercises`` scope.
"""

from __future__ import annotations

import dataclasses
import hmac
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from alert_api.accounts import AccountStore, Gateway, Officer, Partner
from alert_api.clientaddr import client_address
from alert_api.config import AlertApiSettings
from alert_api.console import Console
from alert_api.consumer import AlertConsumer
from alert_api.formats.cifs import Roads
from alert_api.geo import HazardIndexCache
from alert_api.ingest import IngestService
from alert_api.jobs import JobBoard, JobHealth, describe_job
from alert_api.limits import RateLimiter
from alert_api.metrics import ApiMetrics
from alert_api.security import GATEWAY_KEY_PREFIX
from alert_api.store import SCOPE_EXERCISES, SCOPE_METRICS, SCOPE_READ, SCOPE_WEBHOOKS, AlertStore
from alert_api.webhooks import DeliveryWorker, Outbox


def client_of(request: Request) -> str | None:
    """The client's address: the connection's, or ``X-Forwarded-For`` from a trusted proxy
    (:mod:`alert_api.clientaddr`)."""
    peer = request.client.host if request.client else None
    trusted = getattr(request.app.state, "trusted_proxies", [])
    return client_address(peer, request.headers.get("x-forwarded-for"), trusted)


def get_store(request: Request) -> AlertStore:
    store: AlertStore = request.app.state.store
    return store


def get_consumer(request: Request) -> AlertConsumer | None:
    consumer: AlertConsumer | None = getattr(request.app.state, "consumer", None)
    return consumer


def get_accounts(request: Request) -> AccountStore:
    accounts: AccountStore = request.app.state.accounts
    return accounts


def get_outbox(request: Request) -> Outbox:
    outbox: Outbox = request.app.state.outbox
    return outbox


def get_worker(request: Request) -> DeliveryWorker | None:
    worker: DeliveryWorker | None = getattr(request.app.state, "worker", None)
    return worker


def get_index(request: Request) -> HazardIndexCache:
    index: HazardIndexCache = request.app.state.index_cache
    return index


def get_roads(request: Request) -> Roads:
    roads: Roads = request.app.state.roads
    return roads


def get_api_config(request: Request) -> AlertApiSettings:
    config: AlertApiSettings = request.app.state.api_settings
    return config


def get_console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def get_metrics(request: Request) -> ApiMetrics:
    metrics: ApiMetrics = request.app.state.metrics
    return metrics


def get_ingest(request: Request) -> IngestService:
    ingest: IngestService = request.app.state.ingest
    return ingest


def get_jobs(request: Request) -> JobBoard:
    jobs: JobBoard = request.app.state.jobs
    return jobs


def get_live_job(request: Request) -> JobHealth:
    """The live fusion job judged now, by the app's clock and the configured bounds."""
    config: AlertApiSettings = request.app.state.api_settings
    jobs: JobBoard = request.app.state.jobs
    return describe_job(jobs.latest(), request.app.state.clock(), not_seen_after_s=config.job_not_seen_s,
                        behind_after_s=config.job_behind_s)


StoreDep = Annotated[AlertStore, Depends(get_store)]
ConsumerDep = Annotated[AlertConsumer | None, Depends(get_consumer)]
AccountsDep = Annotated[AccountStore, Depends(get_accounts)]
OutboxDep = Annotated[Outbox, Depends(get_outbox)]
WorkerDep = Annotated[DeliveryWorker | None, Depends(get_worker)]
IndexDep = Annotated[HazardIndexCache, Depends(get_index)]
RoadsDep = Annotated[Roads, Depends(get_roads)]
ApiConfigDep = Annotated[AlertApiSettings, Depends(get_api_config)]
ConsoleDep = Annotated[Console, Depends(get_console)]
MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]
IngestDep = Annotated[IngestService, Depends(get_ingest)]
JobsDep = Annotated[JobBoard, Depends(get_jobs)]
LiveJobDep = Annotated[JobHealth, Depends(get_live_job)]


# --------------------------------------------------------------------------- callers


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who is calling.

    Attributes:
        kind: ``admin``, ``partner`` or ``officer``.
        name: Partner id, officer user name, or ``admin``.
        partner: The partner, for a partner key.
        officer: The officer, for a session token.
        token: The bearer token (to end an officer's session).
        remote: Client address, for the audit log.
    """

    kind: Literal["admin", "partner", "officer"]
    name: str
    partner: Partner | None = None
    officer: Officer | None = None
    token: str = dataclasses.field(default="", repr=False)
    remote: str | None = None

    @property
    def sees_exercises(self) -> bool:
        """Officers and admins see exercises; partners only with the ``exercises`` scope."""
        return self.partner is None or SCOPE_EXERCISES in self.partner.scopes

    def has_scope(self, scope: str) -> bool:
        return self.partner is None or scope in self.partner.scopes


bearer = HTTPBearer(
    auto_error=False,
    description="A partner API key (sbk_…), an officer session token (sbs_…) or the admin key.",
)


def _unauthorised(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def get_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    """Authenticates the bearer token and applies the partner's rate limit.

    Raises:
        HTTPException: 401 without a valid token; 429 over the rate limit.
    """
    if credentials is None or not credentials.credentials:
        raise _unauthorised("an Authorization: Bearer token is required")
    token = credentials.credentials
    remote = client_of(request)
    accounts: AccountStore = request.app.state.accounts
    if token.startswith("sbk_"):
        partner = accounts.authenticate_key(token)
        if partner is None:
            raise _unauthorised("unknown, revoked or disabled API key")
        limiter: RateLimiter = request.app.state.limiter
        wait = limiter.take(partner.partner_id, partner.rate_limit_per_minute)
        if wait:
            raise HTTPException(status_code=429, detail="rate limit exceeded",
                                headers={"Retry-After": str(int(wait))})
        return Principal("partner", partner.partner_id, partner=partner, token=token, remote=remote)
    if token.startswith("sbs_"):
        officer = accounts.authenticate_session(token)
        if officer is None:
            raise _unauthorised("unknown, expired or ended session")
        return Principal("officer", officer.username, officer=officer, token=token, remote=remote)
    admin_key: str = request.app.state.admin_key
    if admin_key and hmac.compare_digest(token.encode(), admin_key.encode()):
        return Principal("admin", "admin", token=token, remote=remote)
    if token.startswith(f"{GATEWAY_KEY_PREFIX}_"):
        raise _unauthorised("gateway keys are for POST /v1/ingest/readings only")
    raise _unauthorised("unknown token")


def require_reader(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    """Anyone who may read alerts: a partner with ``alerts:read``, an officer, the admin."""
    if not principal.has_scope(SCOPE_READ):
        raise HTTPException(status_code=403, detail=f"this key lacks the {SCOPE_READ} scope")
    return principal


def require_partner(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if principal.partner is None:
        raise HTTPException(status_code=403, detail="this endpoint is for partner API keys")
    return principal


def require_webhook_partner(principal: Annotated[Principal, Depends(require_partner)]) -> Principal:
    if not principal.has_scope(SCOPE_WEBHOOKS):
        raise HTTPException(status_code=403, detail=f"this key lacks the {SCOPE_WEBHOOKS} scope")
    return principal


def require_admin(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if principal.kind != "admin":
        raise HTTPException(status_code=403, detail="this endpoint needs the admin key")
    return principal


def require_officer(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    """A logged-in duty officer of any role."""
    if principal.officer is None:
        raise HTTPException(status_code=403, detail="this endpoint needs a duty officer's session")
    return principal


def require_acting_officer(principal: Annotated[Principal, Depends(require_officer)]) -> Principal:
    """A logged-in duty officer whose role may act on alerts."""
    assert principal.officer is not None
    if principal.officer.role != "officer":
        raise HTTPException(status_code=403, detail=f"role {principal.officer.role!r} may not act on alerts")
    return principal


def require_metrics_reader(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    """The admin, or a partner key with the ``metrics:read`` scope (a Prometheus server)."""
    if principal.kind == "admin" or (principal.partner is not None and SCOPE_METRICS in principal.partner.scopes):
        return principal
    raise HTTPException(status_code=403, detail=f"metrics need the admin key or a key with the {SCOPE_METRICS} scope")


def require_gateway(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Gateway:
    """A field gateway's key (``sbg_…``), within the gateways' rate limit.

    Raises:
        HTTPException: 401 without a valid, unrevoked gateway key; 429 over the rate limit.
    """
    if credentials is None or not credentials.credentials:
        raise _unauthorised("an Authorization: Bearer gateway key is required")
    accounts: AccountStore = request.app.state.accounts
    gateway = accounts.authenticate_gateway(credentials.credentials)
    if gateway is None:
        raise _unauthorised("unknown or revoked gateway key (gateway keys start with sbg_)")
    limiter: RateLimiter = request.app.state.limiter
    config: AlertApiSettings = request.app.state.api_settings
    wait = limiter.take(gateway.gateway_id, config.ingest_rate_limit_per_minute)
    if wait:
        raise HTTPException(status_code=429, detail="rate limit exceeded", headers={"Retry-After": str(int(wait))})
    return gateway


def require_staff(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    """A duty officer or the admin."""
    if principal.kind not in ("officer", "admin"):
        raise HTTPException(status_code=403, detail="this endpoint is for duty officers and admins")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
ReaderDep = Annotated[Principal, Depends(require_reader)]
PartnerDep = Annotated[Principal, Depends(require_partner)]
WebhookPartnerDep = Annotated[Principal, Depends(require_webhook_partner)]
AdminDep = Annotated[Principal, Depends(require_admin)]
OfficerDep = Annotated[Principal, Depends(require_officer)]
ActingOfficerDep = Annotated[Principal, Depends(require_acting_officer)]
StaffDep = Annotated[Principal, Depends(require_staff)]
MetricsReaderDep = Annotated[Principal, Depends(require_metrics_reader)]
GatewayDep = Annotated[Gateway, Depends(require_gateway)]
