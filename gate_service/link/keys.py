"""The site's Ed25519 key pair: made on first start in the data dir (mode 0600), used to sign chain heads."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

KEY_FILE = "site-ed25519.pem"


class SiteKey:
    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public_raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def public_b64(self) -> str:
        return base64.b64encode(self.public_raw).decode()

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)


def load_or_create(data_dir: Path) -> SiteKey:
    """The key in ``data_dir/link/``; created once. A lost key means re-enrolment by an admin, by design."""
    folder = Path(data_dir) / "link"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / KEY_FILE
    if path.exists():
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise SystemExit(f"{path} is not an Ed25519 private key")
        return SiteKey(private)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    # O_EXCL with mode 0600 from the start: the secret is never readable by others, not even for a moment,
    # and two processes starting together cannot both write one.
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process won the race: use its key
    finally:
        tmp.unlink(missing_ok=True)
    return load_or_create(data_dir)


def public_key_from_b64(text: str) -> bytes:
    raw = base64.b64decode(text, validate=True)
    Ed25519PublicKey.from_public_bytes(raw)  # raises ValueError when it is not a key
    return raw


def verify(public_raw: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
