"""Output folders that commands and pipelines write: never mixed with another run, checked early.

Every function that writes a folder of results calls ``prepare_output_dir`` before its long work:
a path that is a file, a folder that already holds files (unless the caller resumes or the user
passed ``--overwrite``) and a folder that cannot be written are refused with a ``ValueError`` that
names the argument, so no run ends after an hour with nowhere to write, and no folder ends up
half old, half new.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

__all__ = ["prepare_output_dir"]


def prepare_output_dir(
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    resume: bool = False,
    name: str = "out",
) -> Path:
    """Creates (or checks) an output folder and returns it as a ``Path``.

    Args:
        path: the folder.
        overwrite: an existing non-empty folder is emptied first (the user asked for it).
        resume: an existing folder is kept as it is (the caller continues the run it holds).
        name: the argument's name in error messages (e.g. ``'--out'``).

    Raises:
        ValueError: ``path`` is a file; it holds files and neither ``overwrite`` nor ``resume``
            is set; or it cannot be written.
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{name}: {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not resume:
        if not overwrite:
            raise ValueError(
                f"{name}: {out} already holds files (of another run?); choose a new folder, "
                "or pass --overwrite to replace them"
            )
        for child in out.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ValueError(f"{name}: cannot write to {out} ({err.strerror or err})") from None
    return out
