"""Files the demo keeps in ``instance/``: readable by their owner only (issue 11: the SQLite
file was world-readable)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def private_dir(path: str | Path) -> Path:
    """``path`` as a directory only its owner can enter (0700)."""
    directory = Path(path)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    return directory


def private_file(path: str | Path) -> Path:
    """Create ``path`` empty with mode 0600 if missing; an existing file is narrowed to 0600.
    Call it before a library (SQLite, kombu) creates the file with the process umask."""
    file = Path(path)
    private_dir(file.parent)
    try:
        os.close(os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        file.chmod(0o600)
    return file


def instance_secret(instance_path: str | Path, name: str) -> str:
    """A random secret kept in ``instance/<name>`` (0600): generated on first use, then shared
    by every process of the same checkout, never a value published in the source."""
    file = private_dir(instance_path) / name
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        file.chmod(0o600)
        value = file.read_text().strip()
        if len(value) >= 32:
            return value
        file.unlink()  # empty or truncated (a crash mid-write): start again
        return instance_secret(instance_path, name)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32))
    return file.read_text().strip()
