"""On-disk compile cache (TESSERA_CACHE_DIR). Entries are directories published atomically by
rename; each file's sha256 is recorded in `meta.json` and checked on load, so a corrupt entry is
rebuilt rather than trusted."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

from .. import knobs

LAYOUT = "v1"


def root() -> Path:
    return knobs.cache_dir() / LAYOUT


def key_of(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(repr(p).encode())
        h.update(b"\0")
    return h.hexdigest()


def _entry_dir(key: str) -> Path:
    return root() / "kernels" / key[:2] / key


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def store(key: str, files: dict[str, bytes], meta: dict) -> None:
    if not knobs.cache_enabled():
        return
    final = _entry_dir(key)
    if final.exists():
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{key[:16]}-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        sums = {}
        for name, data in files.items():
            (tmp / name).write_bytes(data)
            sums[name] = _sha(data)
        (tmp / "meta.json").write_text(json.dumps({"meta": meta, "files": sums}, sort_keys=True))
        try:
            os.rename(tmp, final)  # atomic; fails if another process published first
        except OSError:
            pass
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def load(key: str):
    """(files, meta) or None; a corrupt or partial entry is removed and reported as a miss."""
    if not knobs.cache_enabled():
        return None
    d = _entry_dir(key)
    if not d.is_dir():
        return None
    try:
        info = json.loads((d / "meta.json").read_text())
        files = {}
        for name, digest in info["files"].items():
            data = (d / name).read_bytes()
            if _sha(data) != digest:
                raise ValueError(f"checksum mismatch in {name}")
            files[name] = data
        return files, info["meta"]
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        evict(key)
        return None


def evict(key: str) -> None:
    d = _entry_dir(key)
    trash = d.parent / f".trash-{uuid.uuid4().hex}"
    try:
        os.rename(d, trash)
    except OSError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def read_index(name: str):
    p = root() / "index" / f"{name}.json"
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def write_index(name: str, value) -> None:
    if not knobs.cache_enabled():
        return
    p = root() / "index" / f"{name}.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{uuid.uuid4().hex}")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, p)


def entries():
    base = root() / "kernels"
    if not base.is_dir():
        return []
    out = []
    for sub in sorted(base.iterdir()):
        for e in sorted(sub.iterdir()) if sub.is_dir() else []:
            if e.name.startswith("."):
                continue
            try:
                meta = json.loads((e / "meta.json").read_text())["meta"]
            except (OSError, ValueError, KeyError):
                meta = {"corrupt": True}
            try:
                size = sum(f.stat().st_size for f in e.iterdir())
                mtime = e.stat().st_mtime
            except OSError:  # removed by another process meanwhile
                continue
            out.append({"key": e.name, "size": size, "mtime": mtime, **meta})
    return out


def clear() -> int:
    n = len(entries())
    shutil.rmtree(root(), ignore_errors=True)
    return n
