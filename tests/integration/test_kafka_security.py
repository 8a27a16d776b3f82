"""Every client the project makes, over TLS with a SASL login: the command line, a core
worker (Faust and its own consumers and producers), the gateway and `resontinex.client`,
against the embedded broker behind a TLS + SASL front (`secure_front`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from resontinex.app.gateway import token_digest
from resontinex.app.settings import EMBEDDED_BROKER_ENV

from tests.certs import self_signed

from .harness import REPO, start_worker
from .secure_front import SecureFront

pytestmark = pytest.mark.integration

TOKEN = "rtx_secure"
CLIENT = """
from resontinex.client import SyncClient
with SyncClient() as client:
    d = client.decide({"event_id": "s-1", "tenant": "acme", "signals": {
        "alignment_score": 0.8, "epistemic_risk": 0.3, "confidence_band": 0.2}}, timeout=60)
    print(d.verb)
"""


def _cli(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "resontinex.app.cli", *argv], cwd=REPO, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)


def test_the_cli_a_worker_the_gateway_and_the_client_log_in_over_tls(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    (tmp_path / "password").write_text("s3cret\n")
    config = tmp_path / "config"
    config.mkdir()
    (config / "gateway.yaml").write_text(f"tokens: [{{tenant: acme, sha256: {token_digest(TOKEN)}}}]\n")
    with SecureFront(tmp_path, tls=(cert, key), users={"svc": "s3cret"}) as front:
        env = {"KAFKA_BOOTSTRAP_SERVERS": front.bootstrap, EMBEDDED_BROKER_ENV: "1",
               "RESONTINEX_CONFIG_DIR": str(config), "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
               "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": "svc",
               "KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "password"), "KAFKA_SSL_CAFILE": str(cert)}

        wrong = _cli({**env, "KAFKA_SASL_PASSWORD_FILE": "", "KAFKA_SASL_PASSWORD": "nope"}, "topics", "create")
        assert wrong.returncode == 1 and "Authentication failed" in wrong.stderr, wrong.stderr
        unset = _cli({**env, "KAFKA_SASL_PASSWORD_FILE": ""}, "topics", "create")
        assert unset.returncode == 2 and "KAFKA_SASL_PASSWORD" in unset.stderr, unset.stderr
        created = _cli(env, "topics", "create")
        assert created.returncode == 0, created.stderr

        worker = start_worker(front.bootstrap, tmp_path / "w", env=env)
        gateway = start_worker(front.bootstrap, tmp_path / "g", env=env, role="gateway")
        try:
            worker.wait_ready(timeout_s=90)
            gateway.wait_ready(timeout_s=30)
            client = subprocess.run([sys.executable, "-c", CLIENT], cwd=REPO, env={**os.environ, **env},
                                    capture_output=True, text=True, timeout=120)
            assert client.returncode == 0 and client.stdout.split() == ["execute"], client.stderr
            request = urllib.request.Request(
                f"http://127.0.0.1:{gateway.web_port}/v1/decide?timeout_s=30", method="POST",
                headers={"Authorization": f"Bearer {TOKEN}"},
                data=json.dumps({"event_id": "s-2", "tenant": "acme", "signals": {
                    "alignment_score": 0.8, "epistemic_risk": 0.3, "confidence_band": 0.2}}).encode())
            with urllib.request.urlopen(request, timeout=40) as resp:
                assert resp.status == 200 and json.loads(resp.read())["request_id"] == "s-2"
        finally:
            gateway.stop()
            worker.stop()
    mechanisms = {(mechanism, user, ok) for mechanism, user, ok in front.logins}
    assert mechanisms == {("SCRAM-SHA-512", "svc", True), ("SCRAM-SHA-512", "svc", False)}  # nobody got in otherwise
    assert sum(ok for *_, ok in front.logins) > 10  # the worker's many clients each logged in
