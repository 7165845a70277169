"""The cache heals itself (issue 16): whatever state is found under TESSERA_CACHE_DIR, a launch
works and gives the right numbers, the bad state is moved into the quarantine and rebuilt, and
`tessera cache verify` finds and repairs the rest. Each test starts from its own cache directory."""
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from tessera.gdn import generated
from tessera.runtime import cache
from tessera.runtime.tuning_db import TuningDB
from tessera.tools.cli import main as cli

from cache_healing_kernels import launch

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def cdir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(d))
    monkeypatch.delenv("TESSERA_CACHE", raising=False)
    return d


def _entries():
    return cache.entry_dirs()


def _index():
    (p,) = list((cache.root() / "index").glob("*.json"))
    return p


def _quarantined():
    return sorted(p.name for p in cache.listdir(cache.quarantine_dir()))


def _seed():
    """A cache holding one entry and one index, the state every damage starts from."""
    assert launch() is False and launch() is True
    (entry,) = _entries()
    return entry, _index()


def _in_new_processes(cdir, n=1, scale=1.0):
    """Launch in `n` fresh processes one after another: [from the disk cache?]."""
    env = dict(os.environ, TESSERA_CACHE_DIR=str(cdir), PYTHONPATH=os.pathsep.join(
        [HERE] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    out = []
    for _ in range(n):
        r = subprocess.run([sys.executable, os.path.join(HERE, "cache_healing_kernels.py"), str(scale)],
                           capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        out.append(json.loads(r.stdout.strip().splitlines()[-1]))
    return out


# -- the index of dim-specialised kernels ---------------------------------------------------------

@pytest.mark.parametrize("damage", ["garbage", "binary", "int", "nested", "unknown_dim", "empty", "directory"])
def test_corrupt_dim_index_is_quarantined_and_rebuilt(cdir, damage):
    _, index = _seed()
    if damage == "directory":
        index.unlink()
        index.mkdir()
    else:
        index.write_bytes({"garbage": b"{not json", "binary": b"\xff\xfe\x00", "int": b"5", "nested": b"[[1]]",
                           "unknown_dim": b'["Q"]', "empty": b""}[damage])
    assert launch() is True  # the entry itself is sound: found again once K is rediscovered
    assert json.loads(index.read_text()) == ["K"]
    assert len(_quarantined()) == 1
    assert _quarantined()[0].startswith(f"{'not-a-file' if damage == 'directory' else 'bad-json'}-{index.name}")


def test_corrupt_dim_index_heals_for_every_later_process(cdir):
    _, index = _seed()
    index.write_text("[[1]]")  # raised TypeError in every process until `tessera cache clear`
    assert _in_new_processes(cdir, 2) == [True, True]
    assert json.loads(index.read_text()) == ["K"]


# -- files where directories belong, and the reverse ----------------------------------------------

def test_cache_root_that_is_a_regular_file_is_quarantined(cdir):
    cdir.mkdir()
    (cdir / cache.LAYOUT).write_text("not a directory")
    assert _in_new_processes(cdir, 2) == [False, True]  # rebuilt by the first, used by the second
    assert cache.root().is_dir() and _quarantined()[0].startswith("not-a-directory")
    assert launch() is True


@pytest.mark.parametrize("where", ["kernels", "bucket", "index"])
def test_a_file_where_a_cache_directory_belongs(cdir, where):
    entry, index = _seed()
    victim = {"kernels": cache.root() / "kernels", "bucket": entry.parent, "index": index.parent}[where]
    shutil.rmtree(victim)
    victim.write_text("x")
    assert launch() is (where == "index")  # rebuilt (an index is only a hint: the entry is still there)
    assert victim.is_dir() and _quarantined()[0].startswith("not-a-directory")
    assert launch() is True


def test_cache_dir_that_is_the_users_file_is_left_alone(tmp_path, monkeypatch, capsys):
    mine = tmp_path / "notes.txt"
    mine.write_text("the user's own file")
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(mine))
    assert launch() is False and launch() is False  # compiled uncached, no exception
    assert mine.read_text() == "the user's own file"
    assert capsys.readouterr().err.count("compiling without the disk cache") == 1
    assert cli(["cache", "verify"]) == 1
    assert "NOT repaired" in capsys.readouterr().out


def test_entry_replaced_by_a_file_is_cached_again(cdir):
    entry, _ = _seed()
    shutil.rmtree(entry)
    entry.write_text("x")  # was never cached again: store() saw the name taken
    assert launch() is False
    assert entry.is_dir() and _quarantined()[0].startswith("not-a-directory")
    assert launch() is True


# -- damaged entries ------------------------------------------------------------------------------

def _edit_meta(entry, fn):
    info = json.loads((entry / "meta.json").read_text())
    fn(info)
    (entry / "meta.json").write_text(json.dumps(info))


DAMAGE = {
    "meta_not_a_dict": (lambda e: (e / "meta.json").write_text("[1, 2]"), "bad-json"),
    "meta_wrong_types": (lambda e: _edit_meta(e, lambda i: i.update(files=["kernel.llvm"])), "bad-json"),
    "key_wrong_type": (lambda e: _edit_meta(e, lambda i: i.update(key=5)), "bad-json"),
    "name_escapes": (lambda e: _edit_meta(e, lambda i: i["files"].update({"../x": "0" * 64})), "bad-json"),
    "meta_missing": (lambda e: (e / "meta.json").unlink(), "missing-file"),
    "meta_is_dir": (lambda e: ((e / "meta.json").unlink(), (e / "meta.json").mkdir()), "not-a-file"),
    "file_is_dir": (lambda e: ((e / "kernel.llvm").unlink(), (e / "kernel.llvm").mkdir()), "not-a-file"),
    "file_missing": (lambda e: (e / "kernel.llvm").unlink(), "missing-file"),
    "checksum": (lambda e: (e / "kernel.llvm").write_text("garbage"), "checksum"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_entry_is_quarantined_and_rebuilt(cdir, damage):
    entry, _ = _seed()
    fn, problem = DAMAGE[damage]
    fn(entry)
    assert launch() is False
    assert [q.rsplit("-", 1)[0] for q in _quarantined()] == [f"{problem}-{entry.name}"]
    assert launch() is True


def test_entry_of_an_older_tessera_is_replaced(cdir):
    entry, _ = _seed()
    _edit_meta(entry, lambda i: (i.pop("key"), i.pop("sha"), i.update(meta_sha="0")))
    assert launch() is False and launch() is True
    assert _quarantined() == []  # a legitimate old entry: removed, not kept as evidence


def test_unreadable_entry_is_quarantined(cdir, monkeypatch):
    entry, _ = _seed()
    os.chmod(entry / "meta.json", 0)
    if os.geteuid() == 0:  # root reads anything: make the read fail as it would for a user
        real = type(entry).read_bytes
        failed = []

        def read_bytes(self):
            if self == entry / "meta.json" and not failed:
                failed.append(self)
                raise PermissionError(13, "Permission denied", str(self))
            return real(self)
        monkeypatch.setattr(type(entry), "read_bytes", read_bytes)
    assert launch() is False
    assert _quarantined()[0].startswith("unreadable")
    assert launch() is True


def test_foreign_entry_is_detected(cdir):
    """An entry with sound checksums copied under another kernel's key: it used to run (wrong numbers)."""
    assert launch(1.0) is False
    (plus,) = _entries()
    assert launch(2.0) is False
    (times2,) = set(_entries()) - {plus}
    shutil.rmtree(times2)
    shutil.copytree(plus, times2)
    assert _in_new_processes(cdir, 1, scale=1.0) == [True]  # the other kernel's entry is untouched
    assert _in_new_processes(cdir, 1, scale=2.0) == [False]  # right numbers: not the copied kernel
    assert _quarantined()[0].startswith(f"foreign-{times2.name}")
    assert launch(2.0) is True


# -- temporaries of killed writers ----------------------------------------------------------------

KILLED = textwrap.dedent('''
    import os, pathlib, signal
    from tessera.runtime import cache
    real = pathlib.Path.write_bytes

    def die(self, data):
        real(self, data)
        os.kill(os.getpid(), signal.SIGKILL)  # kill -9 halfway through the store
    pathlib.Path.write_bytes = die
    cache.store("ab" * 32, {"kernel.llvm": b"x" * 100, "kernel.tile": b"y"}, {"name": "k"})
''')


def test_orphan_temporaries_of_a_killed_store_are_removed_on_the_next_store(tmp_path, cdir):
    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    r = subprocess.run([sys.executable, str(script)], env=dict(os.environ, TESSERA_CACHE_DIR=str(cdir)), timeout=120)
    assert r.returncode == -9
    (orphan,) = (cache.root() / "kernels" / "ab").glob(".tmp-*")
    old = time.time() - cache.ORPHAN_AGE_S - 60
    os.utime(orphan, (old, old))
    index_tmp = cache.root() / "index" / ".tmp-x.json-1"
    index_tmp.parent.mkdir(parents=True, exist_ok=True)
    index_tmp.write_text("[")
    os.utime(index_tmp, (old, old))
    fresh = cache.root() / "kernels" / "ab" / ".tmp-another-process-writing"
    fresh.mkdir()
    assert launch() is False
    assert not orphan.exists() and not index_tmp.exists()
    assert fresh.exists()  # may be another process's store in progress
    assert launch() is True


# -- the autotune database and generated sources --------------------------------------------------

@pytest.mark.parametrize("damage", ["garbage", "directory", "foreign_table"])
def test_damaged_autotune_database_is_quarantined(cdir, damage):
    db = TuningDB()
    db.record("k", "k", {"N": 1}, "cpu", "c", {"B": 1}, ms=1.0)
    db.file.unlink()
    if damage == "garbage":
        db.file.write_bytes(b"this is not sqlite" * 100)
    elif damage == "directory":
        db.file.mkdir()
    else:
        import sqlite3
        con = sqlite3.connect(db.file)
        con.execute("CREATE TABLE timings (a, b)")
        con.commit()
        con.close()
    assert TuningDB().results("k", {"N": 1}, "cpu", "c") == []  # read: no exception
    db.record("k", "k", {"N": 1}, "cpu", "c", {"B": 2}, ms=2.0)
    assert [r[0] for r in TuningDB().results("k", {"N": 1}, "cpu", "c")] == [{"B": 2}]
    problem = {"garbage": "corrupt-db", "directory": "not-a-file", "foreign_table": "bad-schema"}[damage]
    assert _quarantined()[0].startswith(f"{problem}-autotune.sqlite3")


def test_damaged_generated_source_is_rewritten(cdir):
    src = generated.HEADER + textwrap.dedent('''
        @ts.kernel
        def heal_gen(x: tile.Tensor["N", ts.f32], out: tile.Tensor["N", ts.f32]):
            tile.store(out[0:16], tile.load(x[0:16]) + 1.0)
    ''')
    generated.load("heal_gen", src)
    (path,) = (cdir / "generated").glob("heal_gen_*.py")
    path.write_text("this is not python (")
    generated._LOADED.clear()
    k = generated.load("heal_gen", src)
    x = np.arange(16, dtype=np.float32)
    out = np.zeros_like(x)
    k[(1,)](x, out)
    assert (out == x + 1).all() and path.read_text() == src
    assert _quarantined()[0].startswith("checksum")


# -- tessera cache verify -------------------------------------------------------------------------

def test_cache_verify_reports_and_repairs(cdir, capsys):
    assert launch(1.0) is False
    (a,) = _entries()
    assert launch(2.0) is False
    (b,) = set(_entries()) - {a}
    (b / "kernel.llvm").write_text("flipped")                        # checksum
    foreign = a.parent.parent / ("0" * 64)[:2] / ("0" * 64)
    foreign.parent.mkdir(exist_ok=True)
    shutil.copytree(a, foreign)                                      # foreign
    (cache.root() / "index" / ("1" * 64 + ".json")).write_text("{")   # bad-json
    (cache.root() / "kernels" / "zz").mkdir()                        # stray
    orphan = a.parent / ".tmp-killed"
    orphan.mkdir()
    old = time.time() - cache.ORPHAN_AGE_S - 60
    os.utime(orphan, (old, old))                                     # orphan-temp
    capsys.readouterr()
    assert cli(["cache", "verify", "--dry-run"]) == 1
    out = capsys.readouterr().out
    for problem in ("checksum", "foreign", "bad-json", "stray", "orphan-temp"):
        assert f"{problem} " in out and "would repair" in out, out
    assert "checked: 3 compiled kernel(s), 3 dim index(es)" in out, out
    assert foreign.exists() and orphan.exists() and _quarantined() == []  # a dry run changes nothing
    assert cli(["cache", "verify"]) == 0
    out = capsys.readouterr().out
    assert "repaired 5:" in out and out.rstrip().endswith("healthy"), out
    assert not foreign.exists() and not orphan.exists() and len(_quarantined()) == 4
    r = subprocess.run([sys.executable, "-m", "tessera.tools.cli", "cache", "verify"], capture_output=True,
                       text=True, env=dict(os.environ, TESSERA_CACHE_DIR=str(cdir)), timeout=120)
    assert r.returncode == 0 and "no problems found" in r.stdout, r.stdout + r.stderr
    assert launch(1.0) is True and launch(2.0) is False and launch(2.0) is True
