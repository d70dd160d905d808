"""
Authentication ``tls``: a client certificate on an ``ssl:`` endpoint with
``client_ca``, verified in the TLS handshake and mapped to a principal by
its SHA-256 fingerprint or its subject CN.

Real certificates made here with ``cryptography`` (a CA, certificates it
issues, and a rogue CA nobody trusts), the router listening with them over a
real TLS socket, and autobahn-python clients presenting them (Twisted's
``optionsForClientTLS(clientCertificate=...)``).
"""

from __future__ import annotations

import datetime
import ipaddress

import pytest
import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.internet import ssl

from router.config import (
    AuthMethodConfig,
    ConfigError,
    ListenConfig,
    PermissionConfig,
    PrincipalConfig,
    RealmConfig,
    RoleConfig,
)
from tests.auth_helpers import bounded, open_session, ticket
from tests.config_helpers import config_error
from tests.test_lifecycle import Started

FAILED = ("wamp.error.authentication_failed", "authentication failed")
NOW = datetime.datetime.now(datetime.timezone.utc)


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


class Authority:
    """A CA that issues server and client certificates (PEM)."""

    def __init__(self, cn):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(_name(cn))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - datetime.timedelta(minutes=5))
            .not_valid_after(NOW + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, cn, *, server=False, expired=False):
        """(key PEM, certificate PEM, SHA-256 fingerprint hex) of a certificate for ``cn``."""
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - datetime.timedelta(days=3))
            .not_valid_after(NOW - datetime.timedelta(days=2) if expired else NOW + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        else:
            builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return _pem_key(key), cert.public_bytes(serialization.Encoding.PEM), cert.fingerprint(hashes.SHA256()).hex()


CA = Authority("wampd test CA")
ROGUE = Authority("rogue CA")
SERVER = CA.issue("localhost", server=True)
DEVICE = CA.issue("device-7")  # mapped by CN
PINNED = CA.issue("whatever-cn")  # mapped by fingerprint
STRANGER = CA.issue("stranger")  # issued by the CA, claimed by nobody
IMPOSTOR = ROGUE.issue("device-7")  # the right CN from the wrong CA
EXPIRED = CA.issue("device-7", expired=True)


def _colons(fingerprint):
    return ":".join(fingerprint[i : i + 2] for i in range(0, len(fingerprint), 2)).upper()


def _realm():
    return RealmConfig(
        "realm1",
        auth=(AuthMethodConfig("tls"), AuthMethodConfig("ticket")),
        principals=(
            PrincipalConfig("device-7", "device", tls_cn="device-7"),
            PrincipalConfig("pinned", "device", tls_fingerprints=(_colons(PINNED[2]),)),
            PrincipalConfig("joe", "device", ticket="joe-ticket"),
        ),
        roles=(RoleConfig("device", (PermissionConfig("com.", "prefix", call=True, register=True),)),),
    )


def _started(tmp_path, client_cert="required", realm=None):
    (tmp_path / "key.pem").write_bytes(SERVER[0])
    (tmp_path / "cert.pem").write_bytes(SERVER[1])
    (tmp_path / "ca.pem").write_bytes(CA.pem)
    endpoint = f"ssl:0:interface=127.0.0.1:privateKey={tmp_path / 'key.pem'}:certKey={tmp_path / 'cert.pem'}"
    listen = tuple(
        ListenConfig(endpoint, transport, client_ca=str(tmp_path / "ca.pem"), client_cert=client_cert)
        for transport in ("websocket", "rawsocket")
    )
    return Started(listen=listen, realms=(realm or _realm(),))


def _tls(client=None):
    """A client TLS context trusting the CA, presenting ``client`` (key, cert, _) if given."""
    kwargs = {}
    if client is not None:
        kwargs["clientCertificate"] = ssl.PrivateCertificate.loadPEM(client[0] + client[1])
    return ssl.optionsForClientTLS("localhost", trustRoot=ssl.Certificate.loadPEM(CA.pem), **kwargs)


def _address(r, transport):
    return r.ws_url if transport == "websocket" else r.rs_port


@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest_twisted.ensureDeferred
async def test_certificate_mapped_by_cn_joins(tmp_path, transport):
    """
    A certificate the CA issued for CN device-7 joins as principal device-7
    with authmethod tls; listeners see the certificate on the connection.
    """
    async with _started(tmp_path) as r:
        client = await open_session(_address(r, transport), transport, authmethods=["tls"], tls=_tls(DEVICE))
        details = await bounded(client.joined)
        assert (details.authid, details.authrole, details.authmethod) == ("device-7", "device", "tls")
        joined = await r.recorder.wait_for(lambda e: e.name == "session_joined")
        cert = joined.session.connection.client_cert
        assert (cert.cn, cert.fingerprint, cert.issuer) == ("device-7", DEVICE[2], "CN=wampd test CA")
        client.leave()
        await bounded(client.disconnected)


@pytest_twisted.ensureDeferred
async def test_certificate_mapped_by_fingerprint_joins(tmp_path):
    """A principal pinned by fingerprint (given as openssl prints it: colons, upper case) is found whatever the CN."""
    async with _started(tmp_path) as r:
        client = await open_session(r.ws_url, authmethods=["tls"], authid="pinned", tls=_tls(PINNED))
        details = await bounded(client.joined)
        assert (details.authid, details.authmethod) == ("pinned", "tls")
        client.leave()
        await bounded(client.disconnected)


@pytest.mark.parametrize("who,authid", [(STRANGER, None), (DEVICE, "pinned")], ids=["unclaimed", "other-authid"])
@pytest_twisted.ensureDeferred
async def test_a_valid_certificate_nobody_claims_or_another_authid_is_refused(tmp_path, who, authid):
    """
    A CA-issued certificate no principal claims, or one asking in HELLO for
    an authid that is not its principal's, gets ABORT authentication_failed.
    """
    async with _started(tmp_path) as r:
        client = await open_session(r.ws_url, authmethods=["tls"], authid=authid, tls=_tls(who))
        with pytest.raises(RuntimeError, match="aborted"):
            await bounded(client.joined)
        assert (client.close_details.reason, client.close_details.message) == FAILED
        assert [e.reason for e in r.recorder.events if e.name == "client_rejected"] == ["authentication"]


@pytest.mark.parametrize("who", [IMPOSTOR, EXPIRED, None], ids=["rogue-ca", "expired", "none"])
@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest_twisted.ensureDeferred
async def test_a_bad_or_missing_certificate_fails_the_tls_handshake(tmp_path, who, transport):
    """
    With client_cert required, a certificate from another CA, an expired one,
    or none at all fails the TLS handshake: no WebSocket or RawSocket
    handshake, no HELLO, no session.
    """
    async with _started(tmp_path) as r:
        client = await open_session(_address(r, transport), transport, authmethods=["tls"], tls=_tls(who))
        await bounded(client.wire.is_closed)
        assert not client.joined.called
        assert r.service.router.realms["realm1"].sessions == {}
        assert [e.name for e in r.recorder.events if e.name.startswith("session") or e.name == "client_rejected"] == []


@pytest_twisted.ensureDeferred
async def test_optional_client_certificates_let_other_methods_in(tmp_path):
    """
    With client_cert optional a client without a certificate connects: the
    tls method refuses it (saying it needs a certificate), a ticket joins,
    and a certificate still authenticates.
    """
    async with _started(tmp_path, "optional") as r:
        bare = await open_session(r.ws_url, authmethods=["tls"], tls=_tls())
        with pytest.raises(RuntimeError, match="needs a client certificate"):
            await bounded(bare.joined)
        joe = await open_session(r.ws_url, authmethods=["tls", "ticket"], authid="joe", answer=ticket("joe-ticket"), tls=_tls())
        # tls is offered first but needs a certificate: the client's order picks tls, which refuses
        with pytest.raises(RuntimeError, match="needs a client certificate"):
            await bounded(joe.joined)
        joe = await open_session(r.ws_url, authmethods=["ticket"], authid="joe", answer=ticket("joe-ticket"), tls=_tls())
        assert (await bounded(joe.joined)).authmethod == "ticket"
        device = await open_session(r.rs_port, "rawsocket", authmethods=["tls"], tls=_tls(DEVICE))
        assert (await bounded(device.joined)).authid == "device-7"
        for client in (joe, device):
            client.leave()
            await bounded(client.disconnected)


def test_client_ca_config_errors(tmp_path):
    """client_ca only on ssl: endpoints and only with a readable PEM file; client_cert is required or optional."""
    (tmp_path / "ca.pem").write_bytes(CA.pem)
    (tmp_path / "junk.pem").write_text("not a certificate")
    ca = str(tmp_path / "ca.pem")
    cases = [
        (dict(endpoint="tcp:0", client_ca=ca), "client_ca", "only applies to an ssl: endpoint"),
        (dict(client_ca=str(tmp_path / "missing.pem")), "client_ca", "cannot read"),
        (dict(client_ca=str(tmp_path / "junk.pem")), "client_ca", "no PEM certificate"),
        (dict(client_ca=ca, client_cert="sometimes"), "client_cert", "'required' or 'optional'"),
        (dict(client_cert="optional"), "client_cert", "only applies together with client_ca"),
    ]
    (tmp_path / "key.pem").write_bytes(SERVER[0])
    (tmp_path / "cert.pem").write_bytes(SERVER[1])
    ssl_endpoint = f"ssl:0:privateKey={tmp_path / 'key.pem'}:certKey={tmp_path / 'cert.pem'}"
    for kwargs, key, reason in cases:
        kwargs.setdefault("endpoint", ssl_endpoint)
        with pytest.raises(ConfigError) as info:
            ListenConfig(**kwargs)
        assert info.value.key == key and reason in info.value.reason, kwargs


def test_tls_principals_from_toml():
    """A principal's tls_fingerprint/tls_cn read from TOML; a malformed fingerprint names its key."""
    error = config_error(
        '[[realm]]\nname = "r"\nauth = [{ method = "tls" }]\n'
        '[[realm.principal]]\nauthid = "a"\nrole = "anonymous"\ntls_fingerprint = "AB:CD"\n'
    )
    assert error.key == "realm[0].principal[0].tls_fingerprint" and "SHA-256" in error.reason
    error = config_error('[[realm]]\nname = "r"\nauth = [{ method = "tls" }]\n')
    assert error.key == "realm[0].auth[0].method" and "tls_fingerprint or tls_cn" in error.reason


def dynamic_tls(hello, method, signature):
    """A dynamic authenticator (by dotted path) admitting the CA's "stranger" certificate, seen in hello.client_cert."""
    from router.auth import Accept, Deny

    if method == "tls" and hello.client_cert is not None and hello.client_cert.cn == "stranger":
        return Accept("stranger", "device", "tls")
    return Deny("not this one", "wamp.error.authentication_failed")


@pytest_twisted.ensureDeferred
async def test_dynamic_authenticator_sees_the_certificate(tmp_path):
    """
    A certificate no static principal claims goes to the dynamic
    authenticator, which sees it in hello.client_cert; static principals
    still win without asking it.
    """
    realm = RealmConfig(
        "realm1",
        auth=(AuthMethodConfig("tls"),),
        principals=(PrincipalConfig("device-7", "device", tls_cn="device-7"),),
        roles=(RoleConfig("device"),),
        authenticator="tests.test_auth_tls:dynamic_tls",
    )
    async with _started(tmp_path, realm=realm) as r:
        stranger = await open_session(r.ws_url, authmethods=["tls"], tls=_tls(STRANGER))
        details = await bounded(stranger.joined)
        assert (details.authid, details.authprovider) == ("stranger", "dynamic")
        device = await open_session(r.ws_url, authmethods=["tls"], tls=_tls(DEVICE))
        assert (await bounded(device.joined)).authprovider == "static"
        pinned = await open_session(r.ws_url, authmethods=["tls"], tls=_tls(PINNED))
        with pytest.raises(RuntimeError, match="not this one"):
            await bounded(pinned.joined)
        for client in (stranger, device):
            client.leave()
            await bounded(client.disconnected)


def test_a_certificate_maps_to_one_principal():
    """Two principals with the same tls_cn (or fingerprint) is a config error naming the second."""
    error = config_error(
        '[[realm]]\nname = "r"\nauth = [{ method = "tls" }]\n'
        '[[realm.principal]]\nauthid = "a"\nrole = "anonymous"\ntls_cn = "dev"\n'
        '[[realm.principal]]\nauthid = "b"\nrole = "anonymous"\ntls_cn = "dev"\n'
    )
    assert error.key == "realm[0].principal[1].tls_cn" and "also belongs to principal[0]" in error.reason
