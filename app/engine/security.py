"""How every Kafka client the project makes authenticates and encrypts: SASL (PLAIN,
SCRAM-SHA-256, SCRAM-SHA-512) and TLS, from the environment.

    KAFKA_SECURITY_PROTOCOL     PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL
    KAFKA_SASL_MECHANISM        PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL_* only)
    KAFKA_SASL_USERNAME         (SASL_* only)
    KAFKA_SASL_PASSWORD         or KAFKA_SASL_PASSWORD_FILE (a mounted secret)
    KAFKA_SSL_CAFILE            the CA bundle that signed the brokers' certificates (default: the system's)
    KAFKA_SSL_CERTFILE, KAFKA_SSL_KEYFILE   a client certificate, for brokers that ask for one
    KAFKA_SSL_CHECK_HOSTNAME    1 (default) or 0

Workers, the command line, the gateway and `resontinex.client` all take their clients'
options from `client_options()`; a Faust app takes `faust_credentials()`. A bad setting is
refused with a message naming the variable (`UsageError`, exit 2), before any connection.

>>> security_from_env({}).client_options()
{'security_protocol': 'PLAINTEXT'}
>>> opts = security_from_env({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
...                           "KAFKA_SASL_USERNAME": "svc", "KAFKA_SASL_PASSWORD": "pw"}).client_options()
>>> opts["sasl_mechanism"], opts["sasl_plain_username"]
('SCRAM-SHA-512', 'svc')
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

from resontinex.app.exceptions import UsageError

__all__ = ["KafkaSecurity", "client_options", "faust_credentials", "security_from_env"]

PROTOCOLS: Final = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS: Final = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    protocol: str = "PLAINTEXT"
    mechanism: str | None = None
    username: str | None = None
    password: str | None = None
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    check_hostname: bool = True

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context (None without TLS): the brokers' certificates checked, always."""
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=str(self.cafile) if self.cafile else None)
        context.check_hostname = self.check_hostname
        if self.certfile is not None:
            context.load_cert_chain(str(self.certfile), str(self.keyfile) if self.keyfile else None)
        return context

    def client_options(self) -> dict[str, Any]:
        """aiokafka's keyword arguments (producer, consumer and admin client alike)."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.tls:
            options["ssl_context"] = self.ssl_context()
        if self.sasl:
            options.update(sasl_mechanism=self.mechanism, sasl_plain_username=self.username,
                           sasl_plain_password=self.password)
        return options

    def faust_credentials(self) -> Any:
        """Faust's `broker_credentials` (None for PLAINTEXT)."""
        import faust

        if self.sasl:
            assert self.mechanism is not None and self.username is not None and self.password is not None
            return faust.SASLCredentials(username=self.username, password=self.password,
                                         mechanism=self.mechanism, ssl_context=self.ssl_context())
        if self.tls:
            return faust.SSLCredentials(self.ssl_context())
        return None


def security_from_env(env: Mapping[str, str]) -> KafkaSecurity:
    """Validate the settings in `env` (see the module's table).

    >>> security_from_env({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "GSSAPI"})
    Traceback (most recent call last):
    resontinex.app.exceptions.UsageError: KAFKA_SASL_MECHANISM 'GSSAPI': one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
    """
    protocol = env.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").strip().upper() or "PLAINTEXT"
    if protocol not in PROTOCOLS:
        raise UsageError(f"KAFKA_SECURITY_PROTOCOL {protocol!r}: one of {', '.join(PROTOCOLS)}")
    mechanism = username = password = None
    if protocol.startswith("SASL_"):
        mechanism = env.get("KAFKA_SASL_MECHANISM", "").strip().upper()
        if mechanism not in MECHANISMS:
            raise UsageError(f"KAFKA_SASL_MECHANISM {mechanism!r}: one of {', '.join(MECHANISMS)}")
        username = env.get("KAFKA_SASL_USERNAME") or None
        password = env.get("KAFKA_SASL_PASSWORD") or _read_secret(env.get("KAFKA_SASL_PASSWORD_FILE"))
        if username is None or password is None:
            raise UsageError(f"{protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD "
                             "(or KAFKA_SASL_PASSWORD_FILE)")
    files = {name: _existing(env, name) for name in ("KAFKA_SSL_CAFILE", "KAFKA_SSL_CERTFILE", "KAFKA_SSL_KEYFILE")}
    check = env.get("KAFKA_SSL_CHECK_HOSTNAME", "1").strip()
    if check not in ("0", "1"):
        raise UsageError(f"KAFKA_SSL_CHECK_HOSTNAME {check!r}: 1 or 0")
    return KafkaSecurity(protocol, mechanism, username, password, files["KAFKA_SSL_CAFILE"],
                         files["KAFKA_SSL_CERTFILE"], files["KAFKA_SSL_KEYFILE"], check == "1")


def _read_secret(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except OSError as exc:
        raise UsageError(f"KAFKA_SASL_PASSWORD_FILE {path}: {exc.strerror or exc}") from None


def _existing(env: Mapping[str, str], name: str) -> Path | None:
    value = env.get(name)
    if not value:
        return None
    if not Path(value).is_file():
        raise UsageError(f"{name} {value}: no such file")
    return Path(value)


@cache
def _process_security() -> KafkaSecurity:
    return security_from_env(os.environ)


def client_options() -> dict[str, Any]:
    """aiokafka's security keyword arguments for this process (its environment, read once)."""
    return _process_security().client_options()


def faust_credentials() -> Any:
    """Faust's `broker_credentials` for this process."""
    return _process_security().faust_credentials()
