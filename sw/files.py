"""Writing files so that a failed run never leaves a half-written one behind, and checking
where they go before the work that fills them starts."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from .errors import FirstSpikeError

__all__ = ["OutputPathError", "write_atomically", "check_output_path", "check_output_folder", "save_png"]


class OutputPathError(FirstSpikeError):
    """An output path that cannot be written: named with the reason, before any work."""


def _nearest_existing(path: Path) -> Path:
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def check_output_path(path: str | os.PathLike, option: str, suffixes: Iterable[str] = ()) -> Path:
    """Fail now, naming ``option`` and the path, if a file cannot be written at ``path``.

    The folders that do not exist yet are created when the file is written; the nearest
    one that does must be a folder that takes a new file (probed with a real one).
    ``suffixes`` (e.g. ``(".png",)``) restricts the file's extension.
    """
    target = Path(path)
    allowed = tuple(suffixes)
    if allowed and target.suffix.lower() not in allowed:
        raise OutputPathError(f"{option} {path}: must end in {' or '.join(allowed)}")
    if target.is_dir():
        raise OutputPathError(f"{option} {path}: is a folder; give a file name")
    folder = _nearest_existing(target)
    if not folder.is_dir():
        raise OutputPathError(f"{option} {path}: {folder} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise OutputPathError(f"{option} {path}: cannot write in {folder} ({error.strerror or error})") from None
    return target


def check_output_folder(path: str | os.PathLike, option: str) -> Path:
    """Fail now, naming ``option``, if ``path`` cannot be (or become) a folder to write files in."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(f"{option} {path}: is a file, not a folder")
    check_output_path(folder / ".firstspike-probe", option)
    return folder


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it into place.

    Nothing is left behind when it fails; an ``OSError`` (a full disk, a read-only
    folder) becomes one :class:`OutputPathError` naming ``path``, not the temporary file.
    """
    target = Path(path)
    if target.is_dir():
        raise OutputPathError(f"{path}: is a folder; give a file name")
    temporary: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, target)
        temporary = None
    except OSError as error:
        raise OutputPathError(f"{path}: could not write it ({error.strerror or error})") from None
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)


def save_png(figure, path: str | os.PathLike, dpi: int = 110) -> None:
    """Write a Matplotlib figure to exactly ``path`` as PNG (no suffix added), atomically."""
    write_atomically(path, lambda handle: figure.savefig(handle, format="png", dpi=dpi))
