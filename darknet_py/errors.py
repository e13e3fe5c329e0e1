"""One error type for every bad input: it names the file and the line or byte offset."""


class DarknetError(Exception):
    """A user-facing error. ``str(err)`` is one line: ``path:line: message``."""

    def __init__(self, message, path=None, line=None, offset=None):
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line
        self.offset = offset
        super().__init__(self.format())

    def format(self):
        where = self.path or ""
        if self.line is not None:
            where += f":{self.line}"
        if self.offset is not None:
            where += f": at byte {self.offset}"
        text = f"{where}: {self.message}" if where else self.message
        return " ".join(text.split("\n"))


def warn(message):
    """Darknet reports recoverable oddities on stderr and carries on."""
    import sys
    print(message, file=sys.stderr)
