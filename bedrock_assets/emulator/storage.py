"""The emulator's own S3 access: straight into moto's in-process backend, not HTTP to itself.

The lifecycle worker reads inputs and writes outputs here; clients see the same objects through
the S3 endpoint because moto's server serves that same backend.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from moto.s3.models import FakeKey, s3_backends

S3_URI = re.compile(r"^s3://([^/]+)/?(.*)$")


class StorageError(Exception):
    """The object or bucket cannot be read/written (a job-level failure, like an IAM/S3 error)."""


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str
    size: int


def split_uri(uri: str) -> tuple[str, str]:
    match = S3_URI.match(uri)
    if not match:
        raise StorageError(f"not an s3:// URI: {uri}")
    return match.group(1), match.group(2)


def _backend(bucket: str):
    located = s3_backends.bucket_accounts.get(bucket)
    if located is None:
        raise StorageError(f"The specified bucket does not exist: {bucket}")
    partition, account = located
    return s3_backends[account][partition]


def _live_keys(bucket: str) -> dict[str, FakeKey]:
    store = _backend(bucket).get_bucket(bucket).keys
    # Versioned buckets keep history; the latest version (or delete marker) is what S3 shows.
    return {name: key for name, key in list(store.items()) if isinstance(key, FakeKey)}


def list_objects(uri: str) -> list[S3Object]:
    """Objects at `uri`: the object itself if it exists, else every object under it as a prefix."""
    bucket, key = split_uri(uri)
    keys = _live_keys(bucket)
    if key and key in keys and not key.endswith("/"):
        return [S3Object(bucket, key, keys[key].size)]
    prefix = key if not key or key.endswith("/") else key + "/"
    return sorted(
        (S3Object(bucket, name, found.size) for name, found in keys.items()
         if name.startswith(prefix) and not name.endswith("/")),
        key=lambda item: item.key,
    )


def read_object(bucket: str, key: str) -> bytes:
    found = _live_keys(bucket).get(key)
    if found is None:
        raise StorageError(f"The specified key does not exist: s3://{bucket}/{key}")
    return found.value


def write_object(uri: str, data: bytes) -> None:
    bucket, key = split_uri(uri)
    _backend(bucket).put_object(bucket, key, data)


def bucket_exists(bucket: str) -> bool:
    return bucket in s3_backends.bucket_accounts

