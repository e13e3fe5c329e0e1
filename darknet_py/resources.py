"""The files darknet_py ships (cfgs, .data and .names files, the sample image, the shapes
model), found through importlib.resources wherever the package is installed: in a clone they
are the repository's cfg/, data/ and weights/; in a wheel they travel inside the package."""
from importlib import resources
from pathlib import Path

FOLDERS = ("cfg", "data", "weights")


def bundled_root():
    """The folder holding cfg/, data/ and weights/ as installed."""
    return Path(str(resources.files("darknet_py") / "bundled"))


def resolve(name):
    """``name`` itself when it is a file on disk (a file on disk always wins), else the bundled
    file it names: the same relative path under the bundle (``cfg/shapes.data``), or the
    same file name in its cfg/, data/ or weights/ (``yolov2-tiny-shapes.weights``). Anything
    else is returned unchanged, for the caller's own error."""
    if name is None or Path(name).exists():
        return name
    root = bundled_root()
    for candidate in [root / name] + [root / folder / Path(name).name for folder in FOLDERS]:
        if candidate.is_file():
            return str(candidate)
    return name


def bundled_models():
    """(cfg path, its classes or None, its shipped weights or None) for every bundled cfg."""
    from .cfg import head_classes
    root = bundled_root()
    models = []
    for cfg in sorted((root / "cfg").glob("*.cfg")):
        weights = root / "weights" / f"{cfg.stem}.weights"
        models.append((cfg, head_classes(cfg), weights if weights.is_file() else None))
    return models
