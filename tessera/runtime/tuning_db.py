"""The autotuning database: one SQLite file beside the compile cache (TESSERA_CACHE_DIR), one row
per (kernel hash, key values, device, compiler version, config) with its timing — or why it was
rejected — so a later process reuses what an earlier one measured. SQLite's own locking (WAL, a
busy timeout) makes concurrent tuners in several processes safe. `TESSERA_CACHE=0` turns it off
like the compile cache. MLIR-free."""
from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

from .. import knobs
from . import cache

SCHEMA = """
CREATE TABLE IF NOT EXISTS timings (
    kernel   TEXT NOT NULL,   -- hash of the kernel's source and dependencies
    name     TEXT NOT NULL,   -- the kernel's Python name (for people)
    key      TEXT NOT NULL,   -- JSON of the autotune key values
    device   TEXT NOT NULL,
    compiler TEXT NOT NULL,
    config   TEXT NOT NULL,   -- JSON of the config
    ms       REAL,            -- median time per launch; NULL when not timed
    status   TEXT NOT NULL,   -- 'ok' | 'rejected' (over the target's resources) | 'failed'
    reason   TEXT,
    created  REAL NOT NULL,
    PRIMARY KEY (kernel, key, device, compiler, config)
)"""
COLUMNS = ["kernel", "name", "key", "device", "compiler", "config", "ms", "status", "reason", "created"]


def path() -> Path:
    return knobs.cache_dir() / "autotune.sqlite3"


def _canon(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


# SQLITE_CORRUPT, SQLITE_NOTADB: the file is damaged, unlike "locked" or "cannot open", which are not
_DAMAGED = (11, 26)
_DAMAGED_MSG = ("malformed", "not a database")


class TuningDB:
    def __init__(self, file: Path | None = None):
        self.file = Path(file) if file is not None else path()

    def _connect(self):
        if not cache.under(self.file, knobs.cache_dir()):
            self.file.parent.mkdir(parents=True, exist_ok=True)
        elif not cache.ensure_dir(self.file.parent):
            raise sqlite3.OperationalError("the cache directory cannot be used")
        con = sqlite3.connect(self.file, timeout=30.0)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(SCHEMA)
        except BaseException:
            con.close()
            raise
        return con

    def damaged(self) -> str | None:
        """Why the file cannot be used as the database ("not-a-file", "corrupt-db", "bad-schema"), else None."""
        if not os.path.lexists(self.file):
            return None
        if not self.file.is_file():
            return "not-a-file"
        try:
            con = sqlite3.connect(f"file:{self.file}?mode=ro", uri=True, timeout=30.0)
            try:
                ok = con.execute("PRAGMA quick_check").fetchone()
                columns = [r[1] for r in con.execute("PRAGMA table_info(timings)")]
            finally:
                con.close()
        except sqlite3.DatabaseError as e:
            code = getattr(e, "sqlite_errorcode", None)  # Python >= 3.11; the message before that
            damaged = code in _DAMAGED if code is not None else any(m in str(e) for m in _DAMAGED_MSG)
            return "corrupt-db" if damaged else None
        if not ok or ok[0] != "ok":
            return "corrupt-db"
        return None if columns in (COLUMNS, []) else "bad-schema"

    def heal(self) -> bool:
        """Quarantine a damaged database (with its journal) so the next use starts an empty one."""
        problem = self.damaged()
        if problem is None:
            return False
        for suffix in ("", "-wal", "-shm"):
            p = self.file.with_name(self.file.name + suffix)
            cache.quarantine(p, problem)
        return True

    def _use(self, fn, default):
        """fn(connection); a damaged database is quarantined and started afresh, and one that cannot
        be used at all (unwritable, locked past the timeout) only means nothing is remembered."""
        for _ in range(2):
            try:
                con = self._connect()
                try:
                    return fn(con)
                finally:
                    con.close()
            except (sqlite3.Error, OSError):
                if not self.heal():
                    return default
        return default

    def record(self, kernel, name, key, device, compiler, config, ms=None, status="ok", reason=None):
        self.record_many(kernel, name, key, device, compiler, [(config, ms, status, reason)])

    def record_many(self, kernel, name, key, device, compiler, results):
        """Every (config, ms, status, reason) of one tuning run, in one transaction."""
        if not knobs.cache_enabled():  # TESSERA_CACHE=0: nothing on disk (the tuner still remembers in memory)
            return
        now = time.time()

        def write(con):
            with con:
                con.executemany("INSERT OR REPLACE INTO timings VALUES (?,?,?,?,?,?,?,?,?,?)",
                                [(kernel, name, _canon(key), device, compiler, _canon(config), ms, status, reason, now)
                                 for config, ms, status, reason in results])
        self._use(write, None)

    def results(self, kernel, key, device, compiler):
        """[(config dict, ms, status, reason)] for one tuning problem, fastest first."""
        if not knobs.cache_enabled() or not os.path.lexists(self.file):
            return []
        rows = self._use(lambda con: con.execute(
            "SELECT config, ms, status, reason FROM timings WHERE kernel=? AND key=? AND device=? "
            "AND compiler=? ORDER BY status != 'ok', ms", (kernel, _canon(key), device, compiler)).fetchall(), [])
        out = []
        for c, ms, st, r in rows:
            try:
                out.append((json.loads(c), ms, st, r))
            except (TypeError, ValueError):  # a row no tuner wrote: ignored, the config is timed again
                continue
        return out

    def best(self, kernel, key, device, compiler, space_configs):
        """The fastest timed config that is still in the space, or None (not tuned yet)."""
        allowed = {_canon(c) for c in space_configs}
        for config, ms, status, _ in self.results(kernel, key, device, compiler):
            if status == "ok" and ms is not None and _canon(config) in allowed:
                return config
        return None

    def rows(self):
        if not os.path.lexists(self.file):
            return []
        return self._use(lambda con: con.execute(
            "SELECT name, key, device, compiler, config, ms, status, reason FROM timings "
            "ORDER BY name, key, status != 'ok', ms").fetchall(), [])

    def clear(self) -> int:
        """Remove every row (a DELETE, not an unlink: other processes may have the database open)."""
        if not os.path.lexists(self.file):
            return 0

        def delete(con):
            with con:
                return con.execute("DELETE FROM timings").rowcount
        return self._use(delete, 0)
