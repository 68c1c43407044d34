"""Object storage: the local-folder backend and the S3 backend (against moto's S3 server)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from core.config import Settings
from tools.storage import (
    LocalStorage,
    ObjectNotFound,
    ObjectStorage,
    S3Storage,
    evidence_key,
    key_part,
    media_key,
    validate_key,
)


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStorage:
    if request.param == "local":
        return LocalStorage(tmp_path / "objects")
    return request.getfixturevalue("s3_storage")  # type: ignore[no-any-return]


# -- key layout ---------------------------------------------------------------------------------------------


def test_key_helpers() -> None:
    assert evidence_key("PR-12", 2, "trace.zip") == "evidence/PR-12/2/trace.zip"
    assert media_key("meta", "wamid.HBgM=") == "media/meta/wamid.HBgM="
    # A slash in an id stays inside its segment; different ids never collide.
    assert media_key("twilio", "a/b") == "media/twilio/a%2Fb"
    assert key_part("a/b") != key_part("a_b")
    with pytest.raises(ValueError):
        key_part("..")


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "./a", "a\\b", "a/"])
def test_invalid_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError):
        validate_key(key)


# -- both backends ------------------------------------------------------------------------------------------


async def test_put_get_head_exists_delete(storage: ObjectStorage) -> None:
    key = media_key("meta", "wamid.ABC123")
    assert not storage.exists(key)
    assert storage.put(key, b"\xff\xd8jpeg", "image/jpeg") == key
    assert storage.exists(key)
    assert storage.get(key) == b"\xff\xd8jpeg"
    info = storage.head(key)
    assert (info.size, info.content_type) == (6, "image/jpeg")
    storage.put(key, b"new", "image/jpeg")  # overwrite
    assert storage.get(key) == b"new"
    storage.delete(key)
    assert not storage.exists(key)
    storage.delete(key)  # absent: no error


async def test_missing_object(storage: ObjectStorage) -> None:
    with pytest.raises(ObjectNotFound):
        storage.get("evidence/none/1/x.png")
    with pytest.raises(ObjectNotFound):
        await storage.ahead("evidence/none/1/x.png")
    assert not await storage.aexists("evidence/none/1/x.png")


async def test_async_methods(storage: ObjectStorage) -> None:
    key = evidence_key("PO 7/2025", 1, "screenshot.png")
    await storage.aput(key, b"\x89PNG...", "image/png")
    assert await storage.aget(key) == b"\x89PNG..."
    assert await storage.aexists(key)
    await storage.adelete(key)
    assert not await storage.aexists(key)


async def test_refuses_invalid_key(storage: ObjectStorage) -> None:
    with pytest.raises(ValueError):
        storage.put("../escape", b"x")


# -- local --------------------------------------------------------------------------------------------------


def test_local_urls_and_layout(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    key = evidence_key("PR-1", 1, "trace.zip")
    store.put(key, b"PK")
    assert (tmp_path / "evidence" / "PR-1" / "1" / "trace.zip").read_bytes() == b"PK"
    assert store.url(key) == (tmp_path / key).as_uri()
    assert LocalStorage(tmp_path, url_prefix="/media/").url(key) == f"/media/{key}"
    with pytest.raises(ValueError):
        store.put(".meta/x", b"")  # the sidecar tree is not addressable


def test_from_settings(tmp_path: Path, moto_s3: str) -> None:
    local = ObjectStorage.from_settings(Settings(DATA_DIR=tmp_path, S3_ENDPOINT_URL=None, S3_BUCKET=None))
    assert isinstance(local, LocalStorage) and local.root == (tmp_path / "objects").resolve()
    s3 = ObjectStorage.from_settings(
        Settings(
            DATA_DIR=tmp_path,
            S3_ENDPOINT_URL=moto_s3,
            S3_BUCKET="from-settings",
            S3_ACCESS_KEY_ID="testing",  # type: ignore[arg-type]
            S3_SECRET_ACCESS_KEY="testing",  # type: ignore[arg-type]
        )
    )
    assert isinstance(s3, S3Storage) and s3.bucket == "from-settings"
    s3.put("k", b"v")  # creates the bucket on first write
    assert s3.get("k") == b"v"
    with pytest.raises(ValueError):
        ObjectStorage.from_settings(Settings(DATA_DIR=tmp_path, S3_ENDPOINT_URL=moto_s3, S3_BUCKET=None))


# -- S3 -----------------------------------------------------------------------------------------------------


def test_s3_presigned_url_is_v4_path_style_and_works(s3_storage: S3Storage, moto_s3: str) -> None:
    key = media_key("meta", "wamid.XYZ")
    s3_storage.put(key, b"voice note", "audio/ogg")
    url = s3_storage.url(key, expires_seconds=600)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == moto_s3
    assert parts.path == f"/{s3_storage.bucket}/{key}"  # path-style addressing
    assert "X-Amz-Signature=" in parts.query and "X-Amz-Expires=600" in parts.query  # SigV4
    response = httpx.get(url)
    assert response.status_code == 200 and response.content == b"voice note"
    assert response.headers["content-type"] == "audio/ogg"


def test_s3_creates_missing_bucket_once(s3_storage: S3Storage) -> None:
    client = s3_storage._client
    names = {b["Name"] for b in client.list_buckets()["Buckets"]}
    assert s3_storage.bucket not in names
    s3_storage.put("a", b"1")
    s3_storage.put("b", b"2")
    assert s3_storage.bucket in {b["Name"] for b in client.list_buckets()["Buckets"]}
    # Another instance on the existing bucket works without creating it again.
    other = S3Storage(s3_storage.bucket, client=client)
    assert other.get("a") == b"1"


def test_s3_refuses_to_create_when_told_not_to(s3_storage: S3Storage) -> None:
    strict = S3Storage(s3_storage.bucket, client=s3_storage._client, create_bucket=False)
    with pytest.raises(Exception, match="404|NoSuchBucket|Not Found"):
        strict.put("a", b"1")
