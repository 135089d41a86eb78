"""Optional on-disk state (`EmulatorConfig.data_dir`): S3 objects and Bedrock jobs survive a restart.

Layout of the data directory:

    index.json            every bucket, object (minus its bytes) and job record; one JSON document
    objects/<sha256>      one file per object: its bytes, nothing else

A snapshot writes the bytes of objects it has not written before, then the new index (temp file,
fsync, rename), then deletes object files the index no longer names. A crash at any point leaves
the previous or the new index, each naming only files that exist. Object files are named by a
hash of (bucket, key, ETag, LastModified, size), so an unchanged object is never written twice.

Nothing of moto's is pickled: buckets and objects are read from and restored through moto's S3
backend API (create_bucket, put_object), so a moto upgrade cannot make a data directory unreadable.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from moto.s3.models import FakeKey, s3_backends

from .control_plane import ControlPlane
from .jobs import Job

log = logging.getLogger("bedrock_assets.emulator")

FORMAT = "bedrock-assets-emulator-data"
VERSION = 1
INDEX = "index.json"
OBJECTS = "objects"
# S3 writes are saved at most this often; a job status change is saved at once (see mark_dirty).
SNAPSHOT_SECONDS = 2.0
# Job fields not saved: the parsed input (re-read on resume) and the worker's ownership flag.
TRANSIENT_JOB_FIELDS = frozenset({"records", "input_files", "busy"})
# Statuses whose work is redone after a restart (the worker that ran them died with the process).
RESUMED_STATUSES = frozenset({"Validating", "Scheduled", "InProgress"})


class DataDirError(RuntimeError):
    """The data directory cannot be used (unreadable index, missing object file, not writable)."""


class DataDir:
    """Saves and restores the emulator's state under one directory; thread-safe."""

    def __init__(self, path: str | os.PathLike[str], control: ControlPlane) -> None:
        self.path = Path(path)
        self.control = control
        self._objects = self.path / OBJECTS
        self._save_lock = threading.Lock()  # one snapshot at a time (periodic vs. shutdown)
        self._dirty = False
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ restore
    def load(self) -> list[Job]:
        """Restore buckets, objects and jobs; returns the jobs whose work must be redone."""
        try:
            self._objects.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataDirError(f"data directory {self.path} is not usable: {exc.strerror}") from None
        for folder in (self.path, self._objects):
            for leftover in folder.glob(".tmp-*"):  # a write cut short by a crash
                leftover.unlink(missing_ok=True)
        index_path = self.path / INDEX
        if not index_path.exists():
            log.info("data directory %s: no saved state, starting empty", self.path)
            return []
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
            if not isinstance(index, dict) or index.get("format") != FORMAT:
                raise ValueError("not an emulator data index")
            if index.get("version") != VERSION:
                raise ValueError(f"format version {index.get('version')!r}, this emulator reads {VERSION}")
            for bucket in index["buckets"]:
                self._restore_bucket(bucket)
            for entry in index["objects"]:
                self._restore_object(entry)
            resumed = [self._restore_job(entry) for entry in index["jobs"]]
        except DataDirError:
            raise
        except Exception as exc:  # noqa: BLE001 - JSON, schema, file and moto errors alike
            # One line, not a traceback: whatever broke, the user's fix is to move the directory away.
            detail = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(exc)
            raise DataDirError(
                f"cannot restore emulator state from {index_path} ({detail}); "
                "move or delete the data directory to start empty"
            ) from None
        jobs = [job for job in resumed if job is not None]
        log.info("data directory %s: restored %d buckets, %d objects, %d jobs (%d resumed)", self.path,
                 len(index["buckets"]), len(index["objects"]), len(index["jobs"]), len(jobs))
        return jobs

    @staticmethod
    def _restore_bucket(entry: dict[str, Any]) -> None:
        name = entry["name"]
        backend = s3_backends[entry["account"]][entry["partition"]]
        if name not in s3_backends.bucket_accounts:  # present already only when a test reuses the process
            backend.create_bucket(name, entry["region"])
        backend.get_bucket(name).creation_date = dt.datetime.fromisoformat(entry["created"])

    def _restore_object(self, entry: dict[str, Any]) -> None:
        data = (self._objects / entry["blob"]).read_bytes()
        if len(data) != entry["size"]:
            raise ValueError(f"object file {entry['blob']} holds {len(data)} bytes, the index says {entry['size']}")
        located = s3_backends.bucket_accounts[entry["bucket"]]
        backend = s3_backends[located[1]][located[0]]
        # The saved ETag is passed through: a multipart object's "<md5>-<parts>" cannot be recomputed.
        key = backend.put_object(entry["bucket"], entry["key"], data, storage=entry.get("storage_class"),
                                 etag=entry["etag"], disable_notification=True)
        # Not replace=True: that swaps moto's case-insensitive dict for a plain one. The saved
        # metadata always holds Content-Type, so it overwrites put_object's default.
        key.set_metadata(dict(entry["metadata"]))
        key.last_modified = dt.datetime.fromisoformat(entry["last_modified"])

    def _restore_job(self, entry: dict[str, Any]) -> Job | None:
        known = {f.name for f in dataclasses.fields(Job)} - TRANSIENT_JOB_FIELDS
        job = Job(**{name: value for name, value in entry.items() if name in known})
        resume = job.status in RESUMED_STATUSES
        if resume or job.status == "Submitted":
            # The parsed input and the counts of a half-done job died with the process: the job
            # starts its work again from the first record (docs/emulator.md, "Data directory").
            job.validated = False
            job.total_records = job.processed_records = job.success_records = job.error_records = 0
            job.input_tokens = job.output_tokens = 0
        self.control.restore(job)
        return job if resume else None

    # ------------------------------------------------------------------ save
    def mark_dirty(self, urgent: bool = False) -> None:
        """Something changed; `urgent` (a job status) saves now, else within SNAPSHOT_SECONDS."""
        self._dirty = True
        if urgent:
            self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="emulator-data-dir", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        """Stop the saver and write a last snapshot (call after the lifecycle has stopped)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._dirty = True
        try:
            # A worker abandoned by the lifecycle may still be writing an output: try a few times.
            for _ in range(5):
                self.snapshot()
                if not self._dirty:
                    return
                time.sleep(0.1)
            log.error("data directory %s: the last snapshot kept meeting changing objects", self.path)
        except OSError as exc:  # e.g. disk full: say so, and still stop cleanly
            log.error("data directory %s: the last snapshot failed: %s", self.path, exc)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(SNAPSHOT_SECONDS)
            self._wake.clear()
            if self._dirty and not self._stopping.is_set():
                try:
                    self.snapshot()
                except Exception:  # keep serving; the next change retries
                    log.exception("data directory snapshot failed")

    def snapshot(self) -> None:
        with self._save_lock:
            self._dirty = False  # cleared first: a change made while saving triggers the next save
            try:
                self._snapshot()
            except (_Retry, KeyError, RuntimeError) as exc:
                # A bucket or key went away while being read (moto's dicts are read without a
                # lock); the next snapshot sees a settled state.
                self._dirty = True
                log.debug("snapshot postponed: %s", exc)
            except BaseException:
                self._dirty = True  # retried at the next tick
                raise

    def _snapshot(self) -> None:
        buckets, objects, names = [], [], set()
        for name, (partition, account) in sorted(s3_backends.bucket_accounts.items()):
            bucket = s3_backends[account][partition].buckets.get(name)
            if bucket is None:
                continue
            buckets.append({"name": name, "account": account, "partition": partition,
                            "region": bucket.region_name, "created": bucket.creation_date.isoformat()})
            # Only the live version of each key (versioning history is not saved).
            for key_name, key in sorted(bucket.keys.items()):
                if not isinstance(key, FakeKey):
                    continue  # a delete marker
                entry = self._save_object(name, key_name, key)
                names.add(entry["blob"])
                objects.append(entry)
        with self.control.lock:
            jobs = [_job_record(job) for job in self.control.jobs.values()]
        index = {"format": FORMAT, "version": VERSION, "saved_at": time.time(),
                 "buckets": buckets, "objects": objects, "jobs": jobs}
        _atomic_write(self.path / INDEX, json.dumps(index, ensure_ascii=False, indent=1).encode("utf-8"))
        for stale in self._objects.iterdir():
            if stale.name not in names and not stale.name.startswith("."):
                stale.unlink(missing_ok=True)

    def _save_object(self, bucket: str, key_name: str, key: FakeKey) -> dict[str, Any]:
        try:
            etag = key.etag.strip('"')
            last_modified = key.last_modified.isoformat()
            identity = "\0".join((bucket, key_name, etag, last_modified, str(key.size)))
            blob = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()
            path = self._objects / blob
            if not path.exists():
                _atomic_write(path, key.value)
            metadata = dict(key.metadata)
        except ValueError as exc:  # the key was overwritten or deleted meanwhile: its buffer is closed
            raise _Retry(f"{bucket}/{key_name} changed while saving") from exc
        return {"bucket": bucket, "key": key_name, "blob": blob, "size": key.size, "etag": etag,
                "last_modified": last_modified, "metadata": metadata, "storage_class": key.storage_class}


class _Retry(Exception):
    """A snapshot met an object that changed under it; the next one will be consistent."""


def _job_record(job: Job) -> dict[str, Any]:
    return {f.name: getattr(job, f.name) for f in dataclasses.fields(job) if f.name not in TRANSIENT_JOB_FIELDS}


def _atomic_write(path: Path, data: bytes) -> None:
    # The temp file's name starts with "." so the object-file cleanup never deletes a write in flight.
    handle, temp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
