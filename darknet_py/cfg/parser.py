"""Read Darknet .cfg files into sections, keeping Darknet's semantics.

Darknet (``parser.c:read_cfg``, ``option_list.c``) strips every whitespace
character from an option line, takes the first of repeated keys and warns about
keys no layer read. Sections repeat, so a dict-of-sections reader such as
configparser cannot hold a network.
"""
from dataclasses import dataclass, field
from pathlib import Path

from lark import Lark, UnexpectedInput, UnexpectedToken

from ..errors import DarknetError, warn

_GRAMMAR = Lark((Path(__file__).with_name("darknet_cfg.lark")).read_text(),
                parser="lalr", propagate_positions=True)


@dataclass
class Section:
    """One ``[type]`` block: its options in file order, first occurrence wins."""
    kind: str
    line: int
    path: str
    options: dict = field(default_factory=dict)   # key -> (value, line)
    used: set = field(default_factory=set)

    def _raw(self, key):
        self.used.add(key)
        return self.options.get(key)

    def has(self, key):
        return key in self.options

    def str(self, key, default=None):
        found = self._raw(key)
        return default if found is None else found[0]

    def _number(self, key, default, kind, cast):
        found = self._raw(key)
        if found is None:
            return default
        value, line = found
        try:
            return cast(value)
        except ValueError:
            raise DarknetError(f"[{self.kind}] option '{key}' must be {kind}, got '{value}'",
                               self.path, line) from None

    def int(self, key, default=None):
        return self._number(key, default, "an integer", int)

    def float(self, key, default=None):
        return self._number(key, default, "a number", float)

    def _list(self, key, kind, cast):
        found = self._raw(key)
        if found is None:
            return None
        value, line = found
        try:
            return [cast(v) for v in value.split(",") if v != ""]
        except ValueError:
            raise DarknetError(f"[{self.kind}] option '{key}' must be a list of {kind}, got '{value}'",
                               self.path, line) from None

    def ints(self, key):
        return self._list(key, "integers", int)

    def floats(self, key):
        return self._list(key, "numbers", float)

    def fail(self, message, key=None):
        """Raise a DarknetError pointing at ``key``'s line (or the section header)."""
        line = self.options[key][1] if key in self.options else self.line
        raise DarknetError(f"[{self.kind}] {message}", self.path, line)

    def warn_unused(self):
        # darknet: option_unused prints "Unused field: 'key = value'"
        for key, (value, _) in self.options.items():
            if key not in self.used:
                warn(f"Unused field: '{key} = {value}'")


def parse_cfg_text(text, path="<cfg>"):
    """Parse cfg text into a list of Sections. Errors name ``path`` and the line."""
    if not text.endswith("\n"):
        text += "\n"
    try:
        tree = _GRAMMAR.parse(text)
    except UnexpectedInput as err:
        line = text.splitlines()[err.line - 1].strip() if 0 < err.line <= len(text.splitlines()) else ""
        if line.startswith("[") and not line.endswith("]"):
            reason = f"section header without ']': '{line}'"
        elif isinstance(err, UnexpectedToken) and err.token.type == "_NL" and "=" not in line:
            reason = f"option without '=value': '{line}'"
        elif isinstance(err, UnexpectedToken) and err.token.type == "_NL":
            reason = f"option without a value: '{line}'"
        else:
            reason = f"cannot parse '{line}'"
        raise DarknetError(reason, path, err.line) from None
    sections = []
    for item in tree.children:
        if item.data == "header":
            kind = "".join(item.children[0].split())
            sections.append(Section(kind, item.meta.line, str(path)))
            continue
        key = str(item.children[0])
        line = item.meta.line
        if len(item.children) < 2:
            raise DarknetError(f"option '{key}' has no value", path, line)
        if not sections:
            raise DarknetError(f"option '{key}' appears before any [section]", path, line)
        # darknet: strip() removes every whitespace character, inner ones too
        value = "".join(str(item.children[1]).split())
        sections[-1].options.setdefault(key, (value, line))
    if not sections:
        raise DarknetError("no [net] section: the file holds no sections", path, 1)
    return sections


def read_cfg(path):
    """Read and parse a cfg file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DarknetError(f"cannot read cfg file: {err.strerror}", path) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DarknetError("cfg file is not text (invalid UTF-8)", path, offset=err.start) from None
    return parse_cfg_text(text, path)
