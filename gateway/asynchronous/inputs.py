"""Which locations an InvokeEndpointAsync caller may name, by the caller's role.

An ``InputLocation`` is read by the gateway, with the gateway's rights, and what it holds is
sent through the endpoint and written to its output, so naming a location is reading it:

- an ``admin`` caller (or anyone, with authentication off on a loopback address) may name what
  model data may come from (``TANDEM_MODEL_ROOTS``);
- an ``invoke`` caller, which may not read models, may name only the roots meant for clients
  (``TANDEM_INPUT_ROOTS``; none by default), and never where any endpoint writes its
  asynchronous answers, failures or data capture (another tenant's data);
- nobody may name the state folder (``control.db`` holds every model's environment), nor have
  an answer written into it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from gateway.asynchronous.storage import is_s3, local_path
from gateway.control.translate import check_model_data
from gateway.credentials import ADMIN
from gateway.errors import InvalidRequest, ValidationException
from gateway.live import EndpointTable


@dataclass(frozen=True)
class InputPolicy:
    """The roots of each role and the folder nobody reaches."""

    #: What an ``admin`` may name: the model roots.
    admin_roots: tuple[str, ...]
    #: What an ``invoke`` caller may name (``TANDEM_INPUT_ROOTS``).
    client_roots: tuple[str, ...]
    state_dir: Path

    def check(self, location: str, role: str, table: EndpointTable) -> str:
        """``location`` as the workers will read it, or ``InvalidRequest`` saying why not."""
        admin = role == ADMIN
        roots = self.admin_roots if admin else self.client_roots
        if not roots:
            raise InvalidRequest(
                f"InputLocation {location!r}: this key (role {role}) may not name input "
                "locations on this gateway; the operator allows some with TANDEM_INPUT_ROOTS, "
                "or send the input as the request body."
            )
        try:
            checked = check_model_data(
                location, roots, member="InputLocation", forbidden=(str(self.state_dir),)
            )
        except ValidationException as exc:
            text = str(exc).replace("model data", "the input")
            if not admin:
                text = text.replace("model roots", "input roots").replace(
                    "TANDEM_MODEL_ROOTS", "TANDEM_INPUT_ROOTS"
                )
            raise InvalidRequest(text) from None
        if not admin:
            for written in outputs(table):
                if within(checked, written):
                    raise InvalidRequest(
                        f"InputLocation {location!r} lies where an endpoint writes its "
                        "asynchronous answers or data capture; a key of role invoke may not "
                        "read them."
                    )
        return checked

    def check_output(self, location: str) -> None:
        """An answer or failure location must not fall into the state folder.

        Its folder is what is checked (the name is one file name, no ``/``; an answer replaces
        whatever link has that name rather than write through it), resolved once per folder:
        a folder that becomes a link into the state folder later is a change only someone with
        the gateway's own file rights can make.
        """
        if is_s3(location):
            return
        # Keyed by the text before the name (one per output folder), not built per request.
        head, slash, _ = location.rpartition("/")
        if _in_state(head + slash, self.state_dir):
            raise InvalidRequest(
                f"The output location {location!r} lies in the gateway's state folder; check "
                "S3OutputPathExtension and Filename."
            )


@functools.lru_cache(maxsize=1024)
def _in_state(folder: str, state_dir: Path) -> bool:
    """Whether the folder ``folder`` (a location's text up to its name) is in ``state_dir``."""
    resolved = _folder(str(Path.cwd() / local_path(folder + "x").expanduser().parent))
    return resolved == state_dir or resolved.is_relative_to(state_dir)


def outputs(table: EndpointTable) -> list[str]:
    """Where every serving endpoint writes answers, failures and captured data."""
    found: list[str] = []
    for live in table.live():
        spec = live.spec
        if spec.async_inference is not None:
            config = spec.async_inference
            found += [spec.resolve(p) for p in (config.output_path, config.failure_path) if p]
        if spec.data_capture is not None and spec.data_capture.destination:
            found.append(spec.resolve(spec.data_capture.destination))
    return found


def within(location: str, base: str) -> bool:
    """``location`` is ``base`` or under it (S3 keys by prefix, local paths resolved)."""
    if is_s3(location) or is_s3(base):
        if not (is_s3(location) and is_s3(base)):
            return False
        prefix = base.rstrip("/")
        return location == prefix or location.startswith(prefix + "/")
    here, there = _resolved(location), _resolved(base)
    return here == there or here.is_relative_to(there)


@functools.lru_cache(maxsize=1024)
def _folder(path: str) -> Path:
    return Path(path).resolve()


def _resolved(location: str) -> Path:
    return (Path.cwd() / local_path(location).expanduser()).resolve()


def parse_roots(value: str | None) -> tuple[str, ...]:
    """``TANDEM_INPUT_ROOTS``: a comma list of folders and URL prefixes; unset: none."""
    return tuple(r.strip() for r in (value or "").split(",") if r.strip())
