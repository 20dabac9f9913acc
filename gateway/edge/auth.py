"""Optional authentication: an API key, or the SigV4 signature that boto3 already sends.

Off by default, with the gateway bound to 127.0.0.1. ``TANDEM_AUTH=api-key`` accepts
``X-Api-Key: <key>`` or ``Authorization: Bearer <key>``; ``TANDEM_AUTH=sigv4`` recomputes the
AWS Signature Version 4 over the received request with the secret of the access key it names, so
an unchanged ``boto3`` client with those credentials just works. SigV4 is short enough to do with
hashlib/hmac; botocore stays a client-side library. ``/ping`` stays open for health checks, and
``/metrics`` when ``TANDEM_METRICS_OPEN=true`` (for a Prometheus that cannot sign).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import logging
import re
import time
from calendar import timegm
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.credentials import ADMIN, INVOKE
from gateway.edge.errors import error_response
from gateway.edge.hotpath import read_body
from gateway.errors import (
    AccessDenied,
    ApiError,
    IncompleteSignature,
    InvalidSignature,
    MissingAuthentication,
    UnrecognizedClient,
)
from gateway.settings import GatewaySettings

log = logging.getLogger("tandem.gateway")

#: SageMaker's own services refuse signatures dated further than this from their clock.
MAX_CLOCK_SKEW = 15 * 60
#: The service name boto3's ``sagemaker-runtime`` client signs for.
SERVICE = "sagemaker"
#: Every service the gateway's port answers for, by the name its clients sign for (``logs``:
#: CloudWatch Logs' read side; ``monitoring``: CloudWatch, botocore's ``signingName`` for it).
#: The X-Amz-Target prefix of another AWS service on the port -> its name in an IAM action.
_SIGNING_NAMES = {"Logs": "logs", "AnyScaleFrontendService": "application-autoscaling"}
SERVICES = frozenset({SERVICE, "logs", "monitoring", "application-autoscaling"})
ALGORITHM = "AWS4-HMAC-SHA256"
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-fA-F]{64})\s*$"
)


#: Where an authenticated request's role is kept (``request.state``).
ROLE = "tandem_role"


def role_of(scope: Scope, settings: GatewaySettings) -> str:
    """The request's role: its key's, or ``admin`` when authentication is off."""
    if settings.auth == "none":
        return ADMIN
    return str(scope.get("state", {}).get(ROLE, INVOKE))


def caller_role(scope: Scope, settings: GatewaySettings) -> str:
    """``role_of``, except that nobody is ``admin`` on an address other machines can reach
    without authentication: what only an admin may do stays refused there."""
    if settings.auth == "none" and not _loopback(settings.host):
        return INVOKE
    return role_of(scope, settings)


def loopback(host: str) -> bool:
    return _loopback(host)


def auth_middleware(settings: GatewaySettings) -> list[Middleware]:
    """The middleware list for ``Starlette(middleware=...)``; empty when auth is off."""
    if settings.auth == "none":
        if _loopback(settings.host):
            log.info(
                "no authentication; listening on %s only, so other machines cannot connect "
                "(set TANDEM_HOST and TANDEM_AUTH to serve a network)",
                settings.host,
            )
        else:
            log.warning(
                "listening on %s WITHOUT authentication: anyone who can reach it can invoke "
                "every endpoint (set TANDEM_AUTH=api-key or sigv4)",
                settings.host,
            )
        return []
    open_paths = {"/ping", "/metrics"} if settings.metrics_open else {"/ping"}
    if settings.auth == "api-key":
        keys = dict(settings.credentials.api_keys)
        log.info("authentication: API key (%d keys); open: %s", len(keys), sorted(open_paths))
        return [Middleware(AuthMiddleware, check=ApiKeyCheck(keys), open_paths=open_paths)]
    secrets = dict(settings.credentials.sigv4)
    roles = dict(settings.credentials.sigv4_roles)
    log.info("authentication: SigV4 (%d access keys); open: %s", len(secrets), sorted(open_paths))
    check = SigV4Check(secrets, settings.max_payload, roles)
    return [Middleware(AuthMiddleware, check=check, open_paths=open_paths)]


@functools.lru_cache(maxsize=64)
def _loopback(host: str) -> bool:
    """Cached: ``caller_role`` asks it of the gateway's own host on every asynchronous call,
    and parsing the address was a tenth of the 202's Python."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ApiKeyCheck:
    needs_body = False

    def __init__(self, keys: Mapping[str, str]) -> None:
        self._keys = [(key.encode(), role) for key, role in keys.items()]

    def __call__(self, scope: Scope, body: bytes) -> str:
        """The role of the request's key; raises when it has none or an unknown one."""
        headers = dict(scope["headers"])
        given = headers.get(b"x-api-key")
        if given is None:
            scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
            given = token.strip() if scheme.lower() == b"bearer" else None
        if not given:
            raise MissingAuthentication(
                "Missing API key: send it as 'X-Api-Key: <key>' or 'Authorization: Bearer <key>'."
            )
        # Compare with every key, always: the time taken says nothing about which one matched.
        matched = [role for key, role in self._keys if hmac.compare_digest(given, key)]
        if not matched:
            raise UnrecognizedClient("The API key included in the request is invalid.")
        return matched[0]


class SigV4Check:
    needs_body = True

    def __init__(
        self, secrets: dict[str, str], max_payload: int, roles: Mapping[str, str] | None = None
    ) -> None:
        self._secrets = secrets
        self._roles = roles or {}
        self.max_payload = max_payload

    def precheck(self, scope: Scope) -> None:
        """What can be refused before reading the body: no or malformed header, unknown key."""
        self._parse(dict(scope["headers"]))

    def __call__(self, scope: Scope, body: bytes) -> str:
        """The role of the signing access key; raises unless the signature is right."""
        headers = dict(scope["headers"])
        access, date, region, service, signed, signature = self._parse(headers)
        amz_date = headers.get(b"x-amz-date", b"").decode("latin-1")
        if not re.fullmatch(r"\d{8}T\d{6}Z", amz_date) or amz_date[:8] != date:
            raise IncompleteSignature(
                "The request must carry an X-Amz-Date header (YYYYMMDDTHHMMSSZ) matching the "
                "date of the credential scope."
            )
        if b"host" not in signed or b"x-amz-date" not in signed:
            raise IncompleteSignature("SignedHeaders must include host and x-amz-date.")
        skew = abs(time.time() - timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ")))
        if skew > MAX_CLOCK_SKEW:
            raise InvalidSignature(
                f"Signature expired: {amz_date} is more than {MAX_CLOCK_SKEW // 60} minutes "
                "away from the gateway's clock."
            )
        scope_text = f"{date}/{region}/{service}/aws4_request"
        canonical = canonical_request(scope, signed, hashlib.sha256(body).hexdigest())
        to_sign = "\n".join(
            (ALGORITHM, amz_date, scope_text, hashlib.sha256(canonical.encode()).hexdigest())
        )
        key = signing_key(self._secrets[access], date, region, service)
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise InvalidSignature(
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method."
            )
        return self._roles.get(access, INVOKE)

    def _parse(self, headers: dict[bytes, bytes]) -> tuple[str, str, str, str, list[bytes], str]:
        raw = headers.get(b"authorization")
        if raw is None:
            raise MissingAuthentication(
                "Missing Authentication Token: sign requests with AWS Signature Version 4 "
                "(boto3 does when given credentials)."
            )
        match = _AUTHORIZATION.match(raw.decode("latin-1"))
        if match is None:
            raise IncompleteSignature(
                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
                f"parameters of the {ALGORITHM} algorithm."
            )
        parts = match["credential"].split("/")
        if len(parts) != 5 or parts[4] != "aws4_request" or not re.fullmatch(r"\d{8}", parts[1]):
            raise IncompleteSignature(
                "Credential must have the form <access key>/<YYYYMMDD>/<region>/<service>/"
                "aws4_request."
            )
        access, date, region, service, _ = parts
        if access not in self._secrets:
            raise UnrecognizedClient("The security token included in the request is invalid.")
        if service not in SERVICES:
            raise InvalidSignature(f"Credential should be scoped to service '{SERVICE}'.")
        signed = match["signed"].lower().encode("latin-1").split(b";")
        return access, date, region, service, signed, match["signature"]


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def canonical_request(scope: Scope, signed: list[bytes], payload_hash: str) -> str:
    """SigV4's canonical request, as botocore builds it for a non-S3 service."""
    raw_path = scope.get("raw_path") or scope["path"].encode()
    # botocore quotes the already-encoded path once more (everything but S3 is double-encoded).
    path = quote(raw_path.decode("latin-1") or "/", safe="/~")
    pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(pairs))
    values: dict[bytes, list[str]] = {}
    for name, value in scope["headers"]:
        values.setdefault(name.lower(), []).append(" ".join(value.decode("latin-1").split()))
    names = sorted(signed)
    headers = "".join(f"{n.decode()}:{','.join(values.get(n, []))}\n" for n in names)
    return "\n".join(
        (scope["method"], path, query, headers, ";".join(n.decode() for n in names), payload_hash)
    )


class AuthMiddleware:
    """Pure ASGI: refuses before the app sees the request; replays the body it had to read."""

    def __init__(self, app: ASGIApp, check: ApiKeyCheck | SigV4Check, open_paths: set[str]) -> None:
        self.app = app
        self.check = check
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        check = self.check
        try:
            if not isinstance(check, SigV4Check):
                role = check(scope, b"")
            else:
                check.precheck(scope)
                length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
                body = await read_body(receive, length, check.max_payload)
                if body is None:
                    return  # the client left
                role = check(scope, body)
                receive = _replay(body, receive)
        except ApiError as exc:
            await error_response(exc)(scope, receive, send)
            return
        scope.setdefault("state", {})[ROLE] = role  # the control plane wants ``admin``
        await self.app(scope, receive, send)


def _replay(body: bytes, original: Receive) -> Receive:
    """The body already read, once; then the client's own channel (for its disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await original()

    return receive


class AdminOnly:
    """The control plane's guard: it runs code, so it is the ``admin`` role's alone, and on an
    address other machines can reach it needs authentication to be on at all."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.open_network = settings.auth == "none" and not loopback(settings.host)

    def __call__(self, request: Request) -> None:
        service, _, name = request.headers.get("x-amz-target", "").partition(".")
        operation = f"{_SIGNING_NAMES.get(service.partition('_')[0], 'sagemaker')}:{name or '*'}"
        if self.open_network:
            raise AccessDenied(
                f"The control plane is refused on {self.settings.host} without authentication: "
                "it runs code. Set TANDEM_AUTH (api-key or sigv4) with an admin key, or listen "
                "on 127.0.0.1."
            )
        if role_of(request.scope, self.settings) != ADMIN:
            raise AccessDenied(
                f"This key is not authorized to perform: {operation}: its role is "
                "invoke; the control plane needs a key with the admin role."
            )
