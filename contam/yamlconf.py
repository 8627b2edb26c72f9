"""Typed YAML config files: a pydantic model validated from YAML, errors naming file, line and key.

Shared by the release checklist (`contam checklist release.yaml`) and the service's config
(`server.yaml`): both refuse unknown keys, and a user fixing one needs to know where it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from contam.errors import InputError

M = TypeVar("M", bound=BaseModel)


def load_yaml(path: str | Path, model: type[M], *, context: dict[str, Any] | None = None) -> M:
    """Read `path` as YAML and validate it as `model`; any problem is an `InputError` with the
    file, the line of the offending key (or value) and its dotted key path."""
    import yaml  # base dependency, imported on use: `import contam` stays light

    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=where) from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", path=where) from exc
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"not valid YAML: {problem}", path=where, line=line) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(
            f"expected a mapping of keys at the top, got {type(data).__name__}", path=where, line=1
        )
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        key = ".".join(str(part) for part in loc) or None
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, loc[:-1])
            message = "unknown key" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
        raise InputError(message, path=where, line=_line_of(root, loc), field=key) from exc


def _line_of(node: Any, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the key (or list entry) at `loc` in a composed YAML tree; the deepest
    line found when the path ends in something missing (a missing key is reported at its parent)."""
    import yaml

    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    line, node = key_node.start_mark.line + 1, value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the (nested) model that holds `loc`, for the "unknown key" message."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(str(part))
        if field is None:
            return []
        current = _model_in(field.annotation)
        if current is None:
            return []
    return sorted(getattr(current, "model_fields", {}))


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as `Model`, `list[Model]` or `Model | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
