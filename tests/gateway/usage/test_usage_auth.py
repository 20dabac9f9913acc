"""``GET /usage`` is an admin's: ``tandem usage`` signs with SigV4 as ``tandem endpoints`` does."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner, Result

from gateway.cli.main import app as cli
from gateway.edge.app import create_app
from gateway.edge.auth import AdminOnly
from gateway.live import EndpointTable
from gateway.usage import usage_route
from tests.gateway.harness import serve
from tests.gateway.processes import quick_settings
from tests.gateway.usage.conftest import Clock, services


def test_an_admin_key_reads_the_ledger_and_an_invoke_key_is_refused(tmp_path: Path) -> None:
    settings = quick_settings(
        tmp_path / "state", auth="sigv4", sigv4_credentials="BOSS:s3cret:admin,APP:s3cret2"
    )
    metrics, usage = services(settings.state_dir, Clock())
    route = usage_route(usage, authorize=AdminOnly(settings))
    app = create_app(EndpointTable(), settings, routes=[route])
    metrics.recorder.invocation("ep", "v", "m", "2xx", 1000, 10, 1, 1)
    try:
        with serve(app) as url:

            def run(access: str, secret: str) -> Result:
                args = ["usage", "--format", "csv", "--url", url]
                keys = ["--access-key", access, "--secret-key", secret, "--region", "us-east-1"]
                return CliRunner().invoke(cli, [*args, *keys])

            admin = run("BOSS", "s3cret")
            assert admin.exit_code == 0, admin.output
            assert "ep,v,,m,1," in admin.stdout
            refused = run("APP", "s3cret2")
            assert refused.exit_code == 1
            assert "admin role" in refused.stderr
    finally:
        usage.close()
        metrics.store.close()
