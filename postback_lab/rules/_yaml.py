"""YAML as the rules file needs it: the 1.2 core scalars (no ``off`` booleans, no octal or
sexagesimal numbers), numbers that remember how they were written (ids keep leading
zeros), and keys written twice reported instead of silently overwritten."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

from .._errors import RuleValidationError


class YamlInt(int):
    """An integer from YAML that remembers how it was written (``007``, ``0x1F``), so ids
    are read as written."""

    text: str


class YamlFloat(float):
    """A float from YAML that remembers how it was written (``1.50``)."""

    text: str


def as_written(value: object) -> str:
    """A YAML scalar as the user wrote it (numbers keep leading zeros)."""
    return getattr(value, "text", None) or str(value)


#: libyaml's parser where PyYAML was built with it (about 5x faster to load a rules
#: file: it is read on every command), else PyYAML's own; both keep line marks
_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc]
    """YAML 1.2 core scalars: only true/false are booleans (``name: off`` stays text),
    numbers are decimal, 0o or 0x (no sexagesimal ``12:30`` or octal ``017``), and every
    number keeps its text. A key written twice in one mapping is recorded."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        #: keys written twice, by id() of their mapping: (key, first line, second line)
        self.duplicates: dict[int, list[tuple[str, int, int]]] = {}

    def construct_yaml_map(self, node: yaml.MappingNode) -> Any:
        data: dict[Any, Any] = {}
        yield data
        data.update(self.construct_mapping(node))
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                self.duplicates.setdefault(id(data), []).append((str(key), seen[key], line))
            else:
                seen[key] = line


_TAGS = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag not in _TAGS]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _int(loader: _Loader, node: yaml.ScalarNode) -> YamlInt:
    text = str(loader.construct_scalar(node))
    low = text.lower()
    value = (
        int(low, 16)
        if low.startswith("0x")
        else int(low[2:], 8)
        if low.startswith("0o")
        else int(low)
    )
    out = YamlInt(value)
    out.text = text
    return out


def _float(loader: _Loader, node: yaml.ScalarNode) -> YamlFloat:
    text = str(loader.construct_scalar(node))
    out = YamlFloat(float(text.replace(".inf", "inf").replace(".nan", "nan").lower()))
    out.text = text
    return out


_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_yaml_map)
_Loader.add_constructor("tag:yaml.org,2002:int", _int)
_Loader.add_constructor("tag:yaml.org,2002:float", _float)


def load_yaml(text: str, label: str) -> tuple[Any, dict[int, list[tuple[str, int, int]]]]:
    """The document in ``text`` and its repeated keys (by id() of their mapping)."""
    loader = _Loader(text)
    try:
        return loader.get_single_data(), loader.duplicates
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RuleValidationError([f"{label}: invalid YAML{where}: {problem}"]) from exc
    finally:
        loader.dispose()


def repeated_keys(
    item: object, duplicates: Mapping[int, list[tuple[str, int, int]]], prefix: str = ""
) -> Iterator[tuple[str, int, int]]:
    """(field, first line, second line) of every key written twice in the mapping ``item``
    and in the mappings inside it (``headers:``, ``success:``, ``sign:`` …), the inner
    ones named by their path (``success.status``): a repeated key never silently wins."""
    if isinstance(item, Mapping):
        for key, first, again in duplicates.get(id(item), []):
            yield prefix + key, first, again
        for key, value in item.items():
            yield from repeated_keys(value, duplicates, f"{prefix}{key}.")
    elif isinstance(item, list):
        for value in item:
            yield from repeated_keys(value, duplicates, prefix)
