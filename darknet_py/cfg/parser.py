"""Read Darknet .cfg files into sections, keeping Darknet's semantics.

Darknet (``parser.c:read_cfg``, ``option_list.c``) strips every whitespace
character from an option line, takes the first of repeated keys and warns about
keys no layer read. Sections repeat, so a dict-of-sections reader such as
configparser cannot hold a network.
"""
from dataclasses import dataclass, field
from pathlib import Path

from lark import Lark, Tree, UnexpectedInput, UnexpectedToken

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

    def line_of(self, key=None):
        """The line of ``key``'s option, or of the section header."""
        return self.options[key][1] if key in self.options else self.line

    def fail(self, message, key=None):
        """Raise a DarknetError pointing at ``key``'s line (or the section header)."""
        raise DarknetError(f"[{self.kind}] {message}", self.path, self.line_of(key))

    def warn_unused(self):
        # darknet: option_unused prints "Unused field: 'key = value'"
        for key, (value, _) in self.options.items():
            if key not in self.used:
                warn(f"Unused field: '{key} = {value}'")


def _parse(text, path):
    """Run the grammar; yield ('header', kind, line) and ('option', key, value, line)."""
    if not text.endswith("\n"):
        text += "\n"
    try:
        tree = _GRAMMAR.parse(text)
    except UnexpectedInput as err:
        lines = text.splitlines()
        line = lines[err.line - 1].strip() if 0 < err.line <= len(lines) else ""
        if line.startswith("[") and not line.endswith("]"):
            reason = f"section header without ']': '{line}'"
        elif isinstance(err, UnexpectedToken) and err.token.type == "_NL" and "=" not in line:
            reason = f"option without '=value': '{line}'"
        elif isinstance(err, UnexpectedToken) and err.token.type == "_NL":
            reason = f"option without a value: '{line}'"
        else:
            reason = f"cannot parse '{line}'"
        raise DarknetError(reason, path, err.line) from None
    for item in tree.children:
        assert isinstance(item, Tree)        # the grammar's statements are rules, not tokens
        if item.data == "header":
            assert isinstance(item.children[0], str)
            yield "header", "".join(item.children[0].split()), item.meta.line
            continue
        key = str(item.children[0])
        if len(item.children) < 2:
            raise DarknetError(f"option '{key}' has no value", path, item.meta.line)
        # darknet: strip() removes every whitespace character, inner ones too
        yield "option", key, "".join(str(item.children[1]).split()), item.meta.line


def parse_cfg_text(text, path="<cfg>"):
    """Parse cfg text into a list of Sections. Errors name ``path`` and the line."""
    sections = []
    for kind, *rest in _parse(text, path):
        if kind == "header":
            sections.append(Section(rest[0], rest[1], str(path)))
            continue
        key, value, line = rest
        if not sections:
            raise DarknetError(f"option '{key}' appears before any [section]", path, line)
        sections[-1].options.setdefault(key, (value, line))
    if not sections:
        raise DarknetError("no [net] section: the file holds no sections", path, 1)
    return sections


def parse_options_text(text, path="<data>"):
    """A sectionless key=value file (darknet read_data_cfg, e.g. voc.data) as one Section."""
    options = Section("data", 1, str(path))
    for kind, *rest in _parse(text, path):
        if kind == "header":
            raise DarknetError(f"unexpected section [{rest[0]}] in an options file", path, rest[1])
        key, value, line = rest
        options.options.setdefault(key, (value, line))
    return options


def _read_text(path):
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DarknetError(f"cannot read file: {err.strerror}", path) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DarknetError("not a text file (invalid UTF-8)", path, offset=err.start) from None


def read_options(path):
    """Read a .data file."""
    return parse_options_text(_read_text(path), path)


def read_cfg(path):
    """Read and parse a cfg file."""
    return parse_cfg_text(_read_text(path), path)


def head_classes(path):
    """The classes of a cfg's detection head (its last [region] or [yolo] section; 20 where
    the option is absent, Darknet's default), or None for a network without one."""
    classes = None
    for section in read_cfg(path):
        if section.kind in ("region", "yolo"):
            classes = section.int("classes", 20)
    return classes

