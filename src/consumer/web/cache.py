"""Per-session cache directories for fetched images and documents.

Each portal instance keeps its sessions' files under ``<cache_dir>/<pid>-<random>/<cache id>``
(several workers may share ``cache_dir``; each sweeps only its own tree, and the trees of
instances whose process is gone). A session's directory is deleted at sign-out and when the
session expires (:meth:`CacheRoot.sweep`); a restart signs everybody out and removes the old tree.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Final

__all__ = ["CacheRoot"]

_ID: Final = re.compile(r"^[0-9a-f]{32}$")
_INSTANCE: Final = re.compile(r"^(\d+)-[0-9a-f]{8}$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class CacheRoot:
    """The cache tree of one portal instance, and a lock per (session, key) for fetches."""

    def __init__(self, base: Path) -> None:
        base.mkdir(parents=True, exist_ok=True)
        for old in base.iterdir():
            match = _INSTANCE.match(old.name)
            if match and old.is_dir() and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
                shutil.rmtree(old, ignore_errors=True)
        self.root = base / f"{os.getpid()}-{secrets.token_hex(4)}"
        self.root.mkdir(mode=0o700)
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def create(self) -> str:
        """A new, empty session directory; its id (not the session id, which is a secret)."""
        cache_id = secrets.token_hex(16)
        (self.root / cache_id).mkdir(mode=0o700)
        return cache_id

    def path(self, cache_id: str) -> Path:
        if not _ID.match(cache_id):
            raise ValueError("not a cache id")
        return self.root / cache_id

    def lock(self, cache_id: str, key: str) -> threading.Lock:
        """The lock serialising work on ``key`` (e.g. fetching one study) within a session."""
        with self._guard:
            return self._locks.setdefault((cache_id, key), threading.Lock())

    def remove(self, cache_id: str) -> None:
        with self._guard:
            for key in [k for k in self._locks if k[0] == cache_id]:
                del self._locks[key]
        shutil.rmtree(self.path(cache_id), ignore_errors=True)

    def sweep(self, live: Iterable[str]) -> int:
        """Delete every session directory not in ``live``; how many went."""
        keep = set(live)
        removed = 0
        for entry in self.root.iterdir() if self.root.is_dir() else ():
            if _ID.match(entry.name) and entry.name not in keep:
                self.remove(entry.name)
                removed += 1
        return removed

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
