"""Names read from a repository are data: checked before they become paths, and no symlink is followed.

Anyone who can write to the backup disk or bucket can write a manifest. So every store name, backup
id and file name is checked against a plain-name pattern before it is joined to a path, every path
built from one is proven to stay under its base, and drill's own files inside the repository (locks,
temporary files, verification records) are opened with O_NOFOLLOW and created with O_EXCL, so a
symlink planted there makes drill stop instead of writing through it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from drill.errors import BackupError

# A name that is one path component, never `.`/`..`, never hidden, never a control character.
_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
MAX_NAME = 200


def _check(value: object, what: str, hint: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_NAME or not _PLAIN.fullmatch(value):
        raise BackupError(f"{value!r} is not a valid {what}: {hint} (letters, digits, _ . + - only, not starting "
                          f"with '.', at most {MAX_NAME} characters)")
    return value


def store_name(value: object) -> str:
    return _check(value, "store name", "store names are plain names such as userdb")


def backup_id(value: object) -> str:
    return _check(value, "backup id", "see `drill backups list` for the ids")


def file_name(value: object) -> str:
    return _check(value, "file name in a manifest", "a backup's files are plain names inside its directory")


def inside(base: Path, *parts: str) -> Path:
    """`base/parts...`, proven to stay inside `base` (after resolving what already exists)."""
    path = not_a_symlink(base.joinpath(*parts))
    resolved_base = base.resolve()
    if not path.resolve().is_relative_to(resolved_base):
        raise BackupError(f"{'/'.join(parts)!r} leads outside {base}; refusing to use it")
    return path


def not_a_symlink(path: Path) -> Path:
    if path.is_symlink():
        raise BackupError(f"{path} is a symbolic link; drill follows no link inside the repository. Remove it "
                          f"(someone with write access to the repository may have planted it)")
    return path


def private_dir(path: Path) -> Path:
    """A directory only drill's user can write (made 0700 when missing); refused if it is a symlink."""
    not_a_symlink(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    not_a_symlink(path)
    info = path.lstat()
    if info.st_uid != os.geteuid():
        raise BackupError(f"{path} belongs to uid {info.st_uid}, not to drill's user ({os.geteuid()}); "
                          f"refusing to keep locks or temporary files there")
    if info.st_mode & 0o022:
        os.chmod(path, 0o700)
    return path


def open_nofollow(path: Path, flags: int, mode: int = 0o600) -> int:
    """os.open with O_NOFOLLOW; a symlink in the last component becomes a clear BackupError."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if path.is_symlink():
            not_a_symlink(path)
        raise BackupError(f"cannot open {path}: {exc.strerror}") from None


def read_text(path: Path) -> str:
    """A small file of the repository, read without following a symlink."""
    descriptor = open_nofollow(path, os.O_RDONLY)
    with os.fdopen(descriptor, "r", encoding="utf-8") as handle:
        return handle.read()


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically replace `path` with `data`: a fresh mkstemp file (O_EXCL, 0600), fsync'ed, renamed over it.

    rename() replaces a symlink at `path` itself instead of writing through it.
    """
    descriptor, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True, default=str)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- drill's private temporary folders (decrypted copies, dumps before encryption) ------------------------

def private_temp(prefix: str) -> Path:
    """A new 0700 folder under the system temp folder, owned by this process; what a killed run left under
    the same prefix is swept first (see drill.provision.processes.sweep_stale)."""
    from drill.provision.processes import mark_owned

    sweep_private_temps(prefix)
    path = Path(tempfile.mkdtemp(prefix=prefix))  # mkdtemp makes it 0700
    mark_owned(path)
    return path


def sweep_private_temps(prefix: str) -> list[Path]:
    """Remove `<tmp>/<prefix>*` folders of ours whose drill process is gone (killed with SIGKILL)."""
    from drill.provision.processes import sweep_stale

    return sweep_stale(prefix, "private temporary folder", lambda _folder: None)
