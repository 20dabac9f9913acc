"""``tandem haproxy``: the configuration it writes, checked by HAProxy itself when installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gateway.cli.main import app
from gateway.ops.haproxy import Checks, HAProxyError, Instance, parse_instances, render
from pipelines.spec import EndpointSpec

MULTI = EndpointSpec.model_validate(
    {
        "name": "houses",
        "timeout": 30,
        "containers": [{"framework": "sklearn", "mode": "MultiModel", "model_data": "/m"}],
    }
)
SINGLE = EndpointSpec.model_validate({"name": "zoo", "containers": [{"framework": "sklearn"}]})
TWO = [Instance("10.0.0.1", 8080), Instance("10.0.0.2", 8080)]
needs_haproxy = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")


def haproxy_check(config: str, folder: Path) -> None:
    path = folder / "haproxy.cfg"
    path.write_text(config)
    checked = subprocess.run(
        ["haproxy", "-c", "-f", str(path)], capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def lines(config: str, section: str) -> list[str]:
    """The directives of one section, stripped."""
    out: list[str] = []
    inside = False
    for line in config.splitlines():
        if line and not line.startswith(" "):
            inside = line == section
        elif inside and line.strip():
            out.append(line.strip())
    return out


def test_requests_naming_a_model_are_hashed_on_it_with_bounded_load() -> None:
    config = render([MULTI, SINGLE], TWO, checks=Checks(interval=1, fall=2, rise=3))
    frontend = lines(config, "frontend tandem")
    assert "acl multi_model_invocation path /endpoints/houses/invocations" in frontend
    assert "acl has_target_model req.hdr(X-Amzn-SageMaker-Target-Model) -m found" in frontend
    assert "use_backend tandem_models if multi_model_invocation has_target_model" in frontend
    assert "default_backend tandem" in frontend
    models = lines(config, "backend tandem_models")
    assert models[:6] == [
        "balance hdr(X-Amzn-SageMaker-Target-Model)",
        "hash-type consistent",
        "hash-balance-factor 150",
        "option httpchk GET /ping",
        "http-check expect status 200",
        "server tandem-1 10.0.0.1:8080 check",
    ]
    rest = lines(config, "backend tandem")
    assert rest == [
        "balance leastconn",
        "server tandem-1 10.0.0.1:8080 track tandem_models/tandem-1",
        "server tandem-2 10.0.0.2:8080 track tandem_models/tandem-2",
    ]
    defaults = lines(config, "defaults")
    assert "retry-on conn-failure empty-response response-timeout 503" in defaults
    assert "option redispatch 1" in defaults and "retries 3" in defaults
    assert "default-server inter 1s fall 2 rise 3" in defaults
    # The slowest endpoint (zoo: 60 s by default) sets how long HAProxy waits on an instance.
    assert "timeout server 65s" in defaults


def test_without_multi_model_endpoints_everything_balances_by_least_connections() -> None:
    config = render([SINGLE], TWO, checks=Checks(interval=0.25))
    assert "tandem_models" not in config and "hdr(" not in config
    assert lines(config, "backend tandem")[:3] == [
        "balance leastconn",
        "option httpchk GET /ping",
        "http-check expect status 200",
    ]
    assert "default-server inter 250ms fall 3 rise 2" in lines(config, "defaults")


@needs_haproxy
@pytest.mark.parametrize("specs", [[MULTI, SINGLE], [SINGLE]], ids=["affinity", "leastconn"])
def test_haproxy_accepts_the_configuration(specs: list[EndpointSpec], tmp_path: Path) -> None:
    instances = [*TWO, Instance("::1", 9000), Instance("localhost", 80)]
    config = render(specs, instances, stats_socket=str(tmp_path / "admin.sock"))
    haproxy_check(config, tmp_path)


def test_instances_are_parsed_and_checked() -> None:
    assert parse_instances(" a.example:1, [::1]:8080 ,127.0.0.1:65535") == [
        Instance("a.example", 1),
        Instance("::1", 8080),
        Instance("127.0.0.1", 65535),
    ]
    assert Instance("::1", 8080).address == "[::1]:8080"
    bad = {
        "localhost": "must be HOST:PORT",
        "h:0": "port must be a number from 1 to 65535",
        "h:99999": "port must be a number",
        "h:80x": "port must be a number",
        "::1:80": "in brackets",
        "[zz]:80": "not an IPv6 address",
        "bad_host:80": "not a host name",
        "a:1,a:1": "listed twice",
        " , ": "at least one",
    }
    for text, message in bad.items():
        with pytest.raises(HAProxyError, match=message):
            parse_instances(text)


def test_bad_options_are_refused() -> None:
    with pytest.raises(HAProxyError, match="above 100"):
        render([MULTI], TWO, balance_factor=100)
    with pytest.raises(HAProxyError, match="ADDRESS:PORT"):
        render([MULTI], TWO, bind="8080")
    with pytest.raises(HAProxyError, match="fall and rise"):
        Checks(fall=0)


def test_cli_writes_the_file_and_names_bad_input(tmp_path: Path) -> None:
    spec_file = tmp_path / "houses.yaml"
    spec_file.write_text(yaml.safe_dump(MULTI.model_dump(mode="json", exclude={"source"})))
    out = tmp_path / "haproxy.cfg"
    runner = CliRunner()
    args = ["haproxy", str(spec_file), "--instances", "10.0.0.1:8080,10.0.0.2:8080", "-o", str(out)]
    result = runner.invoke(app, [*args, "--check-interval", "0.5", "--balance-factor", "125"])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "hash-balance-factor 125" in text and "inter 500ms" in text
    assert not list(tmp_path.glob("*.tmp"))
    bad = runner.invoke(app, ["haproxy", str(spec_file), "--instances", "10.0.0.1"])
    assert bad.exit_code == 2
    assert "must be HOST:PORT" in bad.output
