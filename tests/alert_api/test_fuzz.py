"""A bounded property-based fuzz of the whole OpenAPI document (schemathesis, in process): no request, however
odd, may get a 500.

Every operation of ``/openapi.json`` gets ``EXAMPLES`` generated requests (valid and invalid ones, as
schemathesis makes them, with a fixed seed so a run is repeatable), each sent with the admin key, a partner key
(every scope) or a duty officer's session, so that the checks behind authentication are reached too. The store
holds alerts (an exercise and an actual one) for the routes that read them. About a minute on the project's
machine; ``SUIBOU_FUZZ_EXAMPLES`` sets another number of examples per operation.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st

from alert_api import create_app
from alert_api.accounts import AccountStore
from alert_api.store import SqlAlertStore
from suibou.contracts import AlertLevel
from suibou.settings import Settings

from .conftest import ADMIN, api_settings

EXAMPLES = int(os.environ.get("SUIBOU_FUZZ_EXAMPLES", "12"))
SEED = 19


def test_no_request_gets_a_500(tmp_path: Path, make_alert: Callable[..., Any]) -> None:
    store = SqlAlertStore(f"sqlite:///{tmp_path / 'db' / 'alerts.db'}")
    store.add(make_alert("A-FUZZ", level=AlertLevel.DANGER))
    store.add(make_alert("A-ACTUAL", area_id="R-ACTUAL", exercise=False, drill_id=None))
    accounts = AccountStore(store.db)
    _, key = accounts.create_partner("fuzz", ["alerts:read", "webhooks:receive", "exercises"], 1_000_000)
    accounts.create_officer("duty", "Duty", "correct horse battery staple")
    login = accounts.login("duty", "correct horse battery staple")
    assert login is not None
    callers = {"admin": ADMIN, "partner": {"Authorization": f"Bearer {key}"},
               "officer": {"Authorization": f"Bearer {login[1]}"}}
    config = api_settings(login_attempts_per_client_per_minute=10_000, login_attempts_per_minute=100_000)
    app = create_app(Settings(home=tmp_path), store=store, start_consumer=False, api_settings=config,
                     start_webhooks=False)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    statuses: dict[int, int] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @hypothesis.settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                             suppress_health_check=list(hypothesis.HealthCheck),
                             phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])
        @hypothesis.seed(SEED)
        @hypothesis.given(case=operation.as_strategy(), who=st.sampled_from(sorted(callers)))
        def fuzz(case: Any, who: str) -> None:
            case.headers = {**(case.headers or {}), **callers[who]}
            response = case.call()
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                failures.append(f"{response.status_code} {case.method} {case.formatted_path} as {who}: "
                                f"{response.text[:200]} -- reproduce: {case.as_curl_command()}")

        fuzz()
    store.close()
    assert operations >= 30 and sum(statuses.values()) >= operations * min(EXAMPLES, 4), statuses
    assert set(statuses) & {200, 201, 204}, statuses  # requests got through authentication and validation
    assert not failures, "\n".join(failures[:20])


@pytest.mark.parametrize("examples", [EXAMPLES])
def test_the_fuzz_is_bounded(examples: int) -> None:
    assert 1 <= examples <= 200
