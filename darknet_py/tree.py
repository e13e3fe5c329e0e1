"""Darknet's class hierarchy for YOLO9000 (darknet: tree.c:read_tree) and the map from a
dataset's class ids to its nodes (darknet: utils.c:read_map)."""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DarknetError

F = np.float32


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

    def ancestry(self, node):
        """``node`` and its ancestors up to the root (darknet's parent walks)."""
        nodes = []
        while node >= 0:
            nodes.append(int(node))
            node = self.parent[node]
        return nodes


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


def find_side_file(name, cfg_dir):
    """Darknet opens ``tree=`` and ``map=`` relative to the working directory; a cfg that
    moved with its side files also finds them beside itself."""
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
    found = find_side_file(name, cfg_dir)
    if found is None:
        section.fail(f"tree file '{name}' not found (looked in the working directory and beside "
                     "the cfg)", "tree")
    tree = read_tree(found)
    if tree.n != nodes:
        section.fail(f"tree file {found} has {tree.n} classes but the layer has {nodes}", "tree")
    return tree


def read_map(path, nodes):
    """darknet read_map: line i holds the node of class id i. Every line must be an
    integer naming one of the ``nodes`` classes of the layer it feeds."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DarknetError(f"cannot read map file: {err}", path) from None
    values = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = int(line.split()[0])
        except ValueError:
            raise DarknetError(f"map line must be an integer, got '{line.strip()}'", path, lineno) from None
        if not 0 <= value < nodes:
            raise DarknetError(f"class {value} is outside the {nodes} classes of the layer", path, lineno)
        values.append(value)
    if not values:
        raise DarknetError("map file is empty", path)
    return np.array(values)


def map_option(section, cfg_dir, nodes):
    """The ``map=`` option of a [region] section, resolved like ``tree=``: (the map, its
    path), or (None, None)."""
    name = section.str("map")
    if not name:
        return None, None
    found = find_side_file(name, cfg_dir)
    if found is None:
        section.fail(f"map file '{name}' not found (looked in the working directory and beside "
                     "the cfg)", "map")
    return read_map(found, nodes), found


def hierarchy_predictions(p, tree):
    """darknet hierarchy_predictions: p[j] *= p[parent[j]] for j ascending (absolute
    probabilities). ``p`` is [N, classes]; changed in place."""
    for j in np.flatnonzero(tree.parent >= 0):
        p[:, j] *= p[:, tree.parent[j]]


def hierarchy_top_prediction(p, tree, thresh):
    """darknet hierarchy_top_prediction: walk down from group 0 while the running product stays above thresh."""
    prob, group = F(1), 0
    while True:
        offset, size = tree.group_offset[group], tree.group_size[group]
        values = p[offset:offset + size]
        best = int(np.argmax(values))           # the first maximum, like darknet's strict >
        max_i, max_value = (offset + best, values[best]) if values[best] > 0 else (0, F(0))
        if prob * max_value > F(thresh):
            prob = prob * max_value
            group = tree.child[max_i]
            if group < 0:
                return max_i
        elif group == 0:
            return max_i
        else:
            return tree.parent[tree.group_offset[group]]


SECRET_NUM = -1234      # darknet.h: a truth entry the masked losses leave alone


def fill_hierarchy(truth, tree):
    """darknet data.c:fill_hierarchy on one image's class truth [classes]: every labelled
    node's ancestors are marked 1 too, and a group with no marked member is set to
    SECRET_NUM, which the tree softmax's loss and ``[cost] type=masked`` skip."""
    for j in np.flatnonzero(truth):
        truth[tree.ancestry(j)[1:]] = 1          # its ancestors
    for offset, size in zip(tree.group_offset, tree.group_size):
        if not truth[offset:offset + size].any():
            truth[offset:offset + size] = SECRET_NUM
    return truth
