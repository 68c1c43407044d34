"""Object storage for evidence (screenshots, browser traces) and media (WhatsApp images, voice notes).

Two backends behind one interface, :class:`ObjectStorage`:

* :class:`S3Storage`: any S3-compatible service through boto3 (AWS, MinIO, Ceph, moto in tests). Path-style
  addressing and SigV4, so presigned URLs work against custom endpoints.
* :class:`LocalStorage`: a folder (``DATA_DIR/objects`` by default) for the embedded profile, when no S3 is
  configured.

Keys are ``/``-separated relative paths. :func:`evidence_key` and :func:`media_key` build the two layouts used
by the project (``evidence/<reference>/<attempt>/<name>``, ``media/<provider>/<message id>``).

boto3 is synchronous: async callers use :meth:`ObjectStorage.aput` / :meth:`ObjectStorage.aget` (and friends),
which run the call in a worker thread (boto3 clients are thread-safe).

About 470 lines, on purpose: the interface and its two backends are one contract read together (every backend
method answers to the interface's documented behaviour), and :meth:`ObjectStorage.from_settings` chooses between
them, so splitting the backends into modules of their own would make the interface import back from them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import mimetypes
import os
import tempfile
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from typing_extensions import override

if TYPE_CHECKING:
    from core.config import Settings

logger = logging.getLogger(__name__)

DEFAULT_CONTENT_TYPE = "application/octet-stream"
#: Characters kept as they are in a key part; everything else is percent-encoded (so ``/`` cannot sneak in).
_KEY_PART_SAFE = "-_.=~+@"


class ObjectNotFound(KeyError):
    """No object under this key."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """Metadata of a stored object.

    Attributes:
        key: the object's key.
        size: length in bytes.
        content_type: MIME type given at upload (or guessed from the key for local files written elsewhere).
    """

    key: str
    size: int
    content_type: str


def validate_key(key: str) -> str:
    """Check that ``key`` is a relative ``/``-separated path without empty, ``.`` or ``..`` parts.

    Returns:
        The key, unchanged.

    Raises:
        ValueError: the key is empty, absolute, has a backslash or a NUL, or an empty / ``.`` / ``..`` part
            (which could escape the local folder or alias another key).
    """
    if not key or key.startswith("/") or "\\" in key or "\0" in key:
        raise ValueError(f"invalid object key {key!r}")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError(f"invalid object key {key!r}")
    return key


def key_part(value: str | int) -> str:
    """Make one path segment of a key from arbitrary text (ids, references), reversibly.

    Characters outside ``A-Z a-z 0-9 - _ . = ~ + @`` are percent-encoded, so a value containing ``/`` stays
    one segment and two different values never map to the same segment.

    Raises:
        ValueError: the value is empty, ``.`` or ``..``.
    """
    text = str(value)
    if text in ("", ".", ".."):
        raise ValueError(f"invalid key part {text!r}")
    return quote(text, safe=_KEY_PART_SAFE)


def evidence_key(reference: str, attempt: int | str, name: str) -> str:
    """Key of one evidence file: ``evidence/<reference>/<attempt>/<name>``.

    Args:
        reference: what the evidence is about (our PO reference, a job id).
        attempt: the attempt number (1-based) or another attempt label.
        name: file name, e.g. ``screenshot.png``, ``trace.zip``.
    """
    return f"evidence/{key_part(reference)}/{key_part(attempt)}/{key_part(name)}"


def media_key(provider: str, message_id: str) -> str:
    """Key of a message's media: ``media/<provider>/<message id>`` (e.g. ``media/meta/wamid.HBgM...``)."""
    return f"media/{key_part(provider)}/{key_part(message_id)}"


class ObjectStorage(ABC):
    """Put and get immutable blobs by key; S3 or a local folder behind the same methods.

    Sync methods block (network or disk I/O); from async code use the ``a``-prefixed ones.
    """

    @abstractmethod
    def put(self, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE) -> str:
        """Store ``data`` under ``key``, replacing any previous object.

        Returns:
            The key.

        Raises:
            ValueError: invalid key (see :func:`validate_key`).
            OSError / botocore.exceptions.BotoCoreError / ClientError: the backend failed.
        """

    @abstractmethod
    def get(self, key: str) -> bytes:
        """Read a whole object.

        Raises:
            ObjectNotFound: nothing under ``key``.
        """

    @abstractmethod
    def head(self, key: str) -> ObjectInfo:
        """Size and content type of an object.

        Raises:
            ObjectNotFound: nothing under ``key``.
        """

    @abstractmethod
    def exists(self, key: str) -> bool:
        """True if an object is stored under ``key``."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove an object; no error if it is absent."""

    @abstractmethod
    def url(self, key: str, expires_seconds: int = 3600) -> str:
        """A URL a client can fetch the object from.

        Args:
            key: the object's key (it need not exist yet for S3).
            expires_seconds: lifetime of a presigned URL, in seconds (S3 only; local URLs do not expire).

        Returns:
            A presigned HTTP(S) URL (S3), a route path under the configured ``url_prefix`` or a ``file://``
            URI (local).
        """

    async def aput(self, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE) -> str:
        """:meth:`put` in a worker thread."""
        return await asyncio.to_thread(self.put, key, data, content_type)

    async def aget(self, key: str) -> bytes:
        """:meth:`get` in a worker thread."""
        return await asyncio.to_thread(self.get, key)

    async def ahead(self, key: str) -> ObjectInfo:
        """:meth:`head` in a worker thread."""
        return await asyncio.to_thread(self.head, key)

    async def aexists(self, key: str) -> bool:
        """:meth:`exists` in a worker thread."""
        return await asyncio.to_thread(self.exists, key)

    async def adelete(self, key: str) -> None:
        """:meth:`delete` in a worker thread."""
        await asyncio.to_thread(self.delete, key)

    async def aurl(self, key: str, expires_seconds: int = 3600) -> str:
        """:meth:`url` in a worker thread (boto3 may load its metadata lazily)."""
        return await asyncio.to_thread(self.url, key, expires_seconds)

    @staticmethod
    def from_settings(settings: Settings) -> ObjectStorage:
        """The storage the settings describe.

        S3 is used when ``S3_BUCKET`` is set (``S3_ENDPOINT_URL`` optional: unset means AWS); otherwise a
        local folder ``DATA_DIR/objects``.

        Raises:
            ValueError: ``S3_ENDPOINT_URL`` is set without ``S3_BUCKET``.
        """
        if settings.S3_BUCKET:
            return S3Storage(
                bucket=settings.S3_BUCKET,
                endpoint_url=settings.S3_ENDPOINT_URL,
                access_key_id=_secret(settings.S3_ACCESS_KEY_ID),
                secret_access_key=_secret(settings.S3_SECRET_ACCESS_KEY),
                region=settings.S3_REGION,
            )
        if settings.S3_ENDPOINT_URL:
            raise ValueError("S3_ENDPOINT_URL is set but S3_BUCKET is not; set both or neither")
        return LocalStorage(Path(settings.DATA_DIR) / "objects")


def _secret(value: Any) -> str | None:
    return None if value is None else str(value.get_secret_value())


class S3Storage(ObjectStorage):
    """Objects in one S3 bucket.

    The bucket is created on first write if it does not exist (``create_bucket=False`` to forbid that, e.g.
    when the credentials may only read and write objects).

    Args:
        bucket: bucket name.
        endpoint_url: S3-compatible endpoint (``http://127.0.0.1:9000``); ``None`` for AWS.
        access_key_id: credentials; ``None`` lets boto3 find them (environment, instance role).
        secret_access_key: credentials.
        region: region name, also used for signing.
        create_bucket: create the bucket if it is missing.
        client: a ready boto3 S3 client (tests); overrides the connection arguments.
    """

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        region: str = "us-east-1",
        create_bucket: bool = True,
        client: Any | None = None,
    ) -> None:
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region = region
        self._create_bucket = create_bucket
        self._bucket_ready = False
        self._bucket_lock = threading.Lock()
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.session.Session().client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=region,
                aws_access_key_id=access_key_id,
                aws_secret_access_key=secret_access_key,
                # Path-style + SigV4: virtual-host addressing does not resolve on custom endpoints, and
                # without an explicit signature version presigned URLs come out in the old (v2) format.
                config=Config(
                    signature_version="s3v4",
                    s3={"addressing_style": "path"},
                    retries={"max_attempts": 4, "mode": "standard"},
                    connect_timeout=5,
                    read_timeout=60,
                ),
            )
        self._client = client

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, endpoint_url={self.endpoint_url!r})"

    @staticmethod
    def _is_missing(exc: Exception) -> bool:
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        return code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket")

    def ensure_bucket(self) -> None:
        """Create the bucket if it is missing (once per instance).

        Raises:
            botocore.exceptions.ClientError: no access, or creation refused.
        """
        if self._bucket_ready:
            return
        from botocore.exceptions import ClientError

        with self._bucket_lock:
            if self._bucket_ready:
                return
            try:
                self._client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if not self._is_missing(exc) or not self._create_bucket:
                    raise
                kwargs: dict[str, Any] = {"Bucket": self.bucket}
                if self.region != "us-east-1":
                    # us-east-1 is the one region that refuses an explicit LocationConstraint.
                    kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
                try:
                    self._client.create_bucket(**kwargs)
                    logger.info("created bucket %s", self.bucket)
                except ClientError as create_exc:
                    code = create_exc.response.get("Error", {}).get("Code")
                    if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise
            self._bucket_ready = True

    @override
    def put(self, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE) -> str:
        validate_key(key)
        self.ensure_bucket()
        self._client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        return key

    @override
    def get(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        validate_key(key)
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if self._is_missing(exc):
                raise ObjectNotFound(key) from exc
            raise
        body = response["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    @override
    def head(self, key: str) -> ObjectInfo:
        from botocore.exceptions import ClientError

        validate_key(key)
        try:
            response = self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if self._is_missing(exc):
                raise ObjectNotFound(key) from exc
            raise
        return ObjectInfo(key, int(response["ContentLength"]), response.get("ContentType") or DEFAULT_CONTENT_TYPE)

    @override
    def exists(self, key: str) -> bool:
        try:
            self.head(key)
        except ObjectNotFound:
            return False
        return True

    @override
    def delete(self, key: str) -> None:
        validate_key(key)
        self._client.delete_object(Bucket=self.bucket, Key=key)

    @override
    def url(self, key: str, expires_seconds: int = 3600) -> str:
        validate_key(key)
        return str(
            self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=int(expires_seconds)
            )
        )


class LocalStorage(ObjectStorage):
    """Objects as files under a root folder; content types in a sidecar tree ``<root>/.meta/<key>.json``.

    Writes are atomic (temporary file + rename), so a reader never sees half an object.

    Args:
        root: the folder (created if missing).
        url_prefix: if set, :meth:`url` returns ``<url_prefix>/<key>`` (a route of the web app that serves the
            folder, e.g. ``/media``); otherwise a ``file://`` URI.
    """

    _META = ".meta"

    def __init__(self, root: str | Path, *, url_prefix: str | None = None) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.url_prefix = url_prefix.rstrip("/") if url_prefix else None

    def __repr__(self) -> str:
        return f"LocalStorage(root={str(self.root)!r})"

    def _path(self, key: str) -> Path:
        validate_key(key)
        if key.split("/", 1)[0] == self._META:
            raise ValueError(f"invalid object key {key!r} (reserved prefix)")
        return self.root / key

    def _meta_path(self, key: str) -> Path:
        return self.root / self._META / f"{key}.json"

    @staticmethod
    def _atomic_write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @override
    def put(self, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE) -> str:
        path = self._path(key)
        self._atomic_write(self._meta_path(key), json.dumps({"content_type": content_type}).encode())
        self._atomic_write(path, bytes(data))
        return key

    @override
    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFound(key) from exc

    @override
    def head(self, key: str) -> ObjectInfo:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(key)
        content_type = None
        try:
            content_type = json.loads(self._meta_path(key).read_text()).get("content_type")
        except (OSError, ValueError):
            content_type = mimetypes.guess_type(path.name)[0]
        return ObjectInfo(key, path.stat().st_size, content_type or DEFAULT_CONTENT_TYPE)

    @override
    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    @override
    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
        self._meta_path(key).unlink(missing_ok=True)

    @override
    def url(self, key: str, expires_seconds: int = 3600) -> str:
        path = self._path(key)
        if self.url_prefix is not None:
            return f"{self.url_prefix}/{quote(key)}"
        return path.as_uri()


__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "LocalStorage",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStorage",
    "S3Storage",
    "evidence_key",
    "key_part",
    "media_key",
    "validate_key",
]
