"""HTTPS for the emulator: a private certificate authority and a server certificate for localhost.

MSAL only talks to an authority over HTTPS, so the emulator can serve TLS with a certificate it
makes itself. :func:`ensure_tls_files` writes, into one directory, a CA certificate (the bundle
clients pass as ``verify=``), and a server certificate + key for ``127.0.0.1``, ``::1`` and
``localhost`` signed by that CA. Existing files are reused while valid for the same hosts and
consistent (the server certificate signed by the CA, the key the certificate's), so a client
that saved the CA path keeps working across restarts. Each file is written to a temporary file
and renamed into place, so a reader never sees a half-written file; a set left inconsistent by a
crash between two files is detected and made anew.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from crmsync.emulator.errors import EmulatorConfigError

DEFAULT_HOSTS: tuple[str, ...] = ("127.0.0.1", "::1", "localhost")
_VALID_DAYS = 365
_RENEW_BEFORE = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Paths of the generated PEM files."""

    ca_certificate: Path
    server_certificate: Path
    server_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "crmsync emulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _alt_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _files(directory: Path) -> TlsFiles:
    return TlsFiles(
        ca_certificate=directory / "emulator-ca.pem",
        server_certificate=directory / "emulator-server.pem",
        server_key=directory / "emulator-server-key.pem",
    )


def _key_matches(certificate: x509.Certificate, key_pem: bytes) -> bool:
    """Whether ``key_pem`` is the private key of ``certificate`` (same public key)."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return False
    # Comparing the encoded public keys compares their public numbers, for any key type.
    der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_key().public_bytes(der, spki) == certificate.public_key().public_bytes(
        der, spki
    )


def _reusable(files: TlsFiles, hosts: Sequence[str], now: dt.datetime) -> bool:
    paths = (files.ca_certificate, files.server_certificate, files.server_key)
    if not all(path.is_file() for path in paths):
        return False
    try:
        server = x509.load_pem_x509_certificate(files.server_certificate.read_bytes())
        ca = x509.load_pem_x509_certificate(files.ca_certificate.read_bytes())
        san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        server.verify_directly_issued_by(ca)
        key_pem = files.server_key.read_bytes()
    except (OSError, ValueError, TypeError, x509.ExtensionNotFound, InvalidSignature):
        return False
    wanted = set(_alt_names(hosts))
    return (
        wanted <= set(san)
        and _key_matches(server, key_pem)
        and server.not_valid_after_utc - now > _RENEW_BEFORE
        and ca.not_valid_after_utc - now > _RENEW_BEFORE
    )


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file beside it, synced, renamed."""
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600 if private else 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _sync_directory(directory: Path) -> None:
    """Make the renames durable (best effort: not every platform can open a directory)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def generate_tls_files(
    directory: str | Path,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    *,
    now: dt.datetime | None = None,
) -> TlsFiles:
    """Write a fresh CA and a server certificate for ``hosts`` into ``directory``."""
    if not hosts:
        raise EmulatorConfigError("a TLS certificate needs at least one host name or address")
    target = Path(directory)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EmulatorConfigError(f"cannot create the TLS directory {target}: {exc}") from exc
    moment = now or dt.datetime.now(dt.UTC)
    start = moment - dt.timedelta(hours=1)
    end = moment + dt.timedelta(days=_VALID_DAYS)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("crmsync emulator local CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(_alt_names(hosts)), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    files = _files(target)
    pem = serialization.Encoding.PEM
    try:
        _write(
            files.server_key,
            server_key.private_bytes(
                pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
            private=True,
        )
        _write(files.server_certificate, server_cert.public_bytes(pem))
        _write(files.ca_certificate, ca_cert.public_bytes(pem))
    except OSError as exc:
        raise EmulatorConfigError(f"cannot write the TLS files in {target}: {exc}") from exc
    _sync_directory(target)
    return files


@contextmanager
def _directory_lock(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``directory`` (emulators starting together make one set)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle = open(directory / ".emulator-tls.lock", "ab")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise EmulatorConfigError(f"cannot create the TLS directory {directory}: {exc}") from exc
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def ensure_tls_files(
    directory: str | Path,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    *,
    now: dt.datetime | None = None,
) -> TlsFiles:
    """Reuse the CA and server certificate in ``directory`` if still good, else make new ones.

    Checking and making happen under a lock on the directory, so emulators started at the same
    time on one directory end up with one consistent set.
    """
    moment = now or dt.datetime.now(dt.UTC)
    target = Path(directory)
    with _directory_lock(target):
        files = _files(target)
        if _reusable(files, hosts, moment):
            return files
        return generate_tls_files(target, hosts, now=moment)
