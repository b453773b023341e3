"""The object store port and its two adapters: local files and S3.

Raw batches, labels and our outputs are addressed by URL (``file:///...``,
``s3a://bucket/prefix``, ``s3://bucket/prefix``) so one config runs on a laptop
and in production. Spark reads these URLs itself; this port is for the Python
side: the simulator writes through it, discovery lists through it, validation
reads single files through it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import urlparse

from etl.config import S3Config


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object: its key below the store's root and its size."""

    key: str
    size: int


@runtime_checkable
class ObjectStore(Protocol):
    """Keys below one root URL; ``/`` separates key parts on every back end."""

    url: str

    def put(self, key: str, data: bytes) -> None:
        """Write ``data`` under ``key`` atomically (readers never see half a file)."""
        ...

    def get(self, key: str) -> bytes:
        """Read the object; FileNotFoundError when it does not exist."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, in key order."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object if it exists."""
        ...


class LocalObjectStore:
    """Objects as files below a directory (the embedded adapter)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.root = Path(urlparse(self.url).path)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in (path, *path.parents):
            raise ValueError(f"key escapes the store: {key!r}")
        return path

    def put(self, key: str, data: bytes) -> None:
        """Write to a temporary file in the same folder, then rename over the key."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        """Read the file."""
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        """Whether the file exists."""
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Walk below the root; temporary files of unfinished writes are not objects."""
        if not self.root.is_dir():
            return iter(())
        found = []
        for dirpath, _, files in os.walk(self.root):
            for name in files:
                if name.startswith(".tmp-"):
                    continue
                path = Path(dirpath) / name
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    found.append(ObjectInfo(key=key, size=path.stat().st_size))
        return iter(sorted(found, key=lambda info: info.key))

    def delete(self, key: str) -> None:
        """Remove the file."""
        self._path(key).unlink(missing_ok=True)


class S3ObjectStore:
    """Objects in an S3 bucket below an optional prefix (the production adapter).

    Credentials come from the environment (AWS_* variables, or the instance's
    role), through boto3's default chain.
    """

    def __init__(self, url: str, s3: S3Config) -> None:
        import boto3
        from botocore.config import Config as BotoConfig

        self.url = url.rstrip("/")
        parsed = urlparse(self.url)
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self._client = boto3.client(
            "s3",
            endpoint_url=s3.endpoint_url,
            region_name=s3.region,
            config=BotoConfig(
                s3={"addressing_style": "path" if s3.path_style_access else "auto"},
                retries={"max_attempts": 5, "mode": "standard"},
                max_pool_connections=32,
            ),
        )

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes) -> None:
        """PutObject is atomic: the object appears whole or not at all."""
        self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def get(self, key: str) -> bytes:
        """GetObject; a missing key is FileNotFoundError like on disk."""
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self._key(key))
        except self._client.exceptions.NoSuchKey:
            raise FileNotFoundError(f"{self.url}/{key}") from None
        return response["Body"].read()

    def exists(self, key: str) -> bool:
        """HeadObject."""
        from botocore.exceptions import ClientError

        try:
            self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """ListObjectsV2, page by page (S3 returns keys in order)."""
        paginator = self._client.get_paginator("list_objects_v2")
        strip = len(self.prefix) + 1 if self.prefix else 0
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            for obj in page.get("Contents", []):
                yield ObjectInfo(key=obj["Key"][strip:], size=int(obj["Size"]))

    def delete(self, key: str) -> None:
        """DeleteObject (no error when absent)."""
        self._client.delete_object(Bucket=self.bucket, Key=self._key(key))


def open_store(url: str, s3: S3Config | None = None) -> ObjectStore:
    """The adapter for a URL's scheme."""
    scheme = urlparse(url).scheme
    if scheme == "file":
        return LocalObjectStore(url)
    if scheme in ("s3", "s3a"):
        return S3ObjectStore(url, s3 or S3Config())
    raise ValueError(f"no object store for {url!r} (file://, s3://, s3a://)")
