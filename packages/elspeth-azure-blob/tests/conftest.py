"""Azurite, the real Azure Storage emulator, on a free 127.0.0.1 port for the whole session.

The first session installs it with ``npm install azurite@3`` into ``<repo>/.cache/azurite`` (or
``$ELSPETH_AZURITE_DIR``); later sessions reuse that install. Every test gets its own container.
A second instance, ``azurite_https``, serves HTTPS with a self-signed certificate and checks OAuth
bearer tokens (Azurite's ``--oauth basic``: issuer, audience and lifetime, not the signature), for
the ``DefaultAzureCredential`` path.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import http.client
import ipaddress
import os
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# Azurite's published development account: https://learn.microsoft.com/azure/storage/common/storage-use-azurite
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
REPO_ROOT = Path(__file__).resolve().parents[3]
INSTALL_TIMEOUT_S = 600
START_TIMEOUT_S = 60


@dataclass(frozen=True)
class Azurite:
    """A running Azurite blob service; ``cert`` is the certificate of an HTTPS one."""

    port: int
    setup_s: float
    account: str = ACCOUNT
    key: str = KEY
    cert: Path | None = None

    @property
    def account_url(self) -> str:
        return f"{'https' if self.cert else 'http'}://127.0.0.1:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={self.account_url};"


def _install_dir() -> Path:
    return Path(os.environ.get("ELSPETH_AZURITE_DIR") or REPO_ROOT / ".cache" / "azurite")


def _azurite_binary() -> Path:
    folder = _install_dir()
    binary = folder / "node_modules" / ".bin" / "azurite-blob"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("the Azure Blob tests need Azurite, installed with npm, but `npm` is not on PATH", pytrace=False)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two sessions at once install it only once
        if not binary.exists():
            done = subprocess.run(
                [npm, "install", "--prefix", str(folder), "azurite@3", "--no-audit", "--no-fund", "--loglevel=error"],
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_S,
                check=False,
            )
            if done.returncode != 0 or not binary.exists():
                pytest.fail(f"`npm install azurite@3` into {folder} failed:\n{done.stderr[-3000:]}", pytrace=False)
    return binary


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(port: int, cert: Path | None = None) -> bool:
    conn: http.client.HTTPConnection
    if cert is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    else:
        context = ssl.create_default_context(cafile=str(cert))
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=2, context=context)
    try:
        conn.request("GET", f"/{ACCOUNT}?comp=list")
        conn.getresponse().read()
    except OSError:
        return False
    finally:
        conn.close()
    return True


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate (and its key) for 127.0.0.1, valid for a day; the client trusts it as its own CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@contextlib.contextmanager
def _running(location: Path, *extra: str, cert: Path | None = None) -> Iterator[Azurite]:
    """Start ``azurite-blob`` on a free loopback port with ``extra`` arguments; stop it afterwards."""
    t0 = time.perf_counter()
    binary = _azurite_binary()
    port = _free_port()
    log = (location / "azurite.log").open("wb")
    process = subprocess.Popen(
        [
            str(binary),
            *("--blobHost", "127.0.0.1", "--blobPort", str(port)),
            *("--location", str(location / "data")),
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
            *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(port, cert):
            if process.poll() is not None:
                pytest.fail(
                    f"azurite-blob exited with {process.returncode}:\n{(location / 'azurite.log').read_text()}",
                    pytrace=False,
                )
            if time.monotonic() > deadline:
                pytest.fail(f"azurite-blob did not answer on 127.0.0.1:{port} in {START_TIMEOUT_S} s", pytrace=False)
            time.sleep(0.1)
        yield Azurite(port, time.perf_counter() - t0, cert=cert)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Start ``azurite-blob`` on a free loopback port; stop it when the session ends."""
    with _running(tmp_path_factory.mktemp("azurite")) as server:
        yield server


@pytest.fixture(scope="session")
def azurite_https(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """A second ``azurite-blob`` over HTTPS that accepts OAuth bearer tokens (``--oauth basic``)."""
    location = tmp_path_factory.mktemp("azurite-https")
    cert, key = _self_signed(location)
    with _running(location, "--oauth", "basic", "--cert", str(cert), "--key", str(key), cert=cert) as server:
        yield server


@pytest.fixture(autouse=True)
def _only_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy may carry a test's traffic away from 127.0.0.1."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def azure_env(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Secrets in environment variables, as a user provides them: a connection string and the account key."""
    env = {"TEST_AZURITE_CONNECTION": azurite.connection_string, "TEST_AZURITE_KEY": KEY}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def service(azurite: Azurite):  # type: ignore[no-untyped-def]
    """A client of the emulator for setting up and checking blobs directly."""
    from azure.storage.blob import BlobServiceClient

    with BlobServiceClient.from_connection_string(azurite.connection_string) as client:
        yield client


@pytest.fixture
def container(service) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh, empty container for one test; deleted afterwards."""
    name = f"t{uuid.uuid4().hex[:20]}"
    service.create_container(name)
    yield name
    with contextlib.suppress(Exception):
        service.delete_container(name)
