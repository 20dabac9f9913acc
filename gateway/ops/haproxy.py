"""An HAProxy configuration for several identical Tandem instances, with model affinity.

Loading a model is slow and memory is finite, so each TargetModel should live on few instances.
Requests that name one are hashed on it (``balance hdr`` with ``hash-type consistent``): a model
keeps its instance while others come and go, and only a dead instance's models move. Bounded load
(``hash-balance-factor``) sends a request elsewhere when its instance already holds far more than
its share of requests in flight, so a hot model spills over instead of swamping one instance.
Everything else (other endpoints, ``/ping``, ``/metrics``) goes to the least busy instance.

Pure rendering: no sockets, no processes. ``tandem haproxy`` writes the text.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pipelines.errors import TandemError
from pipelines.spec import EndpointSpec, Mode

TARGET_MODEL_HEADER = "X-Amzn-SageMaker-Target-Model"
#: HAProxy's bounded-load factor: an instance takes at most 1.5x the average load in flight.
BALANCE_FACTOR = 150
#: Seconds HAProxy waits on an instance beyond the slowest endpoint's own deadline.
SERVER_TIMEOUT_MARGIN = 5.0
AFFINITY_BACKEND = "tandem_models"
LEASTCONN_BACKEND = "tandem"
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
HEADER = """\
# Written by: tandem haproxy {args}
# Edit the specs or the instance list and run that again rather than editing this file.
# Run: haproxy -f THIS_FILE   (check it first with: haproxy -c -f THIS_FILE)
"""


class HAProxyError(TandemError):
    """An instance address or an option cannot go into the configuration; the message says why."""

    invalid_input = True


@dataclass(frozen=True)
class Instance:
    """One Tandem gateway behind the balancer."""

    host: str
    port: int

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class Checks:
    """Health checks on ``/ping``: an instance is out after ``fall`` failures ``interval`` apart."""

    interval: float = 2.0
    fall: int = 3
    rise: int = 2
    timeout: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.interval <= 3600 or not 0 < self.timeout <= 3600:
            raise HAProxyError("check interval and timeout must be between 0 and 3600 seconds")
        if self.fall < 1 or self.rise < 1:
            raise HAProxyError("check fall and rise must be at least 1")


def parse_instances(text: str | Sequence[str]) -> list[Instance]:
    """``host:port,host:port`` (``[v6]:port`` for IPv6) into instances, each checked."""
    items = text.split(",") if isinstance(text, str) else list(text)
    instances: list[Instance] = []
    for raw in (item.strip() for item in items):
        if not raw:
            continue
        instances.append(_parse_one(raw))
    if not instances:
        raise HAProxyError("--instances needs at least one HOST:PORT")
    seen: set[Instance] = set()
    for instance in instances:
        if instance in seen:
            raise HAProxyError(f"instance {instance.address} is listed twice")
        seen.add(instance)
    return instances


def _parse_one(raw: str) -> Instance:
    host, sep, port_text = raw.rpartition(":")
    if not sep or not host:
        raise HAProxyError(f"instance {raw!r} must be HOST:PORT (IPv6 as [ADDR]:PORT)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise HAProxyError(f"instance {raw!r}: {host!r} is not an IPv6 address") from exc
    elif ":" in host:
        raise HAProxyError(f"instance {raw!r}: write an IPv6 address in brackets, [ADDR]:PORT")
    elif not _HOSTNAME.match(host):
        raise HAProxyError(f"instance {raw!r}: {host!r} is not a host name or IPv4 address")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise HAProxyError(f"instance {raw!r}: port must be a number from 1 to 65535")
    return Instance(host, int(port_text))


def affinity_endpoints(specs: Sequence[EndpointSpec]) -> list[str]:
    """Endpoints with a MultiModel container: only their invocations are hashed on the model."""
    return [s.name for s in specs if any(c.mode is Mode.MULTI_MODEL for c in s.all_containers)]


def render(
    specs: Sequence[EndpointSpec],
    instances: Sequence[Instance],
    *,
    bind: str = "0.0.0.0:8080",
    checks: Checks | None = None,
    balance_factor: int = BALANCE_FACTOR,
    stats_socket: str | None = None,
    args: str = "",
) -> str:
    """The whole configuration file."""
    if not specs:
        raise HAProxyError("give at least one endpoint spec")
    if not instances:
        raise HAProxyError("give at least one instance")
    if balance_factor <= 100:
        raise HAProxyError("the balance factor is a percentage above 100 (e.g. 150)")
    if not re.match(r"^[^\s]+:\d{1,5}$", bind):
        raise HAProxyError(f"bind {bind!r} must be ADDRESS:PORT, e.g. 0.0.0.0:8080")
    checks = checks or Checks()
    server_timeout = max(s.timeout for s in specs) + SERVER_TIMEOUT_MARGIN
    load_wait = max(
        (
            c.load_wait_timeout
            for s in specs
            for c in s.all_containers
            if c.mode is Mode.MULTI_MODEL
        ),
        default=0.0,
    )
    server_timeout = max(server_timeout, load_wait + SERVER_TIMEOUT_MARGIN)
    lines = [HEADER.format(args=args or "SPEC ... --instances HOST:PORT,...").rstrip("\n")]
    lines += ["global", "    maxconn 4096", "    log stdout format raw local0 notice"]
    if stats_socket is not None:
        if any(c.isspace() for c in stats_socket):
            raise HAProxyError("the stats socket path must not contain spaces")
        lines.append(f"    stats socket {stats_socket} mode 600 level admin")
    lines += [
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    option dontlognull",
        "    timeout connect 2s",
        f"    timeout client {_seconds(server_timeout + SERVER_TIMEOUT_MARGIN)}",
        # One request's deadline, every step included, plus a margin: the gateway answers first.
        f"    timeout server {_seconds(server_timeout)}",
        "    timeout http-request 10s",
        "    timeout http-keep-alive 10s",
        "    timeout queue 30s",
        f"    timeout check {_seconds(checks.timeout)}",
        # A request to an instance that died (refused, reset, silent, or answering 503 while it
        # restarts a container) is sent again, to another instance. Bodies over tune.bufsize
        # (16 KiB by default) cannot be replayed and are not retried.
        "    retries 3",
        "    option redispatch 1",
        "    retry-on conn-failure empty-response response-timeout 503",
        f"    default-server inter {_seconds(checks.interval)} "
        f"fall {checks.fall} rise {checks.rise}",
        "",
        "frontend tandem",
        f"    bind {bind}",
        "    option forwardfor",
    ]
    names = [f"tandem-{i}" for i in range(1, len(instances) + 1)]
    affine = affinity_endpoints(specs)
    if affine:
        paths = " ".join(f"/endpoints/{name}/invocations" for name in affine)
        lines += [
            f"    acl multi_model_invocation path {paths}",
            f"    acl has_target_model req.hdr({TARGET_MODEL_HEADER}) -m found",
            f"    use_backend {AFFINITY_BACKEND} if multi_model_invocation has_target_model",
        ]
    lines += [f"    default_backend {LEASTCONN_BACKEND}", ""]
    health = ["    option httpchk GET /ping", "    http-check expect status 200"]
    if affine:
        lines += [
            f"backend {AFFINITY_BACKEND}",
            f"    balance hdr({TARGET_MODEL_HEADER})",
            "    hash-type consistent",
            f"    hash-balance-factor {balance_factor}",
            *health,
            *(
                f"    server {name} {inst.address} check"
                for name, inst in zip(names, instances, strict=True)
            ),
            "",
        ]
    # The second backend follows the first one's checks (``track``) rather than doubling them.
    lines += [f"backend {LEASTCONN_BACKEND}", "    balance leastconn"]
    if affine:
        lines += [
            f"    server {name} {inst.address} track {AFFINITY_BACKEND}/{name}"
            for name, inst in zip(names, instances, strict=True)
        ]
    else:
        lines += [*health]
        lines += [
            f"    server {name} {inst.address} check"
            for name, inst in zip(names, instances, strict=True)
        ]
    return "\n".join(lines) + "\n"


def _seconds(value: float) -> str:
    """HAProxy durations: whole milliseconds, so that 0.5 s stays 0.5 s."""
    millis = max(1, round(value * 1000))
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"
