"""Darknet's class hierarchy for YOLO9000 (darknet: tree.c:read_tree)."""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DarknetError


@dataclass
class Tree:
    """Parallel arrays over the n nodes and the groups of siblings, as read_tree builds them.

    A group is a run of consecutive lines sharing a parent; ``child[j]`` is the group of
    j's children (-1 for a leaf).
    """
    names: list
    parent: np.ndarray
    child: np.ndarray
    group: np.ndarray
    group_offset: np.ndarray
    group_size: np.ndarray
    leaf: np.ndarray
    path: str

    @property
    def n(self):
        return len(self.names)

    @property
    def groups(self):
        return len(self.group_size)


def read_tree(path):
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise DarknetError(f"cannot read tree file: {err.strerror}", path) from None
    names, parent, child, group = [], [], [], []
    offsets, sizes = [], []
    last_parent, group_size = -1, 0
    for lineno, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        try:
            p = int(fields[1]) if len(fields) > 1 else -1
        except ValueError:
            raise DarknetError(f"parent must be an integer, got '{fields[1]}'", path, lineno) from None
        n = len(names)
        if p >= n:
            raise DarknetError(f"parent {p} comes after node {n}", path, lineno)
        if p != last_parent:                # darknet: a new group starts when the parent changes
            offsets.append(n - group_size)
            sizes.append(group_size)
            group_size = 0
            last_parent = p
        names.append(fields[0])
        parent.append(p)
        child.append(-1)
        group.append(len(sizes))
        if p >= 0:
            child[p] = len(sizes)
        group_size += 1
    if not names:
        raise DarknetError("tree file is empty", path)
    offsets.append(len(names) - group_size)
    sizes.append(group_size)
    parent = np.array(parent)
    leaf = np.ones(len(names), dtype=bool)
    leaf[parent[parent >= 0]] = False
    return Tree(names, parent, np.array(child), np.array(group), np.array(offsets),
                np.array(sizes), leaf, str(path))


def find_tree(name, cfg_dir):
    """Darknet opens ``tree=`` relative to the working directory; a cfg that moved with
    its tree file also finds it beside itself."""
    candidates = [Path(name), Path(cfg_dir) / name, Path(cfg_dir) / Path(name).name]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


def tree_option(section, cfg_dir, nodes):
    """The ``tree=`` option of a [region] or [softmax] section: the Tree, or None. The file
    must exist and hold ``nodes`` entries."""
    name = section.str("tree")
    if not name:
        return None
    found = find_tree(name, cfg_dir)
    if found is None:
        section.fail(f"tree file '{name}' not found (looked in the working directory and beside "
                     "the cfg)", "tree")
    tree = read_tree(found)
    if tree.n != nodes:
        section.fail(f"tree file {found} has {tree.n} classes but the layer has {nodes}", "tree")
    return tree
