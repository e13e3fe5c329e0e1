"""Writing output files safely: whole or not at all, with the permissions a user expects."""
import os
import stat
import tempfile
from pathlib import Path

from .errors import DarknetError


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path, write):
    """Call ``write(f)`` on a temporary file in the same folder, then rename it over ``path``:
    never a half-written file. The file gets an existing file's mode, else 0666 less the
    umask, as ``open`` would give it (a temporary file is created 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def check_writable(path):
    """Fail now, not after the work, if ``path`` could not be written: its nearest existing
    folder must be writable (a folder that does not exist yet is made by atomic_write)."""
    folder = Path(path).absolute().parent
    while not folder.exists():
        folder = folder.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DarknetError(f"cannot write here: folder {folder} is not writable", path)
