"""What cert-manager would write into the Secrets of the rendered Certificates,
made here for the loopback test: a CA from the manifests' CA Certificate (isCA),
and for every other Certificate a Secret's tls.crt, tls.key and ca.crt issued by
that CA with the Certificate's key algorithm and size, key encoding, usages,
commonName and dnsNames (plus names the caller adds)."""
import datetime
import ipaddress
import os
import re

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

EXTENDED_USAGES = {"server auth": ExtendedKeyUsageOID.SERVER_AUTH, "client auth": ExtendedKeyUsageOID.CLIENT_AUTH}
KEY_USAGES = {"digital signature": "digital_signature", "key encipherment": "key_encipherment",
              "cert sign": "key_cert_sign", "crl sign": "crl_sign"}
# cert-manager's usages when a Certificate names none.
DEFAULT_USAGES = ["digital signature", "key encipherment"]


def private_key(spec):
    pk = spec.get("privateKey", {})
    algorithm = pk.get("algorithm", "RSA")
    if algorithm == "ECDSA":
        curve = {256: ec.SECP256R1, 384: ec.SECP384R1, 521: ec.SECP521R1}[pk.get("size", 256)]
        return ec.generate_private_key(curve())
    if algorithm == "Ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=pk.get("size", 2048))


def key_pem(key, spec):
    """cert-manager's encodings: PKCS1 (the default; SEC1 for ECDSA) or PKCS8."""
    pkcs8 = spec.get("privateKey", {}).get("encoding", "PKCS1") == "PKCS8" or isinstance(key, ed25519.Ed25519PrivateKey)
    fmt = serialization.PrivateFormat.PKCS8 if pkcs8 else serialization.PrivateFormat.TraditionalOpenSSL
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def duration(spec, default_hours=2160):
    m = re.fullmatch(r"(\d+)h", spec.get("duration", f"{default_hours}h"))
    assert m, f"duration {spec.get('duration')}: only hours are understood here"
    return datetime.timedelta(hours=int(m.group(1)))


def signature_hash(key):
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def key_usage(usages, ca):
    flags = {v: False for v in ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                                "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")}
    for u in usages:
        if u in KEY_USAGES:
            flags[KEY_USAGES[u]] = True
    if ca:
        flags["key_cert_sign"] = True
    return x509.KeyUsage(**flags)


def build(spec, key, issuer_name, issuer_key, issuer_public, extra_dns=(), extra_ips=()):
    now = datetime.datetime.now(datetime.timezone.utc)
    ca = bool(spec.get("isCA"))
    usages = spec.get("usages", DEFAULT_USAGES)
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, spec["commonName"])]))
         .issuer_name(issuer_name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, spec["commonName"])]))
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + duration(spec))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(key_usage(usages, ca), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public), critical=False))
    extended = [EXTENDED_USAGES[u] for u in usages if u in EXTENDED_USAGES]
    if extended:
        b = b.add_extension(x509.ExtendedKeyUsage(extended), critical=False)
    sans = [x509.DNSName(n) for n in list(spec.get("dnsNames", [])) + list(extra_dns)]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in list(spec.get("ipAddresses", [])) + list(extra_ips)]
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(issuer_key, signature_hash(issuer_key))


class Issuer:
    """The CA of the rendered CA Issuer, made here, issuing the rendered Certificates."""

    def __init__(self, docs):
        self.docs = docs
        certs = [d for d in docs if d["kind"] == "Certificate"]
        (ca_cert,) = [c for c in certs if c["spec"].get("isCA")]
        self.ca_secret = ca_cert["spec"]["secretName"]
        self.ca_key = private_key(ca_cert["spec"])
        self.ca = build(ca_cert["spec"], self.ca_key, None, self.ca_key, self.ca_key.public_key())
        self.by_secret = {c["spec"]["secretName"]: c for c in certs}

    def ca_pem(self):
        return self.ca.public_bytes(serialization.Encoding.PEM)

    def is_certificate_secret(self, secret_name):
        return secret_name in self.by_secret and secret_name != self.ca_secret

    def write_secret(self, secret_name, directory, extra_dns=(), extra_ips=()):
        """tls.crt, tls.key and ca.crt of the Certificate whose secretName is
        `secret_name`, in `directory`; extra_* are added to its names."""
        spec = self.by_secret[secret_name]["spec"]
        key = private_key(spec)
        cert = build(spec, key, self.ca.subject, self.ca_key, self.ca_key.public_key(), extra_dns, extra_ips)
        os.makedirs(directory, exist_ok=True)
        files = {"tls.crt": cert.public_bytes(serialization.Encoding.PEM), "tls.key": key_pem(key, spec),
                 "ca.crt": self.ca_pem()}
        for name, data in files.items():
            with open(os.path.join(directory, name), "wb") as f:
                f.write(data)
        return files

    def server_usages(self, secret_name):
        return "server auth" in self.by_secret[secret_name]["spec"].get("usages", DEFAULT_USAGES)


def other_ca_client(directory, common_name="intruder"):
    """A client certificate with its key and CA from a CA of its own (not the
    deployment's): what the worker port must refuse."""
    spec = {"commonName": common_name, "usages": ["digital signature", "client auth"],
            "privateKey": {"algorithm": "ECDSA", "size": 256, "encoding": "PKCS8"}}
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = build({"commonName": "other-ca", "isCA": True}, ca_key, None, ca_key, ca_key.public_key())
    key = private_key(spec)
    cert = build(spec, key, ca.subject, ca_key, ca_key.public_key())
    os.makedirs(directory, exist_ok=True)
    files = {"tls.crt": cert.public_bytes(serialization.Encoding.PEM), "tls.key": key_pem(key, spec),
             "ca.crt": ca.public_bytes(serialization.Encoding.PEM)}
    for name, data in files.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)
    return files
