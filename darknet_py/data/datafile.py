"""Darknet's .data files (classes, train, valid, names, backup) and .names lists."""
from pathlib import Path

from ..cfg import read_options
from ..errors import DarknetError
from ..resources import resolve as resolve_bundled


def resolve(name, base_dir):
    """Darknet opens paths from the working directory; darknet_py also tries beside the
    .data file and from its parent (Darknet's tree: cfg/voc.data names data/voc.names)."""
    base = Path(base_dir)
    for candidate in (Path(name), base / name, base / Path(name).name, base.parent / name):
        if candidate.exists():
            return candidate
    return None


class DataConfig:
    """A parsed .data file; file options resolve to paths, and a missing file is an error
    naming the .data file and the line."""

    def __init__(self, path):
        self.path = Path(resolve_bundled(path))
        self.options = read_options(self.path)

    def get(self, key, default=None):
        return self.options.str(key, default)

    def int(self, key, default=None):
        return self.options.int(key, default)

    def file(self, key, default=None):
        name = self.options.str(key, default)
        if name is None:
            raise DarknetError(f"no '{key}=' line", self.path)
        found = resolve(name, self.path.parent)
        if found is None:
            line = self.options.options.get(key, (None, None))[1]
            raise DarknetError(f"{key} file '{name}' not found", self.path, line)
        return found

    def names(self, classes=None):
        """The class names: darknet get_labels(option 'names', default data/names.list). With
        ``classes`` (the network's), fewer names than that is an error naming the file."""
        path = self.file("names", "data/names.list")
        names = read_names(path)
        if classes is not None and len(names) < classes:
            raise DarknetError(f"names file lists {len(names)} names for the network's {classes} classes", path)
        return names


def read_names(path):
    try:
        return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise DarknetError(f"cannot read names file: {err}", path) from None
