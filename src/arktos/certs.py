"""The cluster's PKI: a CA, the API server's serving certificate, client certificates.

Files live in `DATA_DIR/pki/` (private keys 0600, certificates 0644):

- `ca.crt`/`ca.key`: the cluster CA (EC P-256, 10 years);
- `apiserver.crt`/`apiserver.key`: the serving certificate (1 year, serverAuth);
- `admin.crt`/`admin.key`: CN=admin, O=tenant:system, O=system:masters (clientAuth);
- `apiserver-kubelet-client.crt`/`.key`: the API server's client certificate towards node
  agents, CN=system:kube-apiserver-kubelet-client, O=tenant:system, no group (clientAuth);
  agents serve logs to this identity only;
- `nodes/<node>-serving.crt`/`.key`: a node agent's serving certificate (serverAuth), issued
  by `issue_node_serving_cert`;
- `sa.key`/`sa.pub`: the service-account token signing key pair (EC P-256, for ES256).

Identity in a client certificate follows Arktos: CN is the user, one `O=tenant:<name>` names
the tenant, every other O is a group (see `identity_from_cert`).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import ipaddress
import os
import re
import secrets
import ssl
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TENANT_PREFIX = "tenant:"
CA_DAYS = 3650
SERVING_DAYS = 365
RENEW_BEFORE = dt.timedelta(days=30)
"""A serving or admin certificate this close to expiry is re-issued by `ensure_pki`."""
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
ADMIN_USER, ADMIN_TENANT, ADMIN_GROUPS = "admin", "system", ("system:masters",)
KUBELET_CLIENT_USER, KUBELET_CLIENT_TENANT = "system:kube-apiserver-kubelet-client", "system"
"""The API server's identity towards node agents (no groups: it gets no RBAC rights)."""
NODE_USER_PREFIX, NODE_GROUP, NODE_TENANT = "system:node:", "system:nodes", "system"

IssuerKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class PkiError(Exception):
    """The PKI on disk is missing or unusable; the message says what to do."""


@dataclass(frozen=True)
class Pki:
    """Paths of the cluster's PKI files (see the module docstring)."""

    dir: Path
    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    sa_key: Path
    sa_pub: Path
    kubelet_client_cert: Path
    kubelet_client_key: Path

    @classmethod
    def at(cls, data_dir: Path) -> Pki:
        """The paths under `data_dir/pki` (nothing is read or created)."""
        d = Path(data_dir) / "pki"
        return cls(dir=d, ca_cert=d / "ca.crt", ca_key=d / "ca.key",
                   serving_cert=d / "apiserver.crt", serving_key=d / "apiserver.key",
                   admin_cert=d / "admin.crt", admin_key=d / "admin.key",
                   sa_key=d / "sa.key", sa_pub=d / "sa.pub",
                   kubelet_client_cert=d / "apiserver-kubelet-client.crt",
                   kubelet_client_key=d / "apiserver-kubelet-client.key")

    def node_serving(self, node_name: str) -> tuple[Path, Path]:
        """Where `issue_node_serving_cert` writes a node's serving (cert, key)."""
        return (self.dir / "nodes" / f"{node_name}-serving.crt",
                self.dir / "nodes" / f"{node_name}-serving.key")


# --- files -----------------------------------------------------------------------------------

def _write(path: Path, data: bytes, mode: int) -> None:
    """Write atomically; the file is created with `mode` (never wider, whatever the umask)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_private(path: Path, data: bytes) -> None:
    """Write a secret (a key, a kubeconfig with a key in it) with mode 0600."""
    _write(path, data, 0o600)


def write_public(path: Path, data: bytes) -> None:
    """Write a certificate or public key with mode 0644."""
    _write(path, data, 0o644)


# --- keys and certificates -------------------------------------------------------------------

def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: IssuerKey) -> bytes:
    """PKCS#8 PEM, unencrypted (what kubectl, Python's ssl and PyJWT all read)."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_pem(cert: x509.Certificate) -> bytes:
    """The certificate as PEM."""
    return cert.public_bytes(serialization.Encoding.PEM)


def load_cert(path: Path) -> x509.Certificate:
    """A PEM certificate from `path`."""
    return x509.load_pem_x509_certificate(path.read_bytes())


def load_key(path: Path) -> IssuerKey:
    """A PEM private key (EC or RSA) from `path`."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise PkiError(f"{path}: not an EC or RSA private key")
    return key


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey,
             days: int) -> x509.CertificateBuilder:
    """Subject, issuer, key, a random serial and validity from 5 minutes ago (clock skew)."""
    start = _now() - dt.timedelta(minutes=5)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False))


def _new_ca(days: int = CA_DAYS) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA certificate and its key."""
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "arktos"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "arktos-ca")])
    usage = x509.KeyUsage(digital_signature=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          key_cert_sign=True, crl_sign=True, encipher_only=False,
                          decipher_only=False)
    cert = (_builder(name, name, key.public_key(), days)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(usage, critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def _sign_leaf(ca: tuple[x509.Certificate, IssuerKey], subject: x509.Name,
               public_key: ec.EllipticCurvePublicKey, days: int, *, server: bool,
               sans: Sequence[x509.GeneralName] = ()) -> x509.Certificate:
    """An end-entity certificate for serverAuth (with `sans`) or clientAuth, signed by `ca`."""
    ca_cert, ca_key = ca
    usage = x509.KeyUsage(digital_signature=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          key_cert_sign=False, crl_sign=False, encipher_only=False,
                          decipher_only=False)
    eku = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (_builder(subject, ca_cert.subject, public_key, days)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(usage, critical=True)
               .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                              critical=False))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def client_subject(user: str, tenant: str, groups: Iterable[str] = ()) -> x509.Name:
    """O=tenant:<tenant> (omitted for tenant ""), O=<group>..., CN=<user>."""
    if not user:
        raise ValueError("a client certificate needs a user name")
    groups = list(groups)
    if any(g.startswith(TENANT_PREFIX) for g in groups):
        raise ValueError(f"a group may not start with {TENANT_PREFIX!r}; use the tenant instead")
    orgs = ([TENANT_PREFIX + tenant] if tenant else []) + groups
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
                     + [x509.NameAttribute(NameOID.COMMON_NAME, user)])


def _load_ca(pki: Pki) -> tuple[x509.Certificate, IssuerKey]:
    if not (pki.ca_cert.exists() and pki.ca_key.exists()):
        raise PkiError(f"no cluster CA in {pki.dir}")
    return load_cert(pki.ca_cert), load_key(pki.ca_key)


def issue_client_cert(pki: Pki, *, user: str, tenant: str, groups: Sequence[str] = (),
                      days: int = SERVING_DAYS) -> tuple[bytes, bytes]:
    """A client certificate for `user` in `tenant` with `groups`: (PEM cert, PEM key)."""
    if days <= 0:
        raise ValueError("days must be positive")
    subject = client_subject(user, tenant, groups)
    key = _new_key()
    cert = _sign_leaf(_load_ca(pki), subject, key.public_key(), days, server=False)
    return cert_pem(cert), key_pem(key)


def _attr_values(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    out = []
    for attr in name.get_attributes_for_oid(oid):
        value = attr.value
        out.append(value.decode() if isinstance(value, bytes) else value)
    return out


def identity_from_cert(cert: x509.Certificate) -> tuple[str, str, list[str]]:
    """(user, tenant, groups) from a client certificate, by Arktos' rule.

    CN is the user; an O of `tenant:<name>` carries the tenant (more than one is an error;
    none gives tenant ""); every other O is a group. No CN raises ValueError too.
    """
    names = _attr_values(cert.subject, NameOID.COMMON_NAME)
    if not names or not names[0]:
        raise ValueError("certificate has no common name")
    orgs = _attr_values(cert.subject, NameOID.ORGANIZATION_NAME)
    tenants = [o[len(TENANT_PREFIX):] for o in orgs if o.startswith(TENANT_PREFIX)]
    if len(tenants) > 1:
        raise ValueError("certificate names more than one tenant")
    groups = [o for o in orgs if not o.startswith(TENANT_PREFIX)]
    return names[0], (tenants[0] if tenants else ""), groups


# --- the serving certificate -----------------------------------------------------------------

def _parse_host(host: str) -> IpAddress | str:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host.lower().rstrip(".")


def _wanted_hosts(hosts: Iterable[str]) -> list[IpAddress | str]:
    """Defaults plus `hosts`, deduplicated in order; wildcard listen addresses are dropped."""
    out: list[IpAddress | str] = []
    for h in (*DEFAULT_HOSTS, *hosts):
        parsed = _parse_host(h) if h else ""
        skip = parsed == "" or (not isinstance(parsed, str) and parsed.is_unspecified)
        if not skip and parsed not in out:
            out.append(parsed)
    return out


def _general_names(hosts: Iterable[IpAddress | str]) -> list[x509.GeneralName]:
    return [x509.DNSName(h) if isinstance(h, str) else x509.IPAddress(h) for h in hosts]


def cert_hosts(cert: x509.Certificate) -> list[IpAddress | str]:
    """The DNS names and IP addresses in a certificate's subjectAltName."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    ips: list[IpAddress | str] = [ip for ip in san.get_values_for_type(x509.IPAddress)
                                  if not isinstance(ip, (ipaddress.IPv4Network,
                                                         ipaddress.IPv6Network))]
    return [*(d.lower() for d in san.get_values_for_type(x509.DNSName)), *ips]


def _usable(path: Path, key_path: Path, ca_cert: x509.Certificate) -> x509.Certificate | None:
    """The certificate at `path` if it and its key exist and match, it is signed by `ca_cert`
    and is not near expiry; else None."""
    if not (path.exists() and key_path.exists()):
        return None
    cert = load_cert(path)
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return None
    if load_key(key_path).public_key() != cert.public_key():
        return None
    return cert if cert.not_valid_after_utc - RENEW_BEFORE > _now() else None


def _ensure_server_cert(ca: tuple[x509.Certificate, IssuerKey], paths: tuple[Path, Path],
                        common_name: str, hosts: Sequence[str]) -> None:
    """(Re-)issue the serving certificate at `paths` (cert, key) unless the current one is
    usable and covers every wanted host (the defaults plus `hosts`)."""
    cert_path, key_path = paths
    wanted = _wanted_hosts(hosts)
    current = _usable(cert_path, key_path, ca[0])
    if current is not None:
        have = cert_hosts(current)
        if all(h in have for h in wanted):
            return
        wanted += [h for h in have if h not in wanted]
    key = _new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = _sign_leaf(ca, subject, key.public_key(), SERVING_DAYS, server=True,
                      sans=_general_names(wanted))
    write_private(key_path, key_pem(key))
    write_public(cert_path, cert_pem(cert))


def _ensure_serving(pki: Pki, ca: tuple[x509.Certificate, IssuerKey],
                    hosts: Sequence[str]) -> None:
    _ensure_server_cert(ca, (pki.serving_cert, pki.serving_key), "arktos-apiserver", hosts)


def _ensure_client_cert(ca: tuple[x509.Certificate, IssuerKey], paths: tuple[Path, Path],
                        subject: x509.Name) -> None:
    """(Re-)issue the client certificate at `paths` (cert, key) unless it is usable."""
    cert_path, key_path = paths
    if _usable(cert_path, key_path, ca[0]) is not None:
        return
    key = _new_key()
    cert = _sign_leaf(ca, subject, key.public_key(), SERVING_DAYS, server=False)
    write_private(key_path, key_pem(key))
    write_public(cert_path, cert_pem(cert))


def _ensure_admin(pki: Pki, ca: tuple[x509.Certificate, IssuerKey]) -> None:
    _ensure_client_cert(ca, (pki.admin_cert, pki.admin_key),
                        client_subject(ADMIN_USER, ADMIN_TENANT, ADMIN_GROUPS))


def _ensure_kubelet_client(pki: Pki, ca: tuple[x509.Certificate, IssuerKey]) -> None:
    _ensure_client_cert(ca, (pki.kubelet_client_cert, pki.kubelet_client_key),
                        client_subject(KUBELET_CLIENT_USER, KUBELET_CLIENT_TENANT))


def _ensure_sa(pki: Pki) -> None:
    if pki.sa_key.exists() and pki.sa_pub.exists():
        return
    key = _new_key()
    pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    write_private(pki.sa_key, key_pem(key))
    write_public(pki.sa_pub, pub)


def _ensure_ca(pki: Pki) -> tuple[x509.Certificate, IssuerKey]:
    have_cert, have_key = pki.ca_cert.exists(), pki.ca_key.exists()
    if have_cert and have_key:
        return _load_ca(pki)
    if have_cert or have_key:
        missing = pki.ca_key if have_cert else pki.ca_cert
        raise PkiError(f"{missing} is missing but its pair exists: restore it, or remove "
                       f"{pki.dir} to start a new CA (every issued certificate stops working)")
    cert, key = _new_ca()
    write_private(pki.ca_key, key_pem(key))
    write_public(pki.ca_cert, cert_pem(cert))
    return cert, key


def ensure_pki(data_dir: Path, *, hosts: Sequence[str] = ("localhost", "127.0.0.1")) -> Pki:
    """Create what is missing in `data_dir/pki` and reuse the rest; return the paths.

    The serving certificate is re-issued (for the union of its hosts and `hosts`) when it lacks
    a requested host; it, the admin and the kubelet-client certificates are also re-issued
    when missing, not signed by the CA, or within 30 days of expiry.
    """
    pki = Pki.at(data_dir)
    pki.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _locked(pki):  # two processes starting on one data dir must not make two CAs
        ca = _ensure_ca(pki)
        _ensure_serving(pki, ca, hosts)
        _ensure_admin(pki, ca)
        _ensure_kubelet_client(pki, ca)
        _ensure_sa(pki)
    _ENSURED[:] = [pki]
    return pki


@contextlib.contextmanager
def _locked(pki: Pki) -> Iterator[None]:
    """Hold the PKI directory's lock (an flock on `pki/.lock`)."""
    fd = os.open(pki.dir / ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


_ENSURED: list[Pki] = []


def ensured_pki() -> Pki | None:
    """The PKI the last `ensure_pki` call of this process set up (in the API server process:
    its own), or None. Lets API server code find its credentials (e.g. the kubelet client
    certificate) without being handed them."""
    return _ENSURED[0] if _ENSURED else None


_NODE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _check_node_name(node_name: str) -> None:
    if len(node_name) > 253 or not _NODE_NAME.match(node_name):
        raise ValueError(f"{node_name!r} is not a valid node name (a DNS subdomain)")


def issue_node_serving_cert(pki: Pki, node_name: str,
                            hosts: Sequence[str] = ()) -> tuple[Path, Path]:
    """A node agent's serving certificate, for `node_name`, `hosts` (its addresses),
    localhost, 127.0.0.1 and ::1; written to `pki.node_serving(node_name)`, whose
    (cert, key) paths are returned. An existing usable one covering them is kept."""
    _check_node_name(node_name)
    paths = pki.node_serving(node_name)
    paths[0].parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _locked(pki):
        _ensure_server_cert(_load_ca(pki), paths, f"{NODE_USER_PREFIX}{node_name}",
                            [node_name, *hosts])
    return paths


def issue_node_client_cert(pki: Pki, node_name: str,
                           days: int = SERVING_DAYS) -> tuple[bytes, bytes]:
    """A node's client certificate (CN=system:node:<name>, group system:nodes, tenant
    system: what the node authorizer knows): (PEM cert, PEM key)."""
    _check_node_name(node_name)
    return issue_client_cert(pki, user=NODE_USER_PREFIX + node_name, tenant=NODE_TENANT,
                             groups=(NODE_GROUP,), days=days)


def load_pki(data_dir: Path) -> Pki:
    """The existing PKI of `data_dir` (read-only); PkiError if it has no CA."""
    pki = Pki.at(data_dir)
    if not (pki.ca_cert.exists() and pki.ca_key.exists()):
        raise PkiError(f"no cluster CA in {pki.dir}: start the cluster once with "
                       f"`arktos up --data-dir {data_dir}`")
    return pki


# --- kubeconfigs -----------------------------------------------------------------------------

def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig_for(pki: Pki, *, server: str, user: str, tenant: str, cert_pem: bytes,
                   key_pem: bytes, namespace: str = "default") -> dict[str, Any]:
    """A kubeconfig dict: one cluster, one user with inline cert/key, one context."""
    name, context = f"{tenant}-{user}", f"{tenant}-{user}@arktos"
    cluster = {"server": server, "certificate-authority-data": _b64(pki.ca_cert.read_bytes())}
    creds = {"client-certificate-data": _b64(cert_pem), "client-key-data": _b64(key_pem)}
    return {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": "arktos", "cluster": cluster}],
        "users": [{"name": name, "user": creds}],
        "contexts": [{"name": context, "context": {"cluster": "arktos", "user": name,
                                                     "tenant": tenant, "namespace": namespace}}],
        "current-context": context,
    }


def write_kubeconfig_for(pki: Pki, *, server: str, user: str, tenant: str, cert_pem: bytes,
                         key_pem: bytes, out: Path, namespace: str = "default") -> None:
    """Write `kubeconfig_for(...)` to `out` (YAML, mode 0600)."""
    config = kubeconfig_for(pki, server=server, user=user, tenant=tenant, cert_pem=cert_pem,
                            key_pem=key_pem, namespace=namespace)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_private(out, yaml.safe_dump(config, sort_keys=False).encode())


def admin_kubeconfig(pki: Pki, server: str) -> dict[str, Any]:
    """The kubeconfig dict of the admin certificate (tenant system, group system:masters)."""
    return kubeconfig_for(pki, server=server, user=ADMIN_USER, tenant=ADMIN_TENANT,
                          cert_pem=pki.admin_cert.read_bytes(),
                          key_pem=pki.admin_key.read_bytes())


def server_context(cert: Path, key: Path, client_ca: Path, *,
                   require_client: bool) -> ssl.SSLContext:
    """TLS for a server: serve with `cert`/`key`; verify client certificates against the CA
    in `client_ca`, requiring one if `require_client` (else asking for one)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(client_ca)
    ctx.verify_mode = ssl.CERT_REQUIRED if require_client else ssl.CERT_OPTIONAL
    return ctx
