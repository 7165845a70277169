"""On-disk compile cache (TESSERA_CACHE_DIR). Entries are directories published atomically by
rename; `meta.json` records the key the entry was published under (the digest of its material:
source, dependencies, specialisation, target, compiler), each file's sha256 and one checksum over
all of that, checked on load.

The cache heals itself: anything found that this module would not have written (corrupt or
truncated files, JSON of the wrong shape, a file where a directory belongs or the reverse, an entry
copied or renamed under another key, a temporary left by a killed writer) is moved into
`<root>/quarantine/` (or removed) and rebuilt, never raised. A cache that cannot be used at all
only means compiling uncached. `cache_verify` walks the whole cache the same way."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import sys
import time
import uuid
from pathlib import Path

from .. import knobs

LAYOUT = "v1"
ORPHAN_AGE_S = 300          # a store takes milliseconds: a temporary this old has lost its writer
QUARANTINE_KEEP_S = 7 * 86400
QUARANTINE_MAX = 64         # a disk that keeps corrupting entries must not fill up the quarantine
KEY_RE = re.compile(r"[0-9a-f]{64}")
_FILE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")  # a recorded name must not reach outside the entry

# problem class -> what it means (the counts `tessera cache verify` reports)
PROBLEMS = {
    "unreadable": "could not be read (permissions, I/O error)",
    "bad-json": "metadata or an index that is not JSON of the expected shape",
    "checksum": "a file or the metadata differs from its recorded checksum",
    "missing-file": "a file the entry records is missing",
    "not-a-directory": "a file or a dangling link where a directory belongs",
    "not-a-file": "a directory where a file belongs",
    "foreign": "an entry recorded for another key (copied or renamed) or another kernel",
    "outdated": "an entry of an older tessera that does not record its key (removed, not kept)",
    "unloadable": "sound checksums but the compiler cannot load it",
    "corrupt-db": "an autotune database that SQLite finds damaged or not a database",
    "bad-schema": "an autotune database whose table tessera did not make",
    "stray": "a name the cache never writes, where it would never be looked up",
    "orphan-temp": "a temporary left by a killed writer",
}

_swept: set[str] = set()
_warned: set[str] = set()


def root() -> Path:
    return knobs.cache_dir() / LAYOUT


def quarantine_dir() -> Path:
    return root() / "quarantine"


def key_of(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(repr(p).encode())
        h.update(b"\0")
    return h.hexdigest()


def _entry_dir(key: str) -> Path:
    return root() / "kernels" / key[:2] / key


def _index_path(name: str) -> Path:
    return root() / "index" / f"{name}.json"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _record_sha(key, meta, sums) -> str:
    return _sha(json.dumps({"key": key, "meta": meta, "files": sums}, sort_keys=True).encode())


def note(msg: str) -> None:
    if "cache" in knobs.log():
        print(f"[tessera] cache: {msg}", file=sys.stderr)


# -- moving bad state aside ---------------------------------------------------------------------

def lexists(p: Path) -> bool:
    return os.path.lexists(p)


def remove(path: Path) -> bool:
    """Remove a file, link or tree (one whose directories were made unreadable too)."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            if lexists(path):
                _make_writable(path)
                shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()
    except OSError:
        pass
    return not lexists(path)


def _make_writable(d: Path) -> None:
    try:
        os.chmod(d, stat.S_IRWXU)
    except OSError:
        return
    for c in listdir(d):
        if c.is_dir() and not c.is_symlink():
            _make_writable(c)


def quarantine(path: Path, problem: str) -> bool:
    """Move `path` into the quarantine (kept a while for inspection), else remove it. True when it
    is gone from where it was, also when another process moved it first."""
    if not lexists(path):
        return True
    note(f"{problem}: {path}")
    if problem == "outdated" or not under(path, knobs.cache_dir()):
        return remove(path)
    qdir = quarantine_dir()
    tag, name = uuid.uuid4().hex[:8], path.name.lstrip(".")
    if path == root() or under(qdir, path):  # the quarantine lives inside it: step it aside first
        aside = path.with_name(f".tmp-{path.name}-{tag}")
        try:
            os.rename(path, aside)
        except OSError:
            return remove(path)
        path = aside
    dest = qdir / f"{problem}-{name}-{tag}"
    try:
        qdir.mkdir(parents=True, exist_ok=True)
        os.rename(path, dest)
    except OSError:
        if not lexists(path):  # another process moved it first
            return True
        return remove(path)
    try:
        os.utime(dest, follow_symlinks=False)  # kept for QUARANTINE_KEEP_S from now, not from when it was written
    except OSError:
        pass
    return True


def under(p: Path, base: Path) -> bool:
    try:
        p.relative_to(base)
        return True
    except ValueError:
        return False


def ensure_dir(d: Path) -> bool:
    """Make `d` (inside the cache directory) a directory, quarantining anything else found in the
    way. False when the cache directory itself cannot hold it: it may be the user's own file,
    so it is never moved, and tessera runs without the disk cache."""
    base = knobs.cache_dir()
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass
    if not base.is_dir():
        if str(base) not in _warned:
            _warned.add(str(base))
            print(f"[tessera] cache: {base} is not a usable directory (set TESSERA_CACHE_DIR); "
                  "compiling without the disk cache", file=sys.stderr)
        return False
    cur = base
    for part in d.relative_to(base).parts:
        cur = cur / part
        if cur.is_dir():
            continue
        if lexists(cur) and not quarantine(cur, "not-a-directory"):
            return False
        try:
            cur.mkdir()
        except FileExistsError:  # another process made it meanwhile
            if not cur.is_dir():
                return False
        except OSError:
            return False
    return True


def listdir(d: Path):
    try:
        return sorted(d.iterdir()) if d.is_dir() else []
    except OSError:  # removed by another process meanwhile, or unreadable
        return []


def _age(p: Path) -> float:
    try:
        return time.time() - p.lstat().st_mtime
    except OSError:
        return 0.0


def temp_dirs():
    """Where writers leave `.tmp-*` temporaries (and the old `.trash-*` of an interrupted evict)."""
    r = root()
    dirs = [knobs.cache_dir(), knobs.cache_dir() / "generated", r, r / "index", r / "kernels"]
    return dirs + [b for b in listdir(r / "kernels") if not b.name.startswith(".")]


def sweep(dry_run=False) -> dict:
    """Remove orphan temporaries (only old ones: a fresh one may be another process's store in
    progress) and prune the quarantine. Returns {"orphan-temp": n, "quarantine-pruned": m}."""
    counts = {"orphan-temp": 0, "quarantine-pruned": 0}
    for d in temp_dirs():
        for p in listdir(d):
            if p.name.startswith((".tmp-", ".trash-")) and _age(p) > ORPHAN_AGE_S:
                counts["orphan-temp"] += 1
                if not dry_run:
                    remove(p)
    kept = sorted(listdir(quarantine_dir()), key=_age)  # newest first
    for i, p in enumerate(kept):
        if i >= QUARANTINE_MAX or _age(p) > QUARANTINE_KEEP_S:
            counts["quarantine-pruned"] += 1
            if not dry_run:
                remove(p)
    return counts


# -- entries ------------------------------------------------------------------------------------

def _read(p: Path):
    """(bytes, None) or (None, problem)."""
    try:
        return p.read_bytes(), None
    except FileNotFoundError:
        return None, "missing-file"
    except (IsADirectoryError, NotADirectoryError):
        return None, "not-a-file" if p.is_dir() else "not-a-directory"
    except OSError:
        return None, "unreadable"


def check_entry(d: Path, key: str):
    """(files, meta, None) for a sound entry published under `key`, else (None, None, problem)."""
    if not d.is_dir():
        return None, None, "not-a-directory"
    raw, problem = _read(d / "meta.json")
    if problem:
        return None, None, problem
    try:
        info = json.loads(raw)
    except ValueError:  # not JSON, or not UTF-8
        return None, None, "bad-json"
    if isinstance(info, dict) and "key" not in info and "meta_sha" in info:
        return None, None, "outdated"
    if not (isinstance(info, dict) and isinstance(info.get("key"), str) and isinstance(info.get("sha"), str)
            and isinstance(info.get("meta"), dict) and isinstance(info.get("files"), dict)
            and all(isinstance(n, str) and _FILE_RE.fullmatch(n) and n != "meta.json" and isinstance(s, str)
                    for n, s in info["files"].items())):
        return None, None, "bad-json"
    if info["sha"] != _record_sha(info["key"], info["meta"], info["files"]):
        return None, None, "checksum"
    if info["key"] != key:
        return None, None, "foreign"
    files = {}
    for name, digest in info["files"].items():
        data, problem = _read(d / name)
        if problem:
            return None, None, problem
        if _sha(data) != digest:
            return None, None, "checksum"
        files[name] = data
    return files, info["meta"], None


def store(key: str, files: dict[str, bytes], meta: dict) -> None:
    """Publish an entry; any failure to write (a full disk, a read-only or concurrently cleared
    cache) only means the entry is not cached."""
    if not knobs.cache_enabled():
        return
    final = _entry_dir(key)
    if not ensure_dir(final.parent):
        return
    if str(root()) not in _swept:  # once per process: a killed store's temporaries go on the next one
        _swept.add(str(root()))
        sweep()
    if final.is_dir():  # published already (by another process, or load() found it sound)
        return
    if lexists(final) and not quarantine(final, "not-a-directory"):
        return
    tmp = final.parent / f".tmp-{key[:16]}-{uuid.uuid4().hex}"
    try:
        tmp.mkdir()
        sums = {}
        for name, data in files.items():
            (tmp / name).write_bytes(data)
            sums[name] = _sha(data)
        meta = json.loads(json.dumps(meta, sort_keys=True))  # what load() will read back
        record = {"key": key, "meta": meta, "files": sums, "sha": _record_sha(key, meta, sums)}
        (tmp / "meta.json").write_text(json.dumps(record, sort_keys=True))
        os.rename(tmp, final)  # atomic; fails if another process published first
    except OSError:
        pass
    finally:
        if lexists(tmp):
            remove(tmp)


def load(key: str):
    """(files, meta) or None; an entry that is not sound is quarantined and reported as a miss."""
    if not knobs.cache_enabled():
        return None
    d = _entry_dir(key)
    if not lexists(d):
        return None
    files, meta, problem = check_entry(d, key)
    if problem:
        quarantine(d, problem)
        return None
    return files, meta


def evict(key: str, problem: str = "unloadable") -> None:
    """Move aside an entry whose checksums hold but that its user cannot use."""
    quarantine(_entry_dir(key), problem)


# -- the index of specialised dims --------------------------------------------------------------

def check_index(p: Path, valid=None):
    """(list of names, None) or (None, problem); `valid` is the set of names allowed."""
    raw, problem = _read(p)
    if problem:
        return None, problem
    try:
        value = json.loads(raw)
    except ValueError:
        return None, "bad-json"
    if not (isinstance(value, list) and all(isinstance(x, str) for x in value)) or \
            (valid is not None and not set(value) <= set(valid)):
        return None, "bad-json"
    return value, None


def read_index(name: str, valid=None):
    """The recorded list of names, or None; a bad index (or one naming what `valid` does not
    hold) is quarantined, so the names are found again and recorded afresh."""
    if not knobs.cache_enabled():
        return None
    p = _index_path(name)
    if not lexists(p):
        return None
    value, problem = check_index(p, valid)
    if problem:
        quarantine(p, problem)
        return None
    return value


def write_index(name: str, value) -> None:
    if not knobs.cache_enabled():
        return
    p = _index_path(name)
    if not ensure_dir(p.parent):
        return
    if lexists(p) and not p.is_file() and not quarantine(p, "not-a-file"):
        return
    tmp = p.with_name(f".tmp-{p.name}-{uuid.uuid4().hex}")
    try:
        tmp.write_text(json.dumps(value))
        os.replace(tmp, p)
    except OSError:  # not remembered: the next process finds the specialisation again
        pass
    finally:
        if lexists(tmp):
            remove(tmp)


# -- listing ------------------------------------------------------------------------------------

def entry_dirs():
    """Every published-looking entry directory (names starting with '.' are temporaries)."""
    return [e for b in listdir(root() / "kernels") if b.is_dir()
            for e in listdir(b) if not e.name.startswith(".")]


def entries():
    out = []
    for e in entry_dirs():
        if not e.is_dir():
            if lexists(e):  # a file where the entry's directory belongs
                out.append({"key": e.name, "size": 0, "mtime": 0.0, "corrupt": True})
            continue
        try:
            info = json.loads((e / "meta.json").read_bytes())
            meta = info["meta"] if isinstance(info, dict) and isinstance(info.get("meta"), dict) else None
        except (OSError, ValueError):
            meta = None
        try:
            size = sum(f.lstat().st_size for f in e.iterdir())
            mtime = e.stat().st_mtime
        except OSError:  # removed by another process meanwhile
            continue
        shown = ({"corrupt": True} if meta is None
                 else {k: v for k, v in meta.items() if k not in ("key", "size", "mtime")})
        out.append({"key": e.name, "size": size, "mtime": mtime, **shown})
    return out


def clear() -> int:
    n = len(entries())
    remove(root())
    return n
