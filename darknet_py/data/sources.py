"""Where a command's images come from: one image, a folder of images, a list file, or
Darknet's prompt."""
import sys
from pathlib import Path

from ..errors import DarknetError
from ..resources import resolve
from .labels import read_list

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def is_many(filename):
    """Whether ``filename`` names several images (a folder or a .txt list)."""
    return filename is not None and (Path(filename).is_dir() or Path(filename).suffix.lower() == ".txt")


def image_sources(filename):
    """One image, a folder of images, or a list file (.txt), a bundled one by its name where no
    file on disk has it (``sample.png``); None: Darknet's prompt."""
    if filename is None:
        while True:
            print("Enter Image Path: ", end="", flush=True)
            line = sys.stdin.readline()
            if not line:
                return
            if line.strip():
                yield line.strip()
    filename = resolve(filename)
    path = Path(filename)
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise DarknetError("folder holds no images (.jpg, .jpeg, .png, .bmp)", path)
        yield from (str(p) for p in found)
    elif path.suffix.lower() == ".txt":
        yield from read_list(path)
    else:
        yield filename
