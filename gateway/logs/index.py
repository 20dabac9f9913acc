"""The containers' log files as CloudWatch Logs' groups, streams and events, read when asked.

Nothing is copied: each call looks at the state folder, laid out as ``gateway.folders`` says. An
endpoint instance's containers keep ``<state>/endpoints/<endpoint>/<instance>/<hostname>/
container.log`` (the instance is the endpoint's name, ``name.1`` after an update,
``name_<variant>_<n>`` for each of several instances); a transform job's,
``<state>/jobs/endpoints/<job>/<instance>/<hostname>/container.log``. Each line of a file starts
with its time (``gateway.lifecycle.containerlog``). A group or stream exists while its files do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gateway.folders import ENDPOINTS, JOBS
from gateway.lifecycle.containerlog import LABELS_FILE, parse
from gateway.logstreams import (
    COMPONENT_GROUP,
    ENDPOINT_GROUP,
    TRANSFORM_GROUP,
    endpoint_stream,
    job_stream,
)

LOG_FILE = "container.log"
_NAME = r"[a-zA-Z0-9](?:-*[a-zA-Z0-9])*"
#: An instance's folder: ``endpoint``, ``endpoint.N``, and ``_<variant>_<n>`` for many.
_FOLDER = re.compile(rf"(?P<endpoint>{_NAME})(?:\.\d+)?(?:_(?P<variant>{_NAME})_\d+)?")
#: The variant of an endpoint that has one and did not say (SageMaker's SDKs' default name).
DEFAULT_VARIANT = "AllTraffic"


@dataclass(frozen=True)
class Event:
    timestamp: int
    message: str
    #: Where it is in its stream: (file's index, line's index), a stable order and event id.
    position: tuple[int, int]


@dataclass(frozen=True)
class Stream:
    group: str
    name: str
    files: tuple[Path, ...]

    def created(self) -> int:
        """Milliseconds: the oldest file's change time (when the container started)."""
        return min(_mtime_ms(f, ctime=True) for f in self.files)

    def last_write(self) -> int:
        return max(_mtime_ms(f) for f in self.files)

    def stored_bytes(self) -> int:
        return sum(_size(f) for f in self.files)

    def events(self) -> list[Event]:
        """Every event, oldest first; a line without a time takes its predecessor's (or the
        file's start)."""
        events: list[Event] = []
        for index, path in enumerate(self.files):
            last = _mtime_ms(path, ctime=True)
            for number, line in enumerate(_lines(path)):
                when, text = parse(line)
                last = when if when is not None else last
                events.append(Event(last, text, (index, number)))
        events.sort(key=lambda e: (e.timestamp, e.position))
        return events


class LogIndex:
    """The groups and streams the state folder holds now."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    def groups(self) -> dict[str, list[Stream]]:
        """Group name -> its streams, by name; groups by name."""
        found: dict[str, list[Stream]] = {}
        for stream in [*self._endpoint_streams(), *self._job_streams()]:
            found.setdefault(stream.group, []).append(stream)
        return {g: sorted(found[g], key=lambda s: s.name) for g in sorted(found)}

    def _endpoint_streams(self) -> Iterator[Stream]:
        for endpoint in _dirs(self.state_dir / ENDPOINTS):
            for folder in _dirs(endpoint):
                matched = _FOLDER.fullmatch(folder.name)
                if matched is None or matched.group("endpoint") != endpoint.name:
                    continue
                logs = _logs(folder)
                for log in logs:
                    labels = _labels(log)
                    component = labels.get("component")
                    if component:  # a copy of an inference component: its own group
                        name = endpoint_stream(component, folder.name, log.parent.name, len(logs))
                        yield Stream(COMPONENT_GROUP + component, name, (log,))
                        continue
                    variant = matched.group("variant") or labels.get("variant", DEFAULT_VARIANT)
                    name = endpoint_stream(variant, folder.name, log.parent.name, len(logs))
                    yield Stream(ENDPOINT_GROUP + endpoint.name, name, (log,))

    def _job_streams(self) -> Iterator[Stream]:
        for job in _dirs(self.state_dir / JOBS / ENDPOINTS):
            logs = tuple(log for instance in _dirs(job) for log in _logs(instance))
            if logs:
                yield Stream(TRANSFORM_GROUP, job_stream(job.name), logs)


def _logs(instance: Path) -> list[Path]:
    """The log files of an instance folder's containers."""
    return [d / LOG_FILE for d in _dirs(instance) if (d / LOG_FILE).is_file()]


def _dirs(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def _labels(log: Path) -> dict[str, str]:
    try:
        labels = json.loads((log.parent / LABELS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return labels if isinstance(labels, dict) else {}


def _lines(path: Path) -> Iterable[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n") for line in f]
    except OSError:  # removed meanwhile: no events
        return []


def _mtime_ms(path: Path, *, ctime: bool = False) -> int:
    try:
        info = path.stat()
    except OSError:
        return 0
    return int((min(info.st_ctime, info.st_mtime) if ctime else info.st_mtime) * 1000)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
