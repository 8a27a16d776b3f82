"""Kafka security settings: every client's options from the environment, refused when incomplete."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest

from resontinex.app.engine.security import security_from_env
from resontinex.app.exceptions import UsageError
from tests.certs import self_signed

SASL = {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "scram-sha-256",
        "KAFKA_SASL_USERNAME": "svc", "KAFKA_SASL_PASSWORD": "pw"}


def test_plaintext_is_the_default_and_adds_nothing_but_the_protocol() -> None:
    security = security_from_env({})
    assert security.client_options() == {"security_protocol": "PLAINTEXT"}
    assert security.faust_credentials() is None


def test_sasl_over_tls_gives_every_client_the_login_and_a_context_that_checks_the_broker(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path)
    security = security_from_env({**SASL, "KAFKA_SSL_CAFILE": str(cert)})
    options = security.client_options()
    assert (options["security_protocol"], options["sasl_mechanism"], options["sasl_plain_username"],
            options["sasl_plain_password"]) == ("SASL_SSL", "SCRAM-SHA-256", "svc", "pw")
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    credentials = security.faust_credentials()
    assert isinstance(credentials, faust.SASLCredentials) and credentials.mechanism.value == "SCRAM-SHA-256"
    assert credentials.protocol.value == "SASL_SSL"


def test_tls_alone_and_a_password_from_a_file(tmp_path: Path) -> None:
    tls = security_from_env({"KAFKA_SECURITY_PROTOCOL": "ssl", "KAFKA_SSL_CHECK_HOSTNAME": "0"})
    assert tls.client_options()["security_protocol"] == "SSL" and not tls.ssl_context().check_hostname  # type: ignore[union-attr]
    assert isinstance(tls.faust_credentials(), faust.SSLCredentials)
    (tmp_path / "pw").write_text("from-file\n")
    sasl = security_from_env({**SASL, "KAFKA_SASL_PASSWORD": "", "KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "pw")})
    assert sasl.password == "from-file"


@pytest.mark.parametrize("env, says", [
    ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL 'TLS'"),
    ({**SASL, "KAFKA_SASL_MECHANISM": ""}, "KAFKA_SASL_MECHANISM ''"),
    ({**SASL, "KAFKA_SASL_MECHANISM": "GSSAPI"}, "one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"),
    ({**SASL, "KAFKA_SASL_USERNAME": ""}, "needs KAFKA_SASL_USERNAME"),
    ({**SASL, "KAFKA_SASL_PASSWORD": ""}, "KAFKA_SASL_PASSWORD_FILE"),
    ({**SASL, "KAFKA_SASL_PASSWORD": "", "KAFKA_SASL_PASSWORD_FILE": "/nonexistent"}, "/nonexistent"),
    ({"KAFKA_SSL_CAFILE": "/nonexistent.pem"}, "KAFKA_SSL_CAFILE /nonexistent.pem: no such file"),
    ({"KAFKA_SSL_CHECK_HOSTNAME": "yes"}, "KAFKA_SSL_CHECK_HOSTNAME 'yes'"),
])
def test_a_setting_that_cannot_work_is_refused_naming_the_variable(env: dict[str, str], says: str) -> None:
    with pytest.raises(UsageError, match=None) as caught:
        security_from_env(env)
    assert says in str(caught.value)
