"""The servers that scale-out tests run against, found or started on loopback: PostgreSQL (the
machine's own cluster, which `tests/services.sh` starts and gives a throwaway role and database,
or the server DASHBOARD_TEST_POSTGRES_URL names) and an S3-compatible server (moto's, started here, one per test
session).

Each test gets a database of its own: a fresh schema in the test database, named first on the
connection's search path (`fresh_postgres`), and dropped afterwards; and a bucket of its own
(`fresh_bucket`). Where a service cannot be found, `unavailable` skips the test on a developer's
machine and fails it under CI (`CI=true`), where a skip would hide a missing service.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from tests.support.net import free_port

# What tests/services.sh makes (DASHBOARD_TEST_POSTGRES_URL names another server).
DEFAULT_POSTGRES_URL = "postgresql://dashboard_ci:dashboard_ci@127.0.0.1:5432/dashboard_ci"
S3_KEY_ID, S3_SECRET = "testing-key", "testing-secret"


def unavailable(what: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is not available, and under CI a test that needs it must not skip")
    pytest.skip(f"{what} is not available")


def postgres_url() -> str:
    return os.environ.get("DASHBOARD_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL


def _admin():
    import psycopg

    try:
        return psycopg.connect(postgres_url(), autocommit=True, connect_timeout=3)
    except psycopg.Error:
        unavailable("PostgreSQL (DASHBOARD_TEST_POSTGRES_URL)")


@contextlib.contextmanager
def fresh_postgres() -> Iterator[str]:
    """A URL whose connections see an empty schema of their own first (and pg_trgm, made once in
    `public`); the schema goes when the test ends."""
    schema = f"t_{secrets.token_hex(6)}"
    with _admin() as admin:
        admin.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
        admin.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in postgres_url() else "?"
    try:
        yield f"{postgres_url()}{separator}options={quote(f'-csearch_path={schema},public')}"
    finally:
        with _admin() as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


class S3Server:
    """moto's S3 server on a free loopback port, for the whole test session."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        import httpx

        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(self.url, timeout=1)
                return
            time.sleep(0.2)
        self.stop()
        unavailable("an S3-compatible server (moto[server])")

    def env(self, bucket: str, prefix: str = "dashboard") -> dict[str, str]:
        """The settings a dashboard reaches `bucket` with."""
        return {"DASHBOARD_STORAGE_URL": f"s3://{bucket}/{prefix}", "AWS_ENDPOINT_URL": self.url,
                "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": S3_KEY_ID, "AWS_SECRET_ACCESS_KEY": S3_SECRET}

    def make_bucket(self) -> str:
        import boto3

        bucket = f"b-{secrets.token_hex(6)}"
        boto3.client("s3", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id=S3_KEY_ID,
                     aws_secret_access_key=S3_SECRET).create_bucket(Bucket=bucket)
        return bucket

    def stop(self) -> None:
        self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)


def restart_postgres() -> None:
    """Restart the machine's PostgreSQL cluster, as an operator or a crash would: every connection
    drops. Only for the cluster tests/services.sh runs (DASHBOARD_TEST_POSTGRES_URL unset), as root
    or through sudo."""
    if os.environ.get("DASHBOARD_TEST_POSTGRES_URL"):
        unavailable("a restartable PostgreSQL (DASHBOARD_TEST_POSTGRES_URL names a server of someone else's)")
    listed = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=False).stdout
    version = next((line.split()[0] for line in listed.splitlines() if line.split()[1:2] == ["main"]), None)
    if version is None:
        unavailable("the machine's PostgreSQL cluster (pg_lsclusters)")
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "--mode", "fast"]
    if os.geteuid() != 0:
        command = ["sudo", "-n", *command]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        unavailable(f"a restart of PostgreSQL ({done.stderr.strip()[:200]})")
