"""Reading documents that people write by hand in YAML — status notices (``status.notice``),
activity configurations (``bookings.config``), tariff files (``billing.config``) — so that every
problem is reported at once, as ``FILE:LINE: path: message``, and nothing is loaded until the
whole document is right.

* ``parse_yaml`` builds the document with ``Map`` and ``Seq``: a dict and a list that remember the
  line of each key and item. A key given twice in a block and a date YAML cannot build
  (2024-13-01, left as text for the reader to name) are problems, not silent choices.
* ``Reader`` walks the document and collects ``Problem``s: blocks with their allowed and required
  fields, lists, text, whole numbers, dates, dates and times, lists of names. Each format
  subclasses it with its own value readers.
* ``ProblemsError`` carries every problem in line order; each format has its own subclass.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

PARIS = ZoneInfo("Europe/Paris")
SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")


@dataclass(frozen=True, slots=True)
class Problem:
    source: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ProblemsError(ValueError):
    """A document that cannot be loaded; ``errors`` lists every problem found, in line order."""

    def __init__(self, errors: list[Problem]):
        self.errors = sorted(errors, key=lambda e: (e.line or 0, e.path))
        super().__init__("\n".join(str(e) for e in self.errors))


# --- A YAML loader that remembers where every value was written -----------------------------


class Map(dict):
    """A mapping from the document, with the line of each key (1-based)."""

    line: int = 0
    key_lines: dict


class Seq(list):
    """A list from the document, with the line of each item (1-based)."""

    line: int = 0
    item_lines: list


class _Loader(yaml.SafeLoader):
    pass


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Map:
    loader.flatten_mapping(node)
    out = Map()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):
            loader.problems.append((line, f"{key!r}", "field names must be text"))
            continue
        if key in out:
            loader.problems.append(
                (
                    line,
                    key,
                    f"'{key}' is given twice in the same block (first on line {out.key_lines[key]})",
                )
            )
            continue
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = line
    return out


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> Seq:
    out = Seq(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


def _construct_timestamp(loader: _Loader, node: yaml.ScalarNode) -> Any:
    """A date YAML cannot build (2024-13-01) stays text, so validation names its field and line."""
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)
_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def parse_yaml(text: str, source: str) -> Any:
    """The document built with ``Map`` and ``Seq``; ``ProblemsError`` for what YAML itself refuses."""
    loader = _Loader(text)
    loader.problems = []
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        col = f", column {mark.column + 1}" if mark else ""
        what = " ".join(x for x in (e.context, e.problem) if x)
        raise ProblemsError([Problem(source, line, "", f"not valid YAML{col}: {what}")]) from None
    except yaml.YAMLError as e:
        raise ProblemsError([Problem(source, None, "", f"not valid YAML: {e}")]) from None
    finally:
        loader.dispose()
    if loader.problems:
        raise ProblemsError(
            [Problem(source, line, path, msg) for line, path, msg in loader.problems]
        )
    return data


# --- Walking the document ----------------------------------------------------------------------


def as_date(value: Any) -> dt.date | None:
    """A calendar date as YAML built it, or written YYYY-MM-DD; None for anything else."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


class Reader:
    """Collects every problem of a document; the value readers report and return a fallback."""

    def __init__(self, source: str):
        self.source = source
        self.problems: list[Problem] = []

    def problem(self, line: int | None, path: str, message: str) -> None:
        self.problems.append(Problem(self.source, line, path, message))

    def block(
        self,
        value: Any,
        path: str,
        line: int,
        allowed: tuple[str, ...],
        required: tuple[str, ...] = (),
    ) -> Map | None:
        """A block of fields (``key: value``) with only ``allowed`` keys and every ``required`` one."""
        if not isinstance(value, Map):
            self.problem(line, path, "expected a block of fields (key: value)")
            return None
        for key in value:
            if key not in allowed:
                self.problem(
                    value.key_lines[key],
                    f"{path}.{key}" if path else key,
                    f"unknown field (expected one of: {', '.join(allowed)})",
                )
        for key in required:
            if value.get(key) in (None, ""):
                self.problem(value.line, f"{path}.{key}" if path else key, "required")
        return value

    def items(
        self, parent: Map, key: str, path: str, *, required: bool = False
    ) -> list[tuple[Any, str, int]]:
        """``(item, path, line)`` for each item of the list under ``key`` (none when it is absent)."""
        value = parent.get(key)
        where = f"{path}.{key}" if path else key
        if value is None:
            if required:
                self.problem(parent.line, where, "required")
            return []
        if not isinstance(value, Seq):
            self.problem(parent.key_lines[key], where, "expected a list (items starting with '- ')")
            return []
        return [(item, f"{where}[{i}]", value.item_lines[i]) for i, item in enumerate(value)]

    def line(self, block: Map, key: str) -> int:
        return block.key_lines.get(key, block.line)

    def text(self, block, key, path, *, required=False, max_length=160, slug=False) -> str:
        value = block.get(key)
        if value is None or value == "":
            if required:
                self.problem(block.line, f"{path}.{key}", "required")
            return ""
        if not isinstance(value, str | int) or isinstance(value, bool):
            self.problem(self.line(block, key), f"{path}.{key}", "expected text")
            return ""
        value = str(value).strip()
        if len(value) > max_length:
            self.problem(
                self.line(block, key),
                f"{path}.{key}",
                f"too long ({len(value)} characters, at most {max_length})",
            )
        if slug and not SLUG.match(value):
            self.problem(
                self.line(block, key),
                f"{path}.{key}",
                f"'{value}' is not a valid identifier (letters, digits, '-' and '_' only)",
            )
        return value

    def integer(self, block, key, path, default, *, minimum=0, maximum=100_000) -> int:
        value = block.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            self.problem(
                self.line(block, key),
                f"{path}.{key}",
                f"expected a whole number from {minimum} to {maximum}, not {value!r}",
            )
            return default
        return value

    def date(self, value, line, path) -> dt.date | None:
        day = as_date(value)
        if day is None:
            self.problem(line, path, f"expected a date written YYYY-MM-DD, not {value!r}")
        return day

    def moment(self, value, line, path) -> dt.datetime | None:
        """'2024-06-04T12:30 Europe/Paris', '2024-06-04 12:30' (Paris) or a YAML timestamp."""
        if isinstance(value, dt.datetime):
            return value if value.tzinfo else value.replace(tzinfo=PARIS)
        if isinstance(value, str):
            text = value.strip()
            zone = PARIS
            parts = text.split()
            if len(parts) == 2 and "/" in parts[1]:
                text = parts[0]
                try:
                    zone = ZoneInfo(parts[1])
                except (ZoneInfoNotFoundError, ValueError):
                    self.problem(
                        line,
                        path,
                        f"unknown time zone '{parts[1]}' (write for example Europe/Paris)",
                    )
                    return None
            try:
                moment = dt.datetime.fromisoformat(text.replace(" ", "T"))
            except ValueError:
                moment = None
            if moment is not None:
                return moment if moment.tzinfo else moment.replace(tzinfo=zone)
        self.problem(
            line,
            path,
            f"expected a date and time such as '2024-06-04T12:30 Europe/Paris', not {value!r}",
        )
        return None

    def names(
        self, block, key, path, *, required=True, pattern=SLUG, example="[morning, meal]"
    ) -> list[str]:
        value = block.get(key)
        if value is None:
            if required:
                self.problem(block.line, f"{path}.{key}", "required")
            return []
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, str) and pattern.match(v) for v in value)
        ):
            self.problem(
                self.line(block, key), f"{path}.{key}", f"expected a list of names, e.g. {example}"
            )
            return []
        if len(set(value)) != len(value):
            self.problem(self.line(block, key), f"{path}.{key}", "a name is given twice")
        return [str(v) for v in value]
