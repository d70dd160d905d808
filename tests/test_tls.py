"""
TLS through the ``ssl:`` endpoint string: a self-signed certificate made by
the test (``cryptography``), the router listening with it for WebSocket
(``wss://``) and RawSocket, and autobahn-python clients that trust exactly
that certificate, authenticating with a ticket over it.
"""

from __future__ import annotations

import datetime
import ipaddress

import pytest
import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import ssl

from router.config import (
    AuthMethodConfig,
    ListenConfig,
    PermissionConfig,
    PrincipalConfig,
    RealmConfig,
    RoleConfig,
)
from tests.auth_helpers import bounded, open_session, ticket
from tests.conftest import make_service
from tests.wamp_clients import Recorder

TICKET = "tls-ticket"


def self_signed(folder):
    """A key and a self-signed certificate for localhost and 127.0.0.1, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = folder / "key.pem", folder / "cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert_bytes = cert.public_bytes(serialization.Encoding.PEM)
    cert_path.write_bytes(cert_bytes)
    return key_path, cert_path, cert_bytes


@pytest_twisted.async_yield_fixture
async def tls_router(tmp_path):
    key_path, cert_path, cert_pem = self_signed(tmp_path)
    endpoint = f"ssl:0:interface=127.0.0.1:privateKey={key_path}:certKey={cert_path}"
    realm = RealmConfig(
        "realm1",
        auth=(AuthMethodConfig("ticket"),),
        principals=(PrincipalConfig("joe", "user", ticket=TICKET),),
        roles=(RoleConfig("user", (PermissionConfig("com.", "prefix", call=True, register=True),)),),
    )
    recorder = Recorder()
    service = make_service(
        recorder,
        listen=(ListenConfig(endpoint, "websocket"), ListenConfig(endpoint, "rawsocket")),
        realms=(realm,),
    )
    await service.startService()
    service.cert_pem = cert_pem
    service.recorder = recorder
    yield service
    await service.stopService()


@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest_twisted.ensureDeferred
async def test_join_and_call_over_tls(tls_router, transport):
    endpoints = {e.transport: e for e in tls_router.endpoints}
    ws = endpoints["websocket"]
    assert ws.url.startswith("wss://127.0.0.1:")
    address = ws.url if transport == "websocket" else endpoints["rawsocket"].port
    trust = ssl.optionsForClientTLS("localhost", trustRoot=ssl.Certificate.loadPEM(tls_router.cert_pem))
    client = await open_session(
        address, transport, "cbor", authmethods=["ticket"], authid="joe", answer=ticket(TICKET), tls=trust
    )
    details = await bounded(client.joined)
    assert (details.authid, details.authrole, details.authmethod) == ("joe", "user", "ticket")
    assert details.transport.is_secure is True
    await bounded(client.register(lambda a, b: a + b, "com.add"))
    assert await bounded(client.call("com.add", 2, 3)) == 5
    joined = await tls_router.recorder.wait_for(lambda e: e.name == "session_joined")
    assert joined.session.connection.transport == transport
    client.leave()
    await bounded(client.disconnected)


@pytest_twisted.ensureDeferred
async def test_a_client_that_does_not_trust_the_certificate_cannot_join(tls_router, tmp_path):
    (tmp_path / "other").mkdir()
    _, _, other_pem = self_signed(tmp_path / "other")
    ws = {e.transport: e for e in tls_router.endpoints}["websocket"]
    distrust = ssl.optionsForClientTLS("localhost", trustRoot=ssl.Certificate.loadPEM(other_pem))
    client = await open_session(
        ws.url, "websocket", authmethods=["ticket"], authid="joe", answer=ticket(TICKET), tls=distrust
    )
    await bounded(client.wire.is_closed)  # the TLS handshake failed: no WebSocket, no HELLO
    assert not client.joined.called
    assert tls_router.router.realms["realm1"].sessions == {}
    assert [e.name for e in tls_router.recorder.events if e.name.startswith("session")] == []
