"""A real S3 protocol server (moto) on loopback, for the tests that read model data from S3."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3

from tests.support import PYTHON, free_port, running, wait_for_ping

#: What the gateway (or an in-process fetch) needs to reach the server.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def moto_s3(
    folder: Path, *buckets: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, Any]]:
    """The server's URL and a boto3 S3 client for it, with ``buckets`` made."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [PYTHON, "-m", "moto.server", "-p", str(port)]
    with running(args, env=env, log=folder / "moto.log"):
        wait_for_ping(url, path="/moto-api/", timeout=60)
        client = boto3.client(
            "s3",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        for bucket in buckets:
            client.create_bucket(Bucket=bucket)
        yield url, client
