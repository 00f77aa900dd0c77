"""Safe file writes: a crash or a kill never leaves a half-written file under the final name
(:func:`atomic_path`), and an output never replaces an input or, unless asked, an existing
file (:func:`check_new_output`)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    The temporary file lives in the same folder (so the rename is atomic on POSIX and
    Windows), keeps the suffix of ``path`` (some writers choose the format by suffix) and is
    removed if the block raises.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
        >>> with atomic_path(target) as tmp:
        ...     _ = tmp.write_text("done")
        >>> target.read_text()
        'done'
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(
        dir=final.parent, prefix=f".{final.name}.", suffix=f".tmp{final.suffix}"
    )
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        # mkstemp creates the file for its owner only; give the result the permissions any
        # new file gets here (the umask's), as a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, final)
    except OSError as error:
        if error.filename is None or Path(error.filename) == tmp:
            # A full disk is met while writing the temporary file; name the file the user
            # asked for (the earlier version of it, if any, is still intact).
            error.filename = str(final)
        raise
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` and move ``tmp`` onto ``path`` once it succeeded."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


def check_new_output(
    path: str | os.PathLike[str],
    *,
    overwrite: bool,
    inputs: Iterable[str | os.PathLike[str]] = (),
    flag: str = "-o",
) -> Path:
    """Refuse an output path before any work starts: never an input, never an existing file
    unless ``overwrite``, never a folder, never below a file.

    Args:
        path: the file a command will write.
        overwrite: the user allowed replacing an existing file (``--overwrite``).
        inputs: files or folders the command reads; an output may never be one of those
            files, nor lie inside one of those folders' files (it may lie in an input folder).
        flag: the option that named ``path``, for the message.

    Raises:
        ConfigError: naming ``flag``, the path and the fix.
    """
    from amsnet.errors import ConfigError

    target = Path(path)
    resolved = target.resolve()
    for source in inputs:
        if Path(source).resolve() == resolved:
            raise ConfigError(f"{flag} {target} is one of the inputs; choose another file")
    if target.is_dir():
        raise ConfigError(f"{flag} {target} is a folder; give a file name")
    _check_writable(target.parent, target, flag)
    if target.exists() and not overwrite:
        raise ConfigError(f"{flag} {target} exists; choose another name or pass --overwrite")
    return target


def check_output_folder(
    folder: str | os.PathLike[str],
    names: Iterable[str],
    *,
    overwrite: bool,
    inputs: Iterable[str | os.PathLike[str]] = (),
    flag: str = "-o",
) -> Path:
    """Refuse a results folder before any work starts: it may exist, but none of the files a
    command writes there (``names``, relative to it) may exist unless ``overwrite``, and none
    may be an input.

    Raises:
        ConfigError: ``folder`` is a file, lies below a file, or holds one of ``names``
            (listed in the message).
    """
    from amsnet.errors import ConfigError

    target = Path(folder)
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{flag} {target} is a file; give a folder")
    _check_writable(target, target, flag)
    sources = {Path(source).resolve() for source in inputs}
    clashes = [name for name in names if (target / name).resolve() in sources]
    if clashes:
        raise ConfigError(
            f"{flag} {target} would replace the inputs {', '.join(clashes)}; choose another folder"
        )
    existing = [name for name in names if (target / name).exists()]
    if existing and not overwrite:
        shown = ", ".join(existing[:5]) + (f" and {len(existing) - 5} more" if existing[5:] else "")
        raise ConfigError(
            f"{flag} {target} already holds {shown}; choose another folder or pass --overwrite"
        )
    return target


def _check_writable(folder: Path, target: Path, flag: str) -> None:
    """The nearest existing path at or above ``folder`` (where ``target`` will be created)
    must be a writable folder."""
    from amsnet.errors import ConfigError

    parent = folder
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{flag} {target}: {parent} is a file, not a folder; choose another path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{flag} {target}: the folder {parent} is not writable; choose another path"
        )
