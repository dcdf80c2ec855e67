"""Files only the agent's own user may read: mode 0600, in folders of mode 0700.

Modes are given when a file or folder is created (never created open and closed afterwards), so
there is no moment in which another user could open it; the process umask can only narrow them.

Which existing things are changed: a file the agent keeps (its buffer, its key, its trust list)
is the agent's own, and one left more open by an earlier version is narrowed to 0600. A folder is
narrowed only when the agent made it: either now (it is created 0700), or because its name is part
of the agent's own layout (`<pki_path>/own`, `<pki_path>/trusted`: `ours=True`). A folder someone
named in the configuration or made by hand (the buffer's folder, `pki_path` itself, /var/lib, the
working directory) may be shared with other software and is never changed; under systemd the unit's
`StateDirectoryMode=0700` closes /var/lib/edge-agent.

Run as root (e.g. `edge-agent opcua trust` by an administrator), what is created inside a folder
of another user takes that folder's owner, so the agent's own user can still read it.
"""

from __future__ import annotations

__all__ = ["private_dir", "private_file", "restrict", "write_private"]

import contextlib
import os
import stat
import tempfile
from pathlib import Path

_FILE_MODE = 0o600
_DIR_MODE = 0o700


def private_dir(path: Path, *, ours: bool = False) -> Path:
    """`path` as a folder; each missing level is created 0700.

    An existing folder is left as it is, unless `ours`: a folder of the agent's own layout, which
    is narrowed to 0700 (see the module's rule).
    """
    missing: list[Path] = []
    level = path
    while not level.exists():
        missing.append(level)
        if level.parent == level:
            break
        level = level.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, _DIR_MODE)
        except FileExistsError:  # made by someone else meanwhile: not ours to change
            continue
        _adopt_parent_owner(folder)
    if not path.is_dir():
        raise NotADirectoryError(f"{path} is not a folder")
    if ours and not missing:
        _narrow(path, _DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """`path` created empty with mode 0600 when missing (for a library that opens it afterwards,
    such as SQLite); an existing one is the agent's own and is narrowed to 0600."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _FILE_MODE)
    except FileExistsError:
        restrict(path)
        return path
    os.close(fd)
    _adopt_parent_owner(path)
    return path


def restrict(path: Path | str) -> None:
    """Narrow an existing file of the agent's own to 0600 (run as root: one root made takes its
    folder's owner, see above); a missing one is fine."""
    with contextlib.suppress(FileNotFoundError):
        _narrow(Path(path), _FILE_MODE)
        _adopt_parent_owner(Path(path))


def write_private(path: Path, data: bytes) -> Path:
    """Replace `path` with `data` at once: a temporary 0600 file in the same folder, flushed to
    disk, then renamed over it. A reader sees the old content or the new, never a part."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:  # mkstemp creates it 0600
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        _adopt_parent_owner(Path(temp))
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    _sync_folder(path.parent)
    return path


def _narrow(path: Path, mode: int) -> None:
    st = os.stat(path)
    if stat.S_ISDIR(st.st_mode) != (mode == _DIR_MODE):
        return  # a folder where a file belongs (or the reverse): the caller's open will say so
    if stat.S_IMODE(st.st_mode) & ~mode:
        with contextlib.suppress(PermissionError):  # another user's file: not the agent's to change
            os.chmod(path, stat.S_IMODE(st.st_mode) & mode)


def _adopt_parent_owner(path: Path) -> None:
    """As root: a file or folder root made in a folder of another user becomes that user's."""
    if os.geteuid() != 0:
        return
    parent = os.stat(path.parent)
    if parent.st_uid != 0 and os.stat(path).st_uid == 0:
        os.chown(path, parent.st_uid, parent.st_gid)


def _sync_folder(folder: Path) -> None:
    # The rename itself survives a power cut only once the folder is on disk.
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
