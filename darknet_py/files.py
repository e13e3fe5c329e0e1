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
    atomic_write_all({path: write})


def atomic_write_all(writers):
    """atomic_write for several files ({path: write}) that belong together (detector valid's
    per-class results): every temporary file is written before any is renamed into place, so
    a failure leaves the earlier set whole."""
    temporaries = []
    try:
        for path, write in writers.items():
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                mode = stat.S_IMODE(path.stat().st_mode)
            except OSError:
                mode = 0o666 & ~_umask()
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            temporaries.append((tmp, path))
            with os.fdopen(fd, "wb") as f:
                write(f)
            os.chmod(tmp, mode)
    except BaseException:
        for tmp, _ in temporaries:
            os.unlink(tmp)
        raise
    for tmp, path in temporaries:
        os.replace(tmp, path)


def check_writable(path):
    """Fail now, not after the work, if ``path`` could not be written: its nearest existing
    folder must be writable (a folder that does not exist yet is made by atomic_write)."""
    folder = Path(path).absolute().parent
    while not folder.exists():
        folder = folder.parent
    try:            # a file made and removed: root passes os.access where it still cannot write
        fd, probe = tempfile.mkstemp(prefix=".darknet_py-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise DarknetError(f"cannot write in folder {folder}: {err.strerror}", path) from None
