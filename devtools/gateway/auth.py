"""API Gateway's TOKEN authorizer semantics for the local gateway, with its result cache.

What API Gateway does and this module does too:
- no or an empty identity source header → 401 without calling the authorizer;
- the authorizer raises `Exception("Unauthorized")` → 401; any other exception, or a result
  that is not a policy → AUTHORIZER_FAILURE / AUTHORIZER_CONFIGURATION_ERROR (the template
  maps both to 503);
- the returned policy is evaluated against the method ARN (an explicit Deny wins) → 403 when
  it does not allow the call;
- the policy and context are cached per token for the authorizer's `ttl_seconds` (a revoked
  key keeps working until then; a key never seen before is never in the cache).

Chalice's `LocalGatewayAuthorizer` has no cache, answers 401/403 in API Gateway's own
bodies and lets authorizer exceptions escape, so only its ARN helpers are reused here.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalice.app import ChaliceAuthorizer
from chalice.local import ARNMatcher, LocalARNBuilder

# Bounded so that a flood of random tokens cannot grow the cache without limit; API
# Gateway's cache is bounded too (and evicts the least recently used entries).
MAX_CACHED_TOKENS = 10_000
DEFAULT_TTL_SECONDS = 300  # API Gateway's default authorizer result TTL


class AuthorizerError(Exception):
    """The authorizer step refused the call (401, 403) or failed (503)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Policy:
    """An authorizer's answer as API Gateway keeps it in its cache."""

    principal_id: str
    context: dict[str, str]
    statements: tuple[dict[str, Any], ...]

    def allows(self, method_arn: str) -> bool:
        """Explicit Deny first, then any Allow of execute-api:Invoke matching the ARN."""
        matcher = ARNMatcher(method_arn)
        allowed = False
        for statement in self.statements:
            actions = statement.get("Action", [])
            actions = [actions] if isinstance(actions, str) else list(actions)
            if not {"execute-api:Invoke", "execute-api:*", "*"} & set(actions):
                continue
            resources = statement.get("Resource", [])
            resources = [resources] if isinstance(resources, str) else list(resources)
            if not matcher.does_any_resource_match(resources):
                continue
            if statement.get("Effect") == "Deny":
                return False
            allowed = allowed or statement.get("Effect") == "Allow"
        return allowed


# Calls the authorizer function with its event, under its own timeout; returns its result.
Invoker = Callable[[ChaliceAuthorizer, dict[str, Any]], Any]


class TokenAuthorizers:
    """Runs the routes' Chalice authorizers as API Gateway runs TOKEN authorizers."""

    def __init__(self, invoke: Invoker, clock: Callable[[], float] = time.monotonic) -> None:
        self._invoke, self._clock = invoke, clock
        self._cache: OrderedDict[tuple[str, str], tuple[float, Policy]] = OrderedDict()
        self._lock = threading.Lock()
        self._arns = LocalARNBuilder()

    def authorize(self, authorizer: ChaliceAuthorizer, token: str | None, method: str, path: str) -> dict[str, str]:
        """The `requestContext.authorizer` of an allowed call, or raise AuthorizerError."""
        if token is None or not token.strip():
            raise AuthorizerError(401, "missing credentials: send an Authorization header")
        method_arn = self._arns.build_arn(method, path)
        policy = self._cached(authorizer.name, token) or self._call(authorizer, token, method_arn)
        if not policy.allows(method_arn):
            raise AuthorizerError(403, "these credentials may not call this route")
        return {**policy.context, "principalId": policy.principal_id}

    def forget(self) -> None:
        """Empty the cache (a fresh deployment of the API does the same)."""
        with self._lock:
            self._cache.clear()

    def _cached(self, name: str, token: str) -> Policy | None:
        with self._lock:
            hit = self._cache.get((name, token))
            if hit is None:
                return None
            if hit[0] <= self._clock():
                del self._cache[(name, token)]
                return None
            self._cache.move_to_end((name, token))
            return hit[1]

    def _call(self, authorizer: ChaliceAuthorizer, token: str, method_arn: str) -> Policy:
        event = {"type": "TOKEN", "authorizationToken": token, "methodArn": method_arn}
        try:
            result = self._invoke(authorizer, event)
        except AuthorizerError:
            raise
        except Exception as exc:  # whatever the authorizer raises, API Gateway answers for it
            if str(exc) == "Unauthorized":
                raise AuthorizerError(401, "invalid credentials") from exc
            raise AuthorizerError(503, "the authorizer failed; try again") from exc
        policy = _policy(result)
        ttl = authorizer.config.ttl_seconds if authorizer.config.ttl_seconds is not None else DEFAULT_TTL_SECONDS
        if ttl > 0:
            with self._lock:
                self._cache[(authorizer.name, token)] = (self._clock() + ttl, policy)
                self._cache.move_to_end((authorizer.name, token))
                while len(self._cache) > MAX_CACHED_TOKENS:
                    self._cache.popitem(last=False)
        return policy


def _policy(result: Any) -> Policy:
    """API Gateway's checks of an authorizer's answer (AUTHORIZER_CONFIGURATION_ERROR → 503)."""
    bad = AuthorizerError(503, "the authorizer returned an invalid answer")
    if not isinstance(result, dict) or not isinstance(result.get("principalId"), str):
        raise bad
    document = result.get("policyDocument")
    statements = document.get("Statement") if isinstance(document, dict) else None
    statements = [statements] if isinstance(statements, dict) else statements
    if not isinstance(statements, list) or not all(isinstance(s, dict) for s in statements):
        raise bad
    raw_context = result.get("context") or {}
    if not isinstance(raw_context, dict):
        raise bad
    context: dict[str, str] = {}
    for key, value in raw_context.items():
        if isinstance(value, bool):  # API Gateway passes context values to the integration as strings
            context[str(key)] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            context[str(key)] = str(value)
        else:  # objects and arrays are refused by API Gateway
            raise bad
    return Policy(result["principalId"], context, tuple(statements))
