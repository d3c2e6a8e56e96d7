"""A real RFC 3161 time-stamping authority on 127.0.0.1 for the tests: `openssl ts -reply` behind a
small HTTP handler, with a certificate authority and a TSA certificate made for the run.

    with TimestampAuthority(folder) as tsa:
        tsa.url        # POST a TimeStampReq here (Content-Type application/timestamp-query)
        tsa.ca_path    # PEM of the authority's CA: what TIMESTAMP_CA_CERTS points at
        tsa.requests   # how many requests it answered
        tsa.failing = True   # answer 503 from now on (an outage)
"""

import datetime
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CONFIG = """\
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {folder}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.crt
certs = $dir/ca.crt
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject, issuer, public_key, signing_key, *, ca):
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer)).public_key(public_key)
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True)
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=True, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False),
            critical=True)
    return builder.sign(signing_key, hashes.SHA256())


def make_authority(folder, name="Test TSA"):
    """Key and certificates of a CA and of a TSA it certified, in `folder`; returns the CA's PEM path."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, tsa_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate(f"{name} CA", f"{name} CA", ca_key.public_key(), ca_key, ca=True)
    tsa = _certificate(name, f"{name} CA", tsa_key.public_key(), ca_key, ca=False)
    (folder / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "tsa.crt").write_bytes(tsa.public_bytes(serialization.Encoding.PEM))
    (folder / "tsa.key").write_bytes(tsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (folder / "serial").write_text("01\n")
    (folder / "openssl.cnf").write_text(CONFIG.format(folder=folder))
    return folder / "ca.crt"


class TimestampAuthority:
    def __init__(self, folder):
        self.folder = Path(folder)
        self.ca_path = make_authority(self.folder)
        self.requests = 0
        self.failing = False
        self._lock = threading.Lock()

    def reply(self, query):
        """`openssl ts -reply` for one DER TimeStampReq; returns the DER TimeStampResp."""
        with self._lock:  # one serial file
            result = subprocess.run(
                ["openssl", "ts", "-reply", "-config", str(self.folder / "openssl.cnf"), "-queryfile", "/dev/stdin",
                 "-out", "/dev/stdout"],
                input=query, capture_output=True, check=True, timeout=30)
            self.requests += 1
            return result.stdout

    def __enter__(self):
        authority = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                query = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if authority.failing or self.headers.get("Content-Type") != "application/timestamp-query":
                    self.send_response(503 if authority.failing else 415)
                    self.end_headers()
                    return
                body = authority.reply(query)
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tsa"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
