"""The allowlist file (`config/allowlist.yaml`): read, parsed and validated, every problem
naming the file, the line and the field. Read at the edge (the CLI, the CDK app, the tests);
the deployed functions load the JSON compiled from it (`lambdas.core.config`).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from lambdas.core.config import Loc, capped_error, validation_problem
from models.allowlist import AllowlistConfig, dotted_location
from models.exceptions import ConfigError

__all__ = ["load_allowlist", "parse_allowlist"]

# Garbage limits: an allowlist is small; anchors and aliases must not expand it past this.
_MAX_VALUES = 100_000
_MAX_BYTES = 1_000_000

_dotted = dotted_location


class _TooLarge(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


# PyYAML is imported where YAML is read, not at import.
if TYPE_CHECKING:
    import yaml


def _walk(
    node: yaml.Node, loc: Loc, lines: dict[Loc, int], problems: list[tuple[Loc, str]]
) -> None:
    lines.setdefault(loc, node.start_mark.line + 1)
    if len(lines) > _MAX_VALUES:
        raise _TooLarge(node.start_mark.line + 1)
    import yaml

    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            lines[(*loc, key)] = key_node.start_mark.line + 1
            if key in seen:
                problems.append(((*loc, key), f"duplicate key {key!r}"))
            seen.add(key)
            _walk(value_node, (*loc, key), lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*loc, index), lines, problems)


def _line_of(loc: Loc, lines: dict[Loc, int]) -> int:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


@cache
def _loader() -> type:
    """YAML's safe loader, but timestamps stay text: `expires` is read by its own model
    field (models.expiry), so that a bad date names its line and field, not line 1."""
    import yaml

    timestamp = "tag:yaml.org,2002:timestamp"
    resolvers = {
        first: [(tag, pattern) for tag, pattern in entries if tag != timestamp]
        for first, entries in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return type("AllowlistLoader", (yaml.SafeLoader,), {"yaml_implicit_resolvers": resolvers})


def parse_allowlist(text: str, source: str = "<allowlist>") -> AllowlistConfig:
    """Validate allowlist YAML text; raise ConfigError with one `FILE:LINE: field: reason` per problem."""
    try:
        return _parse(text, source)
    except RecursionError:
        raise ConfigError([f"{source}:1: nested too deeply to be an allowlist"]) from None
    except _TooLarge as exc:
        raise ConfigError(
            [f"{source}:{exc.line}: too large: more than {_MAX_VALUES} values (aliases included)"]
        ) from None


def _parse(text: str, source: str) -> AllowlistConfig:
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"{source}:{line}: not valid YAML: {what}"]) from None
    if root is None:
        raise ConfigError([f"{source}:1: the file is empty"])
    lines: dict[Loc, int] = {}
    duplicates: list[tuple[Loc, str]] = []
    _walk(root, (), lines, duplicates)
    if duplicates:
        raise capped_error(
            [f"{source}:{_line_of(loc, lines)}: {_dotted(loc)}: {m}" for loc, m in duplicates],
            source,
        )
    try:
        data = yaml.load(text, Loader=_loader())
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        raise ConfigError([f"{source}:1: not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise ConfigError([f"{source}:1: the allowlist must be a mapping with version and rules"])
    try:
        config = AllowlistConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc, message = validation_problem(error)
            problems.append(f"{source}:{_line_of(loc, lines)}: {_dotted(loc)}: {message}")
        raise capped_error(problems, source) from None
    config.set_origin(source, lines)
    return config


def load_allowlist(path: str | Path) -> AllowlistConfig:
    """Read and validate an allowlist YAML file."""
    source = str(path)
    try:
        if Path(path).stat().st_size > _MAX_BYTES:
            raise ConfigError([f"{source}:1: too large for an allowlist (over {_MAX_BYTES} bytes)"])
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError([f"{source}: cannot read: {exc.strerror or exc}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{source}: not UTF-8 text (byte {exc.start})"]) from None
    return parse_allowlist(text, source)
