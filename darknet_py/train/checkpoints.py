"""Where a training run writes its weights (backup/NAME.backup, NAME_N.weights, NAME_final...),
checked before the first iteration, and never over a file that holds a later state."""
import sys
from pathlib import Path

from ..errors import DarknetError
from ..files import check_writable
from ..weights import seen_in


class Checkpoints:
    """The weights files of one run of ``net`` in folder ``backup``, named after ``base``;
    ``write`` False on the processes that do not write (distributed ranks above 0)."""

    def __init__(self, net, backup, base, out=print, write=True):
        self.net, self.backup, self.base, self.out, self.write = net, Path(backup), base, out, write

    def path(self, suffix):
        return self.backup / f"{self.base}{suffix}"

    def check(self, limit, cfgfile, chart=None):
        """Before anything is written: the run must have batches to train, and its folders must
        be writable; a backup ahead of this run is named (it is kept until the run passes it)."""
        if self.net.batch_num >= limit:
            raise DarknetError(f"max_batches {limit} is not past the weights' batch {self.net.batch_num} (seen "
                               f"{self.net.seen}): nothing to train (raise -max_batches, or -clear to start over)",
                               cfgfile)
        if not self.write:
            return
        for path in (self.path(".backup"), chart):
            if path:
                check_writable(path)
        newer = seen_in(self.path(".backup"))
        if newer is not None and newer > self.net.seen:
            self.out(f"Note: {self.path('.backup')} holds seen {newer}, ahead of this run (seen "
                     f"{self.net.seen}): it is kept until this run passes it")

    def save(self, suffix):
        """Write the weights to backup/BASE+suffix unless that file holds a later state (more
        images seen): nothing overwrites newer work with older. Returns whether it wrote."""
        if not self.write:
            return False
        path = self.path(suffix)
        held = seen_in(path)
        if held is not None and held > self.net.seen:
            self.out(f"Kept {path}: it holds seen {held}, newer than this run's {self.net.seen}")
            return False
        print(f"Saving weights to {path}", file=sys.stderr)      # darknet save_weights_upto
        self.net.save_weights(path)
        return True
