"""The autotuning database: one SQLite file beside the compile cache (TESSERA_CACHE_DIR), one row
per (kernel hash, key values, device, compiler version, config) with its timing — or why it was
rejected — so a later process reuses what an earlier one measured. SQLite's own locking (WAL, a
busy timeout) makes concurrent tuners in several processes safe. `TESSERA_CACHE=0` turns it off
like the compile cache. MLIR-free."""
from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from .. import knobs

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


def path() -> Path:
    return knobs.cache_dir() / "autotune.sqlite3"


def _canon(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


class TuningDB:
    def __init__(self, file: Path | None = None):
        self.file = Path(file) if file is not None else path()

    def _connect(self):
        self.file.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.file, timeout=30.0)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(SCHEMA)
        return con

    def record(self, kernel, name, key, device, compiler, config, ms=None, status="ok", reason=None):
        self.record_many(kernel, name, key, device, compiler, [(config, ms, status, reason)])

    def record_many(self, kernel, name, key, device, compiler, results):
        """Every (config, ms, status, reason) of one tuning run, in one transaction."""
        if not knobs.cache_enabled():  # TESSERA_CACHE=0: nothing on disk (the tuner still remembers in memory)
            return
        now = time.time()
        con = self._connect()
        try:
            with con:
                con.executemany("INSERT OR REPLACE INTO timings VALUES (?,?,?,?,?,?,?,?,?,?)",
                                [(kernel, name, _canon(key), device, compiler, _canon(config), ms, status, reason, now)
                                 for config, ms, status, reason in results])
        finally:
            con.close()

    def results(self, kernel, key, device, compiler):
        """[(config dict, ms, status, reason)] for one tuning problem, fastest first."""
        if not knobs.cache_enabled() or not self.file.exists():
            return []
        con = self._connect()
        try:
            rows = con.execute("SELECT config, ms, status, reason FROM timings WHERE kernel=? AND key=? AND device=? "
                               "AND compiler=? ORDER BY status != 'ok', ms", (kernel, _canon(key), device, compiler)).fetchall()
        finally:
            con.close()
        return [(json.loads(c), ms, st, r) for c, ms, st, r in rows]

    def best(self, kernel, key, device, compiler, space_configs):
        """The fastest timed config that is still in the space, or None (not tuned yet)."""
        allowed = {_canon(c) for c in space_configs}
        for config, ms, status, _ in self.results(kernel, key, device, compiler):
            if status == "ok" and ms is not None and _canon(config) in allowed:
                return config
        return None

    def rows(self):
        if not self.file.exists():
            return []
        con = self._connect()
        try:
            return con.execute("SELECT name, key, device, compiler, config, ms, status, reason FROM timings "
                               "ORDER BY name, key, status != 'ok', ms").fetchall()
        finally:
            con.close()

    def clear(self) -> int:
        """Remove every row (a DELETE, not an unlink: other processes may have the database open)."""
        if not self.file.exists():
            return 0
        con = self._connect()
        try:
            with con:
                return con.execute("DELETE FROM timings").rowcount
        finally:
            con.close()
