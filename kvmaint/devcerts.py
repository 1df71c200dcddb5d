"""Development certificates for mTLS between the scheduler and its agents, and the server-side credentials.

`kvmaint-devcerts --out DIR --hosts db-1 db-2` writes a throwaway CA (ca.pem, ca-key.pem), a scheduler
certificate valid for localhost and 127.0.0.1 (scheduler.pem, scheduler-key.pem), and one client
certificate per host whose subject CN is the host id (HOST.pem, HOST-key.pem): the scheduler can then
require that CN to equal the host_id an agent claims in its hello; and per host a certificate for its
Redis servers (HOST-redis.pem, HOST-redis-key.pem; serverAuth and clientAuth, valid for the host id,
localhost and 127.0.0.1) for a TLS fleet (kvmaint-agent --redis-tls-*). For development and tests only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kvmaint.version import add_version_flag

VALID_DAYS = 365


@dataclass(frozen=True)
class Issued:
    cert_pem: bytes
    key_pem: bytes


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kvmaint development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _validity(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    return now - dt.timedelta(minutes=5), now + dt.timedelta(days=VALID_DAYS)


def make_ca(now: dt.datetime, name: str = "kvmaint dev CA") -> tuple[Issued, ec.EllipticCurvePrivateKey]:
    key = _key()
    not_before, not_after = _validity(now)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)), key


def issue(
    ca: Issued,
    ca_key: ec.EllipticCurvePrivateKey,
    common_name: str,
    now: dt.datetime,
    dns_names: Sequence[str] = (),
    ips: Sequence[str] = (),
    server: bool = False,
    client: bool | None = None,
) -> Issued:
    """A leaf certificate signed by the CA: a server one (serverAuth), a client one (clientAuth), or with
    `server` and `client` both (a Redis server, which is also a client of its primary)."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    key = _key()
    not_before, not_after = _validity(now)
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dict.fromkeys([*dns_names])]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    client = (not server) if client is None else client
    usage = [ExtendedKeyUsageOID.SERVER_AUTH] * server + [ExtendedKeyUsageOID.CLIENT_AUTH] * client
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _write(path: Path, data: bytes, secret: bool = False) -> None:
    path.write_bytes(data)
    if secret:
        os.chmod(path, 0o600)


def write_dev_pki(
    out: Path, hosts: Sequence[str], scheduler_name: str = "localhost", now: dt.datetime | None = None
) -> list[Path]:
    """Writes the CA, the scheduler's certificate and one client certificate per host; returns the files."""
    now = now or dt.datetime.now(dt.UTC)
    out.mkdir(parents=True, exist_ok=True)
    ca, ca_key = make_ca(now)
    written: list[Path] = []

    def save(stem: str, issued: Issued) -> None:
        _write(out / f"{stem}.pem", issued.cert_pem)
        _write(out / f"{stem}-key.pem", issued.key_pem, secret=True)
        written.extend([out / f"{stem}.pem", out / f"{stem}-key.pem"])

    save("ca", ca)
    save(
        "scheduler",
        issue(
            ca,
            ca_key,
            scheduler_name,
            now,
            dns_names=[scheduler_name, "localhost"],
            ips=["127.0.0.1", "::1"],
            server=True,
        ),
    )
    for host in hosts:
        save(host, issue(ca, ca_key, host, now, dns_names=[host]))
        # The host's Redis servers (kvmaint-agent --redis-tls-cert): clients and replicas verify it.
        redis_names = [host, "localhost"]
        redis_ips = ["127.0.0.1", "::1"]
        save(
            f"{host}-redis",
            issue(ca, ca_key, host, now, dns_names=redis_names, ips=redis_ips, server=True, client=True),
        )
    return written


def server_credentials(ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> grpc.ServerCredentials:
    """Scheduler-side mTLS: present cert/key and accept only clients with a certificate from the CA."""
    return grpc.ssl_server_credentials(
        [(key_pem, cert_pem)], root_certificates=ca_pem, require_client_auth=True
    )


def peer_common_name(auth_context: Mapping[str, Sequence[bytes]]) -> str | None:
    """The client certificate's CN from a grpc ServicerContext.auth_context(), None without mTLS."""
    values = auth_context.get("x509_common_name") or ()
    return values[0].decode() if values else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kvmaint-devcerts", description="Write development mTLS certificates."
    )
    add_version_flag(parser)
    parser.add_argument("--out", required=True, help="directory to write the PEM files into")
    parser.add_argument("--hosts", nargs="+", default=[], help="host ids to issue client certificates for")
    parser.add_argument(
        "--scheduler-name", default="localhost", help="DNS name in the scheduler's certificate"
    )
    args = parser.parse_args(argv)
    bad = [h for h in args.hosts if not h or "/" in h or h in ("ca", "scheduler")]
    if bad:
        print(f"kvmaint-devcerts: unusable host id(s): {', '.join(map(repr, bad))}", file=sys.stderr)
        return 2
    for path in write_dev_pki(Path(args.out), args.hosts, args.scheduler_name):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
