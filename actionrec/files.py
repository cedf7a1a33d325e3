"""Files written whole or not at all: a temporary name in the same folder, renamed into place.

Every file the toolkit writes for later reading (checkpoints, logs, prepared lists) goes through
``atomic_write``, so a process killed at any instant leaves either the old file or the new one,
never a half; what an interrupted write leaves is named ``TEMPORARY`` and never read. New files
get the process's umask, as ``open()`` would give them.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from .errors import ActionrecError

TEMPORARY = ".{name}.tmp{pid}"  # an interrupted write leaves these behind


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it; set back at once, at import
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give a new file


def atomic_write(path: str | os.PathLike, data: bytes, *,
                 error: type[ActionrecError] = ActionrecError) -> None:
    """Write ``data`` to a temporary file and rename it onto ``path`` (same folder, so atomic).
    Serialised before, written with Python's I/O: any OS error (a full disk, an unwritable or
    missing folder, a folder in the file's place) is a one-line ``error`` naming ``path``
    (PyTorch's own writer reports a full disk as a RuntimeError from its stream writer)."""
    path = Path(path)
    tmp = path.with_name(TEMPORARY.format(name=path.name, pid=os.getpid()))
    try:
        tmp.write_bytes(data)
        os.chmod(tmp, FILE_MODE)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise error(f"no space left on device while writing {path}") from None
        if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise error(f"cannot write {path}: {e.strerror}") from None
        raise error(f"{path}: cannot be written: {e.strerror or e}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def make_folder(path: str | os.PathLike, *, error: type[ActionrecError] = ActionrecError) -> None:
    """``path`` and its parents made where missing; an OS error (a file in the way, no permission)
    is a one-line ``error`` naming it."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise error(f"{path}: cannot make the output folder: {e.strerror or e}") from None
