"""One run at a time on a project's data folder, and what a killed run leaves never read as "latest".

`RunJournal` is a small JSON file (`data/.run.json`) that a run creates when it starts (atomically: a second
run finds it and is refused, naming the first), extends with each version path before that version's first
byte is written, and deletes when it ends, well or not. A journal whose process is gone is a run that was
killed (`kill -9`, the OOM killer, a power cut): the next run sets its versions aside, as a failed run's are,
before it reads anything."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path

log = logging.getLogger(__name__)
FAILED = ".failed"


def set_aside(path: Path) -> bool:
    """`<folder>/<version>/<name>` renamed `<name>.failed` (kept for inspection; Kedro's latest-version glob
    no longer matches it). False when there is nothing at `path`."""
    if not path.exists():
        return False
    path.rename(path.with_name(path.name + FAILED))
    return True


def _started(pid: int) -> str:
    """The process's start time in clock ticks since boot (tells a reused pid from the one recorded)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _alive(record: dict) -> bool:
    if record.get("host") != socket.gethostname():
        return True  # another machine's run (a shared folder): cannot tell, so never taken for dead
    pid = int(record.get("pid", 0))
    if pid == os.getpid():
        return False  # an earlier session of this process that never reached its end
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not record.get("started") or _started(pid) == record["started"]


def film_identity(film: Path | None) -> str:
    """Which film a run worked on, cheaply: its resolved path, size and modification time (a folder of frames:
    its file count and newest time) — never reading a feature film's gigabytes."""
    if film is None or not film.exists():
        return ""
    film = film.resolve()
    if film.is_dir():
        stats = [p.stat() for p in film.iterdir() if p.is_file()]
        return f"{film}|{len(stats)}|{max((s.st_mtime_ns for s in stats), default=0)}"
    stat = film.stat()
    return f"{film}|{stat.st_size}|{stat.st_mtime_ns}"


def mixed_films(inputs: dict[str, str], runs: Path, film: Path | None) -> str:
    """'' when the versions a run reads (`{dataset: version}`) were made from this run's film; else what
    differs, naming each dataset, its version and its film. Versions whose run left no record (made before
    records were kept) are not judged."""
    here = film_identity(film)
    made = {}
    for dataset, version in inputs.items():
        record = runs / f"{version}.json"
        if record.exists():
            made[dataset] = (version, json.loads(record.read_text()).get("film", ""))
    others = {d: (v, f) for d, (v, f) in made.items() if f and f != here}
    if not others:
        return ""
    listed = "; ".join(f"'{d}' version {v} from '{f.split('|')[0]}'" for d, (v, f) in sorted(others.items()))
    return f"this run's film is '{here.split('|')[0] or film}', but it would read {listed}"


class RunJournal:
    def __init__(self, path: Path):
        self.path, self.record_ = path, None
        self.runs = path.with_name("runs")  # <save version>.json: the film each run worked on

    def open(self, session: str) -> None:
        """Create the journal, or refuse: a live run holds it. A dead run's journal is recovered first."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {"pid": os.getpid(), "started": _started(os.getpid()), "host": socket.gethostname(),
                  "session": session, "since": time.strftime("%Y-%m-%d %H:%M:%S"), "versions": []}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._recover_or_refuse()
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(record, f)
            self.record_ = record
            return
        raise RuntimeError(f"Could not take the run journal '{self.path}'")

    def remember_film(self, version: str, film: Path | None) -> None:
        """Record which film the versions `version` are made from (checked by later runs that read them)."""
        self.runs.mkdir(parents=True, exist_ok=True)
        (self.runs / f"{version}.json").write_text(json.dumps({"film": film_identity(film)}))

    def _recover_or_refuse(self) -> None:
        try:
            other = json.loads(self.path.read_text())
        except (OSError, ValueError):  # written half-way by a run killed as it started: nothing saved yet
            other = {"pid": 0, "host": socket.gethostname(), "versions": []}
        if _alive(other):
            raise RuntimeError(
                f"Another `kedro run` is using this project's data folder: pid {other.get('pid')} on "
                f"{other.get('host')}, since {other.get('since')} (session {other.get('session')}). Wait for "
                f"it to end or stop it; if no such run is going on, delete '{self.path}'")
        aside = [p for p in map(Path, other.get("versions", [])) if set_aside(p)]
        if aside:
            log.warning("A run that was killed (pid %s, since %s) left %d versions: marked failed "
                        "(<file>.failed in their version folders), never read as latest: %s",
                        other.get("pid"), other.get("since"), len(aside),
                        ", ".join(p.parent.parent.name for p in aside))
        self.path.unlink(missing_ok=True)

    def record(self, version: Path) -> None:
        """Add a version path (before it is written), the file replaced whole: a kill never leaves half."""
        if self.record_ is None:
            return
        self.record_["versions"].append(str(version.resolve()))
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps(self.record_))
        os.replace(partial, self.path)

    def close(self) -> None:
        if self.record_ is not None:
            self.path.unlink(missing_ok=True)
            self.record_ = None
