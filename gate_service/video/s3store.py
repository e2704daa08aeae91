"""Media in an S3-compatible bucket (``CLEANGATE_MEDIA_URL=s3://bucket/prefix``), behind the ``BlobStore`` seam.

Endpoint, keys and region come from the standard variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``), as every S3 tool reads them.

Client: aiobotocore. It is botocore (the signing, retries and S3 quirks boto3 has) on aiohttp, the HTTP stack
the service already runs on, so a request waits on the event loop like any other socket and no thread is held
per upload; boto3 in a thread would hold one of the default executor's few threads for every part of every
segment while the plate reader competes for the same cores. Disk reads and hashing of parts still go to a
thread (``asyncio.to_thread``).

Integrity: every object goes up with ``x-amz-checksum-sha256`` (per part for multipart uploads); the server
rejects a body that does not match it (``BadDigest``), and the checksum it reports back after the upload
(``HeadObject`` with checksum mode) is compared with ours: a single object's with the file's sha256, a
multipart object's composite (sha256 of the parts' digests, ``-N``) with the one computed from our own parts.
Measured on SeaweedFS 4.48 (tests/video/test_s3_store.py): it validates and returns both kinds.

``put_file(move=True)`` deletes the local file only after the object is confirmed: the store going away in the
middle of an upload raises, aborts the multipart upload and leaves the file where it was.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from gate_service.video.storage import StoredBlob, check_key, sha256_file

log = logging.getLogger(__name__)

# Parts of 8 MiB: a 10-minute 1080p stream-copy segment (~150-300 MB) is 20-40 parts, each retried on its own;
# S3 allows at most 10,000 parts and at least 5 MiB for all but the last.
PART_BYTES = 8 << 20
MULTIPART_FROM = 16 << 20
CACHE_BYTES = 2 << 30  # downloaded objects kept for local readers (clip cutting, the player)


class StoreUnavailable(OSError):
    """The object store did not answer or refused: the caller keeps its local copy and retries later."""


class ChecksumMismatch(OSError):
    """The object store holds other bytes than we sent."""


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"CLEANGATE_MEDIA_URL must look like s3://bucket/prefix, got {url!r}")
        prefix = parsed.path.strip("/")
        return cls(parsed.netloc, f"{check_key(prefix)}/" if prefix else "")


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _read_part(path: Path, offset: int, length: int) -> tuple[bytes, bytes]:
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read(length)
    return data, hashlib.sha256(data).digest()


class S3Store:
    """Blobs as objects ``prefix + key`` in one bucket."""

    def __init__(self, location: S3Location, cache_dir: Path, *, endpoint_url: str | None = None,
                 access_key: str | None = None, secret_key: str | None = None, region: str | None = None,
                 part_bytes: int = PART_BYTES, multipart_from: int = MULTIPART_FROM,
                 cache_bytes: int = CACHE_BYTES) -> None:
        self.location = location
        self.cache_dir = Path(cache_dir)
        self.endpoint_url = endpoint_url
        self._access_key, self._secret_key = access_key, secret_key
        self.region = region or "us-east-1"
        self.part_bytes = max(5 << 20, part_bytes)
        self.multipart_from = max(self.part_bytes, multipart_from)
        self.cache_bytes = cache_bytes
        self._client: Any = None
        self._exit: contextlib.AsyncExitStack | None = None
        self._client_lock = asyncio.Lock()

    @classmethod
    def from_env(cls, url: str, data_dir: Path, env: dict[str, str] | None = None) -> S3Store:
        env = dict(os.environ if env is None else env)
        return cls(S3Location.parse(url), Path(data_dir) / "cache" / "media",
                   endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None,
                   access_key=env.get("AWS_ACCESS_KEY_ID") or None,
                   secret_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
                   region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None)

    def __repr__(self) -> str:
        # Never the keys: this lands in logs.
        return f"S3Store(s3://{self.location.bucket}/{self.location.prefix}, endpoint={self.endpoint_url!r})"

    def object_name(self, key: str) -> str:
        return self.location.prefix + check_key(key)

    async def client(self) -> Any:
        if self._client is None:
            async with self._client_lock:
                if self._client is None:
                    from aiobotocore.session import get_session
                    from botocore.config import Config

                    stack = contextlib.AsyncExitStack()
                    self._client = await stack.enter_async_context(get_session().create_client(
                        "s3", endpoint_url=self.endpoint_url, region_name=self.region,
                        aws_access_key_id=self._access_key, aws_secret_access_key=self._secret_key,
                        config=Config(s3={"addressing_style": "path"}, connect_timeout=5, read_timeout=60,
                                      retries={"max_attempts": 3, "mode": "standard"},
                                      request_checksum_calculation="when_required",
                                      response_checksum_validation="when_required")))
                    self._exit = stack
        return self._client

    async def aclose(self) -> None:
        if self._exit is not None:
            await self._exit.aclose()
        self._client = self._exit = None

    async def ensure_bucket(self) -> None:
        """Create the bucket when it is missing (a fresh SeaweedFS or MinIO); fine if it exists."""
        client = await self.client()
        try:
            await client.head_bucket(Bucket=self.location.bucket)
        except Exception as exc:  # noqa: BLE001 - botocore raises ClientError with a code, not a type
            if _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise _unavailable(exc) from exc
            await client.create_bucket(Bucket=self.location.bucket)

    # ---- the BlobStore methods --------------------------------------------------------------------

    async def put(self, key: str, data: bytes) -> StoredBlob:
        data = bytes(data)
        digest = await asyncio.to_thread(lambda: hashlib.sha256(data).digest())
        await self._put_object(key, data, digest)
        await self._confirm(key, _b64(digest), len(data))
        return StoredBlob(key, len(data), digest.hex())

    async def put_file(self, key: str, path: Path, *, move: bool = True) -> StoredBlob:
        path = Path(path)
        size = (await asyncio.to_thread(path.stat)).st_size
        if size < self.multipart_from:
            data, digest = await asyncio.to_thread(_read_part, path, 0, size)
            await self._put_object(key, data, digest)
            await self._confirm(key, _b64(digest), size)
            whole = digest.hex()
        else:
            composite = await self._multipart(key, path, size)
            await self._confirm(key, composite, size)
            # The row keeps the file's own sha256 (what a court compares with a download), not the composite.
            whole = (await asyncio.to_thread(sha256_file, path))[1]
        if move:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        return StoredBlob(key, size, whole)

    async def read(self, key: str, start: int = 0, length: int | None = None) -> bytes:
        client = await self.client()
        args: dict[str, Any] = {"Bucket": self.location.bucket, "Key": self.object_name(key)}
        if start > 0 or length is not None:
            if length is not None and length <= 0:
                return b""
            end = "" if length is None else str(max(0, start) + length - 1)
            args["Range"] = f"bytes={max(0, start)}-{end}"
        try:
            response = await client.get_object(**args)
        except Exception as exc:  # noqa: BLE001
            if _code(exc) in ("NoSuchKey", "404"):
                raise FileNotFoundError(key) from None
            if _code(exc) == "InvalidRange":
                return b""
            raise _unavailable(exc) from exc
        async with response["Body"] as body:
            return await body.read()

    async def local_path(self, key: str) -> Path:
        target = self.cache_dir / check_key(key)
        size = await self.size(key)
        if size is None:
            raise FileNotFoundError(key)
        if await asyncio.to_thread(_cached, target, size):
            return target
        await self._download(key, target)
        await asyncio.to_thread(_trim_cache, self.cache_dir, self.cache_bytes, target)
        return target

    async def delete(self, key: str) -> bool:
        existed = await self.exists(key)
        if existed:
            client = await self.client()
            try:
                await client.delete_object(Bucket=self.location.bucket, Key=self.object_name(key))
            except Exception as exc:  # noqa: BLE001
                raise _unavailable(exc) from exc
        await asyncio.to_thread(_unlink_cached, self.cache_dir, key)
        return existed

    async def size(self, key: str) -> int | None:
        head = await self._head(key)
        return None if head is None else int(head["ContentLength"])

    async def exists(self, key: str) -> bool:
        return await self._head(key) is not None

    # ---- internals --------------------------------------------------------------------------------

    async def _head(self, key: str, *, checksum: bool = False) -> dict[str, Any] | None:
        client = await self.client()
        args: dict[str, Any] = {"Bucket": self.location.bucket, "Key": self.object_name(key)}
        if checksum:
            args["ChecksumMode"] = "ENABLED"
        try:
            return await client.head_object(**args)
        except Exception as exc:  # noqa: BLE001
            if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise _unavailable(exc) from exc

    async def _put_object(self, key: str, data: bytes, digest: bytes) -> None:
        client = await self.client()
        try:
            await client.put_object(Bucket=self.location.bucket, Key=self.object_name(key), Body=data,
                                    ChecksumSHA256=_b64(digest), ContentType=_content_type(key))
        except Exception as exc:  # noqa: BLE001
            raise _unavailable(exc) from exc

    async def _multipart(self, key: str, path: Path, size: int) -> str:
        """Upload in parts, each with its sha256; return the composite checksum the server must report."""
        client = await self.client()
        name = self.object_name(key)
        try:
            upload = await client.create_multipart_upload(Bucket=self.location.bucket, Key=name,
                                                          ChecksumAlgorithm="SHA256",
                                                          ContentType=_content_type(key))
        except Exception as exc:  # noqa: BLE001
            raise _unavailable(exc) from exc
        upload_id = upload["UploadId"]
        parts: list[dict[str, Any]] = []
        digests: list[bytes] = []
        try:
            for number, offset in enumerate(range(0, size, self.part_bytes), start=1):
                data, digest = await asyncio.to_thread(_read_part, path, offset, self.part_bytes)
                answer = await client.upload_part(Bucket=self.location.bucket, Key=name, UploadId=upload_id,
                                                  PartNumber=number, Body=data, ChecksumSHA256=_b64(digest))
                if answer.get("ChecksumSHA256") not in (None, _b64(digest)):
                    raise ChecksumMismatch(f"{key}: part {number} stored with sha256 {answer['ChecksumSHA256']}, "
                                           f"sent {_b64(digest)}")
                parts.append({"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": _b64(digest)})
                digests.append(digest)
            await client.complete_multipart_upload(Bucket=self.location.bucket, Key=name, UploadId=upload_id,
                                                   MultipartUpload={"Parts": parts})
        except BaseException as exc:
            # Abort so that the parts do not linger as billed storage; best effort (the store may be gone).
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.abort_multipart_upload(
                    Bucket=self.location.bucket, Key=name, UploadId=upload_id), timeout=10)
            if isinstance(exc, (ChecksumMismatch, asyncio.CancelledError)) or not isinstance(exc, Exception):
                raise
            raise _unavailable(exc) from exc
        return f"{_b64(hashlib.sha256(b''.join(digests)).digest())}-{len(digests)}"

    async def _confirm(self, key: str, checksum: str, size: int) -> None:
        head = await self._head(key, checksum=True)
        if head is None:
            raise StoreUnavailable(f"{key}: the object is not there after its upload")
        stored = head.get("ChecksumSHA256")
        if int(head["ContentLength"]) != size or (stored is not None and stored != checksum):
            raise ChecksumMismatch(f"{key}: stored {head['ContentLength']} bytes sha256 {stored}, "
                                   f"sent {size} bytes sha256 {checksum}")
        if stored is None:
            # A store that keeps no checksums (older MinIO, some gateways): the size is all it confirms.
            log.warning("media store: %s returned no sha256 for %s; only its size was checked", self, key)

    async def _download(self, key: str, target: Path) -> None:
        client = await self.client()
        try:
            response = await client.get_object(Bucket=self.location.bucket, Key=self.object_name(key))
        except Exception as exc:  # noqa: BLE001
            if _code(exc) in ("NoSuchKey", "404"):
                raise FileNotFoundError(key) from None
            raise _unavailable(exc) from exc
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
        fh = await asyncio.to_thread(open, tmp, "wb")
        try:
            async with response["Body"] as body:
                while chunk := await body.read(1 << 20):
                    await asyncio.to_thread(fh.write, chunk)
            await asyncio.to_thread(fh.close)
            await asyncio.to_thread(os.replace, tmp, target)
        except BaseException:
            await asyncio.to_thread(fh.close)
            await asyncio.to_thread(tmp.unlink, missing_ok=True)
            raise


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _unavailable(exc: BaseException) -> StoreUnavailable:
    return StoreUnavailable(f"object store: {type(exc).__name__}: {exc}")


def _content_type(key: str) -> str:
    if key.endswith(".mp4"):
        return "video/mp4"
    if key.endswith((".jpg", ".jpeg")):
        return "image/jpeg"
    if key.endswith(".pdf"):
        return "application/pdf"
    return "application/octet-stream"


def _cached(target: Path, size: int) -> bool:
    try:
        if target.stat().st_size != size:
            return False
    except FileNotFoundError:
        return False
    os.utime(target)  # recently used: trimmed last
    return True


def _trim_cache(root: Path, limit: int, keep: Path) -> None:
    files = [(p.stat().st_mtime, p.stat().st_size, p) for p in root.rglob("*") if p.is_file()]
    total = sum(size for _, size, _ in files)
    for _, size, path in sorted(files):
        if total <= limit:
            break
        if path != keep:
            path.unlink(missing_ok=True)
            total -= size


def _unlink_cached(root: Path, key: str) -> None:
    (root / check_key(key)).unlink(missing_ok=True)

