"""Where `make run` leaves its development API key, so that the `waypoint` command finds it.

The launcher (`fleet.py`) writes the key it made for the tenant `dev` to a file named after the
orchestrator's port, in a directory private to the user: `$XDG_RUNTIME_DIR/waypoint/` when the
session has one (a per-user tmpfs), else `<temp dir>/waypoint-<uid>/`. The directory is 0700 and
the file 0600; both are refused when they are not the user's own or others may read them (a
shared temp directory is writable by everybody). The launcher removes the file when it stops.

The `waypoint` command reads it only for an API on this machine's loopback address and only
when no key is given (`--api-key`, `WAYPOINT_API_KEY`).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

RUNTIME_DIR_VARIABLE = "XDG_RUNTIME_DIR"


def key_directory() -> Path:
    runtime = os.environ.get(RUNTIME_DIR_VARIABLE, "")
    if runtime and Path(runtime).is_absolute():
        return Path(runtime) / "waypoint"
    return Path(tempfile.gettempdir()) / f"waypoint-{os.getuid()}"


def key_file(port: int) -> Path:
    """The file holding the development key of the fleet whose orchestrator listens on `port`."""
    return key_directory() / f"api-key-{port}"


def _private(path: Path, *, directory: bool) -> bool:
    """`path` exists, is a directory (or a regular file) and no symlink, is ours, and grants
    nothing to group or others."""
    try:
        info = path.lstat()
    except OSError:
        return False
    kind = stat.S_ISDIR(info.st_mode) if directory else stat.S_ISREG(info.st_mode)
    return kind and info.st_uid == os.getuid() and info.st_mode & 0o077 == 0


def write_key(port: int, key: str) -> Path:
    """Store `key` for the fleet on `port` (replacing an older one); raises `OSError` when the
    directory is not private to this user."""
    folder = key_directory()
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700, parents=False)
    if not _private(folder, directory=True):
        raise OSError(f"{folder} is not a directory private to this user")
    path = key_file(port)
    partial = folder / f".{path.name}.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()  # left by a process that died with this pid
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(key)
    os.replace(partial, path)
    return path


def read_key(port: int) -> str | None:
    """The development key of the fleet on `port`, if one is stored privately."""
    path = key_file(port)
    if not (_private(path.parent, directory=True) and _private(path, directory=False)):
        return None
    try:
        key = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return key or None


def remove_key(port: int, key: str) -> None:
    """Remove the stored key, unless another fleet on the same port has replaced it since."""
    if read_key(port) == key:
        with contextlib.suppress(OSError):
            key_file(port).unlink()
