"""Telling every rank which peer failed (DESIGN §14), instead of a hang or a bare socket error.

Each rank keeps two keys in the rendezvous store (torch's TCPStore: torchrun's agent hosts it, so it
outlives any worker; without torchrun, rank 0 hosts it):

- `status/<rank>`: "failed <exception>" written by the rank's excepthook when it dies of an uncaught
  exception, "aborted <why>" when it stops because of another rank's failure, "exited" at a normal exit.
- `beat/<rank>`: "<counter> <collectives entered>", rewritten every BEAT_INTERVAL seconds by a daemon
  thread with its own store client. A rank killed by a signal (SIGKILL, the OOM killer) writes nothing,
  but its counter stops; a rank that is alive but stuck elsewhere keeps beating with a smaller
  collective count.

When a collective fails (gloo reports a closed connection as soon as a peer's process is gone) or times
out (the process groups are created with TESSERA_DIST_TIMEOUT), or when torchrun stops this rank
with SIGTERM because a peer failed, `Monitor.diagnose` reads those keys and raises a DistributedError
naming the failed rank(s). Every store read in the diagnosis is bounded by a short store timeout.
"""
from __future__ import annotations

import atexit
import os
import re
import signal
import sys
import threading
import time
import traceback
from datetime import timedelta

from ..errors import DistributedError

BEAT_INTERVAL = 0.5                 # seconds between heartbeats
DEAD_AFTER = 3 * BEAT_INTERVAL      # a counter that has not moved for this long is a dead rank
STORE_READ_TIMEOUT = 5.0            # seconds one diagnosis read of the store may take


class Monitor:
    """This rank's heartbeat and status keys, and the diagnosis of a peer's failure."""

    def __init__(self, rank: int, world: int, host: str, port: int, timeout: float):
        self.rank, self.world, self.host, self.port, self.timeout = rank, world, host, port, timeout
        # keys of an earlier torchrun restart of the same job must not be read as this attempt's
        run = os.environ.get("TORCHELASTIC_RUN_ID", "none")
        restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        self.prefix = f"tessera/{run}/{restart}/"
        self.collectives = 0          # collectives this rank has entered (sent with the heartbeat)
        self.current = ""             # the collective it is in, for messages
        self.diagnosing = False
        self.stopped = threading.Event()
        self.store = self._client()
        self.store.set(self._key("status", rank), "running")
        self.store.set(self._key("beat", rank), "0 0")
        self.thread = threading.Thread(target=self._beat, name="tessera-dist-heartbeat", daemon=True)
        self.thread.start()
        self._install_hooks()

    def _client(self):
        import torch.distributed as tdist
        return tdist.TCPStore(self.host, self.port, is_master=False, wait_for_workers=False,
                              timeout=timedelta(seconds=min(self.timeout, STORE_READ_TIMEOUT)))

    def _key(self, kind, rank):
        return f"{self.prefix}{kind}/{rank}"

    # -- this rank's side ---------------------------------------------------------------------------
    def _beat(self):
        try:
            store = self._client()   # its own connection: the main thread's may be inside a diagnosis
            counter = 0
            while not self.stopped.wait(BEAT_INTERVAL):
                counter += 1
                store.set(self._key("beat", self.rank), f"{counter} {self.collectives}")
        except Exception:   # noqa: BLE001 - the store is gone (the job is ending): nothing left to tell
            return

    def set_status(self, status: str):
        try:
            self.store.set(self._key("status", self.rank), status)
        except Exception:   # noqa: BLE001 - a store that is gone cannot be told; the exit goes on
            pass

    def _install_hooks(self):
        previous_hook = sys.excepthook

        def excepthook(kind, value, tb):
            if isinstance(value, DistributedError):
                self.set_status(f"aborted {value}")
            else:
                text = "".join(traceback.format_exception_only(kind, value)).strip()
                self.set_status(f"failed {text}")
            self.stopped.set()
            previous_hook(kind, value, tb)
        sys.excepthook = excepthook
        atexit.register(self._at_exit)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_sigterm)

    def _at_exit(self):
        try:
            status = self.store.get(self._key("status", self.rank)).decode()
        except Exception:   # noqa: BLE001
            status = ""
        if status == "running":
            self.set_status("exited")
        self.stopped.set()

    def _on_sigterm(self, signum, frame):
        """torchrun stops the other workers when one fails: say which one instead of dying silently."""
        if self.diagnosing:   # a diagnosis is under way and will raise with the reason
            return
        error = self.diagnose("the launcher stopped this rank (SIGTERM)")
        self.set_status(f"aborted {error}")
        raise error

    # -- the survivors' side ------------------------------------------------------------------------
    def _read(self, kind, rank):
        key = self._key(kind, rank)
        if not self.store.check([key]):
            return None
        return self.store.get(key).decode()

    def _read_all(self, kind):
        return {r: self._read(kind, r) for r in range(self.world) if r != self.rank}

    def diagnose(self, what: str, group_ranks=None) -> DistributedError:
        """A DistributedError saying what happened to the peers (`group_ranks`: the global ranks of the
        group the failed collective ran over; the whole world when None)."""
        self.diagnosing = True
        try:
            return self._diagnose(what, group_ranks)
        except Exception as e:   # noqa: BLE001 - the store itself is unreachable
            owner = ("torchrun's agent" if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
                     else "rank 0")
            return DistributedError(
                f"rank {self.rank}: {what}; the rendezvous store at {self.host}:{self.port} (hosted by {owner}) "
                f"cannot be read ({type(e).__name__}: {e}), so the failed peer is not known: if rank 0 hosts it, "
                "rank 0 has probably died")
        finally:
            self.diagnosing = False

    def _diagnose(self, what, group_ranks):
        head = f"rank {self.rank}: {_short(what)}"
        statuses = self._read_all("status")
        failed = {r: s[len("failed "):] for r, s in statuses.items() if s and s.startswith("failed ")}
        if failed:
            return DistributedError(head + "; " + "; ".join(f"rank {r} failed: {why}" for r, why in failed.items()),
                                    ranks=sorted(failed))
        first = self._read_all("beat")
        time.sleep(DEAD_AFTER)
        again = self._read_all("beat")
        statuses = self._read_all("status")
        failed = {r: s[len("failed "):] for r, s in statuses.items() if s and s.startswith("failed ")}
        if failed:
            return DistributedError(head + "; " + "; ".join(f"rank {r} failed: {why}" for r, why in failed.items()),
                                    ranks=sorted(failed))
        dead = [r for r in first if first[r] is not None and first[r] == again[r] and statuses.get(r) == "running"]
        if dead:
            return DistributedError(
                f"{head}; rank(s) {', '.join(map(str, dead))} died without an error (no heartbeat for "
                f"{DEAD_AFTER:.1f} s: killed by a signal or the OOM killer?)", ranks=dead)
        exited = [r for r, s in statuses.items() if s == "exited"]
        scope = [r for r in (group_ranks or range(self.world)) if r != self.rank]
        exited_here = [r for r in exited if r in scope]
        if exited_here:
            return DistributedError(f"{head}; rank(s) {', '.join(map(str, exited_here))} already finished their "
                                    "program (they never entered this collective)", ranks=exited_here)
        behind = [r for r in scope if again.get(r) and int(again[r].split()[1]) < self.collectives]
        if behind:
            # a rank behind may itself wait for another: the one with the fewest collectives is the culprit
            counts = {r: int(b.split()[1]) for r, b in again.items() if b}
            least = min(counts.values())
            furthest = sorted(r for r, c in counts.items() if c == least)
            return DistributedError(
                f"{head}; rank(s) {', '.join(map(str, behind))} are alive but did not reach this collective "
                f"(#{self.collectives} on this rank) within {self.timeout:g} s (TESSERA_DIST_TIMEOUT): a hang or "
                f"ranks that call different collectives; furthest behind: rank(s) {', '.join(map(str, furthest))} "
                f"(at collective #{least})", ranks=furthest)
        aborted = {r: s for r, s in statuses.items() if s and s.startswith("aborted ")}
        if aborted:
            r, s = next(iter(aborted.items()))
            return DistributedError(f"{head}; rank {r} stopped first: {s[len('aborted '):]}")
        return DistributedError(f"{head}; no peer reported a failure (a network error?)")

    def stop(self):
        self.stopped.set()


def _short(text):
    """torch's and gloo's messages without the C++ source position and the advice paragraph."""
    text = re.sub(r"\[[^\]]*\.(cc|cpp|h):\d+\] ", "", text)
    return text.split(". This is typically caused")[0]
