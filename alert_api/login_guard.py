"""Officer logins under attack: throttles, a bounded password-hash gate, and a lockout nobody can aim.

A login costs one Argon2id hash (about 50-100 ms of a core and 19 MiB), so an
unauthenticated flood of logins would otherwise take the CPU from everyone
else. The rule, checked in this order before any hash is computed (each refusal
is 429 with ``Retry-After``):

1. **Per client address**: at most ``per_client_per_minute`` attempts (a token
   bucket), whatever the user name. This and the global ceiling (4) are checked
   by :class:`LoginThrottleMiddleware` before the request body is even read.
2. **Per (user name, client address)**: after ``pair_failures`` failed logins in
   5 minutes, that address may not try that user name again until the oldest of
   them is 5 minutes old. Only the address that failed is refused: a lockout
   cannot be aimed at an officer from elsewhere.
3. **Per user name, from every address**: once a user name has had
   ``user_failures`` failures in 5 minutes (a guessing campaign from many
   addresses), attempts on it are paced to one every ``user_pacing_s`` seconds.
   This slows guessing without ever locking the officer out: the officer's own
   attempt waits at most a few seconds, and an address that has logged in as that
   officer successfully before (since the API started) is not paced at all.
4. **Globally**: at most ``global_per_minute`` attempts reach the hash.
5. **Hash gate**: at most ``hash_concurrency`` hashes run at once, on a small
   worker pool of their own (never the event loop, never the pool that serves
   reads); at most ``hash_queue`` more wait for it, and anything beyond is refused
   at once, without hashing.

The state is in memory, per API process.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import json
import math
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from alert_api.clientaddr import client_address
from alert_api.limits import App, FailureCounter, RateLimiter, Receive, Scope, Send

T = TypeVar("T")

#: The failure window, seconds.
WINDOW_S = 300.0
#: Addresses remembered per user name as having logged in successfully.
MAX_TRUSTED_PER_USER = 32


@dataclasses.dataclass(frozen=True)
class Refusal:
    """Why a login attempt is refused, and after how many seconds to try again."""

    reason: str
    retry_after: int


@dataclasses.dataclass(frozen=True)
class LoginLimits:
    """Numbers of the rule (see the module docstring)."""

    per_client_per_minute: int = 20
    pair_failures: int = 10
    user_failures: int = 30
    user_pacing_s: float = 2.0
    global_per_minute: int = 120
    hash_concurrency: int = 1
    hash_queue: int = 4


class LoginGuard:
    """Decides whether a login attempt may be hashed, and records how it went.

    Args:
        limits: The numbers.
        clock: Monotonic seconds (tests pass a fake).

    Examples:
        >>> now = [0.0]
        >>> guard = LoginGuard(LoginLimits(pair_failures=2, user_failures=3, user_pacing_s=5), lambda: now[0])
        >>> for _ in range(2):
        ...     guard.failed("duty", "198.51.100.7")
        >>> guard.admit("duty", "198.51.100.7").reason
        'too many failed logins for this user name from this address'
        >>> guard.admit("duty", "192.0.2.1") is None  # the officer's own address is not locked out
        True
        >>> guard.failed("duty", "203.0.113.9")  # a third address: now the user name is paced
        >>> guard.admit("duty", "192.0.2.1") is None, guard.admit("duty", "192.0.2.1").retry_after
        (True, 5)
        >>> now[0] = 5.0
        >>> guard.admit("duty", "192.0.2.1") is None
        True
    """

    def __init__(self, limits: LoginLimits | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits or LoginLimits()
        self._clock = clock
        self._buckets = RateLimiter(clock)
        self._pair_failures = FailureCounter(WINDOW_S, clock)
        self._user_failures = FailureCounter(WINDOW_S, clock)
        self._lock = threading.Lock()
        self._paced_at: dict[str, float] = {}
        self._trusted: dict[str, collections.OrderedDict[str, None]] = {}
        self._calls = 0

    def _prune(self) -> None:
        """Keeps the state small under a flood from many addresses (every 4096 attempts)."""
        self._calls += 1
        if self._calls % 4096 == 0:
            self._buckets.prune(idle_s=WINDOW_S)
            self._pair_failures.prune()
            self._user_failures.prune()
            now = self._clock()
            with self._lock:
                self._paced_at = {k: t for k, t in self._paced_at.items() if now - t < WINDOW_S}

    def admit(self, username: str, client: str) -> Refusal | None:
        """``None`` if the attempt may go on to the hash, else why not. Takes a token from the buckets."""
        return self.admit_client(client) or self.admit_user(username, client)

    def admit_client(self, client: str) -> Refusal | None:
        """The checks that need no user name (rules 1 and 4), before the request body is read."""
        self._prune()
        wait = self._buckets.take(f"client:{client}", self.limits.per_client_per_minute)
        if wait:
            return Refusal("too many login attempts from this address", _seconds(wait))
        wait = self._buckets.wait("global", self.limits.global_per_minute)
        if wait:
            return Refusal("too many login attempts; try again shortly", _seconds(wait))
        return None

    def admit_user(self, username: str, client: str) -> Refusal | None:
        """Rules 2 to 4 (the global token is taken here, once the attempt will be hashed)."""
        limits = self.limits
        pair = f"{username}\x00{client}"
        if self._pair_failures.count(pair) >= limits.pair_failures:
            return Refusal("too many failed logins for this user name from this address",
                           _seconds(self._pair_failures.until_below(pair, limits.pair_failures)))
        if self._user_failures.count(username) >= limits.user_failures and not self.trusted(username, client):
            now = self._clock()
            with self._lock:
                last = self._paced_at.get(username)
                if last is not None and now - last < limits.user_pacing_s:
                    return Refusal("many failed logins for this user name; attempts are slowed",
                                   _seconds(limits.user_pacing_s - (now - last)))
                self._paced_at[username] = now
        wait = self._buckets.take("global", limits.global_per_minute)
        if wait:
            return Refusal("too many login attempts; try again shortly", _seconds(wait))
        return None

    def failed(self, username: str, client: str) -> None:
        self._pair_failures.add(f"{username}\x00{client}")
        self._user_failures.add(username)

    def succeeded(self, username: str, client: str) -> None:
        """Clears the address's failures for the user name and remembers the address as the officer's."""
        self._pair_failures.clear(f"{username}\x00{client}")
        with self._lock:
            trusted = self._trusted.setdefault(username, collections.OrderedDict())
            trusted[client] = None
            trusted.move_to_end(client)
            while len(trusted) > MAX_TRUSTED_PER_USER:
                trusted.popitem(last=False)

    def trusted(self, username: str, client: str) -> bool:
        with self._lock:
            return client in self._trusted.get(username, ())


def _seconds(wait: float) -> int:
    return max(1, math.ceil(wait))


class LoginThrottleMiddleware:
    """Refuses a login over the per-address or global rate before its body is read or validated.

    A flood of refused logins then costs little more than the HTTP exchange. Uses ``app.state.login_guard``
    and ``app.state.trusted_proxies``, set up by the application's lifespan.
    """

    def __init__(self, app: App, path: str = "/v1/officer/login") -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == self.path and scope["method"] == "POST":
            state = scope["app"].state
            guard: LoginGuard | None = getattr(state, "login_guard", None)
            if guard is not None:
                peer = scope["client"][0] if scope.get("client") else None
                forwarded = next((v.decode("latin-1") for k, v in scope.get("headers", [])
                                  if k == b"x-forwarded-for"), None)
                client = client_address(peer, forwarded, getattr(state, "trusted_proxies", [])) or "unknown"
                refusal = guard.admit_client(client)
                if refusal is not None:
                    body = json.dumps({"detail": refusal.reason}).encode()
                    await send({"type": "http.response.start", "status": 429, "headers": [
                        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                        (b"retry-after", str(refusal.retry_after).encode())]})
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)


class HashGate:
    """Runs password hashes on a pool of their own, at most ``concurrency`` at once and ``queue`` waiting.

    Args:
        concurrency: Hashes at once (threads of the pool).
        queue: Attempts that may wait for a thread; more are refused without hashing.
    """

    def __init__(self, concurrency: int = 1, queue: int = 4) -> None:
        self._capacity = concurrency + queue
        self._lock = threading.Lock()
        self._admitted = 0
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="login-hash")

    def try_enter(self) -> bool:
        with self._lock:
            if self._admitted >= self._capacity:
                return False
            self._admitted += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._admitted -= 1

    async def run(self, function: Callable[..., T], *args: object) -> T:
        """Runs ``function(*args)`` on the gate's pool (the caller has entered)."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, function, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


__all__ = ["WINDOW_S", "HashGate", "LoginGuard", "LoginLimits", "LoginThrottleMiddleware", "Refusal"]
