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


def _meta_sha(meta) -> str:
    return _sha(json.dumps(meta, sort_keys=True).encode())


def store(key: str, files: dict[str, bytes], meta: dict) -> None:
    """Publish an entry; any failure to write (a full disk, a read-only or concurrently cleared
    cache) only means the entry is not cached."""
    if not knobs.cache_enabled():
        return
    final = _entry_dir(key)
    if final.exists():
        return
    tmp = final.parent / f".tmp-{key[:16]}-{uuid.uuid4().hex}"
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        sums = {}
        for name, data in files.items():
            (tmp / name).write_bytes(data)
            sums[name] = _sha(data)
        meta = json.loads(json.dumps(meta, sort_keys=True))  # what load() will read back
        (tmp / "meta.json").write_text(json.dumps({"meta": meta, "meta_sha": _meta_sha(meta), "files": sums},
                                                  sort_keys=True))
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
        if info.get("meta_sha") != _meta_sha(info["meta"]):  # the launch ABI lives there: check it too
            raise ValueError("checksum mismatch in meta.json")
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
    tmp = p.with_name(f".{p.name}.{uuid.uuid4().hex}")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(value))
        os.replace(tmp, p)
    except OSError:  # not remembered: the next process finds the specialisation again
        tmp.unlink(missing_ok=True)


def _listdir(d: Path):
    try:
        return list(d.iterdir()) if d.is_dir() else []
    except OSError:  # removed by another process meanwhile
        return []


def entries():
    base = root() / "kernels"
    if not base.is_dir():
        return []
    out = []
    for sub in sorted(_listdir(base)):
        for e in sorted(_listdir(sub)):
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
