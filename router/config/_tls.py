"""
A listen's TLS client certificate keys (C{client_ca}, C{client_cert}), and
whether the installed Autobahn can serve C{websocket_deflate} safely.
"""

from __future__ import annotations

from router.config._errors import ConfigError, _check_str

__all__ = ["CLIENT_CERT_MODES", "check_client_ca", "check_deflate"]

CLIENT_CERT_MODES = ("required", "optional")


def check_client_ca(endpoint: str, client_ca: object, client_cert: object) -> None:
    """
    C{client_ca}: a PEM file of one or more CA certificates (a path as the
    endpoint's own C{privateKey}: relative to the working directory), on an
    C{ssl:} endpoint only.  C{client_cert}: C{"required"} (a client without
    a certificate fails the TLS handshake) or C{"optional"} (it connects,
    and may use another authentication method).
    """
    if _check_str("client_cert", client_cert) not in CLIENT_CERT_MODES:
        raise ConfigError("client_cert", f"must be 'required' or 'optional', got {client_cert!r}")
    if client_ca is None:
        if client_cert != "required":
            raise ConfigError("client_cert", "only applies together with client_ca")
        return
    path = _check_str("client_ca", client_ca)
    if not endpoint.startswith("ssl:"):
        raise ConfigError("client_ca", f"only applies to an ssl: endpoint, got {endpoint!r}")
    from cryptography import x509  # lazy: only a listen with client_ca reads certificates

    try:
        with open(path, "rb") as stream:
            certificates = x509.load_pem_x509_certificates(stream.read())
    except OSError as exc:
        raise ConfigError("client_ca", f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise ConfigError("client_ca", f"{path} holds no PEM certificate") from None
    if not certificates:
        raise ConfigError("client_ca", f"{path} holds no PEM certificate")


def check_deflate(enabled: bool, compressor: type | None = None) -> None:
    """
    C{websocket_deflate} is refused (fail closed) with an Autobahn whose
    permessage-deflate cannot stop inflating at a size (its
    C{decompress_message_data} takes no C{max_output_len}, as in 25.9.1): a
    small compressed message could inflate without bound there.
    C{compressor}: the class to check (Autobahn's C{PerMessageDeflate}).
    """
    if not enabled:
        return
    if compressor is None:
        from autobahn.websocket.compress_deflate import PerMessageDeflate as compressor  # lazy: only when asked for

    import inspect  # lazy: see above

    if "max_output_len" not in inspect.signature(compressor.decompress_message_data).parameters:
        raise ConfigError(
            "websocket_deflate",
            "the installed Autobahn cannot bound the inflated size of a compressed message "
            "(a decompression bomb); upgrade autobahn (26.11 has the bound) to use it",
        )
