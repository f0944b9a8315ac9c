"""Who runs a send: the process that owns a run and its journal, and whether it still
lives. A process id alone is not enough (ids are reused), so the owner is the id, the
process's start time and the boot it started in, on this host."""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from functools import cache
from pathlib import Path


@dataclass(frozen=True)
class Owner:
    """A process on a host: its id, start time (clock ticks since boot) and boot id."""

    pid: int
    start: str
    boot: str
    host: str

    @classmethod
    def current(cls) -> Owner:
        """This process."""
        return _current(os.getpid())

    def note(self) -> str:
        """How the ``runs`` table and a journal's first line record the owner."""
        return f"pid:{self.pid} start:{self.start} boot:{self.boot} host:{self.host}"

    @classmethod
    def parse(cls, note: str | None) -> Owner | None:
        """The owner a note names (a bare ``pid:N`` from older versions too), or None."""
        if not note:
            return None
        fields = dict(re.findall(r"(\w+):(\S+)", note))
        if not fields.get("pid", "").isdigit():
            return None
        return cls(
            int(fields["pid"]),
            fields.get("start", "?"),
            fields.get("boot", "?"),
            fields.get("host", "?"),
        )

    def alive(self) -> bool:
        """The owner still runs: same host, and a process with its id that started when it
        did. An owner on another host is taken as alive (it cannot be checked from here)."""
        me = Owner.current()
        if self.host not in ("?", me.host):
            return True
        if self.pid == me.pid:
            return self.start in ("?", me.start)
        if self.boot not in ("?", me.boot):
            return False  # the machine restarted since
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # another user's process: it exists
        if _state(self.pid) == "Z":
            return False  # killed, not yet reaped
        return self.start == "?" or _start_time(self.pid) in (self.start, "?")


@cache
def _current(pid: int) -> Owner:
    # keyed by pid: a forked child is another owner
    return Owner(pid, _start_time(pid), _boot_id(), socket.gethostname())


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat from the third (state) on; empty off Linux."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _state(pid: int) -> str:
    fields = _stat(pid)
    return fields[0] if fields else "?"


def _start_time(pid: int) -> str:
    """Field 22 of /proc/PID/stat (the start time in ticks), or '?' off Linux."""
    fields = _stat(pid)
    return fields[19] if len(fields) > 19 else "?"


@cache
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "?"
