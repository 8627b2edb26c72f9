"""The OpenAPI schema of probe parameters as this server accepts them.

`ProbeSpec.params` is a free JSON object on the wire (each probe validates its own), so the
schema alone would say nothing about it. Here every registered probe gets a component of its own
(`<Probe>Spec`: its name as a constant, its `Params` model's schema), with this server's caps as
`maximum` / `minimum` on each parameter that declares one (`contam.probe.scales`), and every
reference limited to the names registered in the config. `ProbeSpec` becomes the `oneOf` of them,
so a client, and schemathesis, see what the server will accept.
"""

from __future__ import annotations

from typing import Any

from contam.probe import CAP_KEY
from servers.settings import NAME_PATTERN, ServerSettings

REF_KEY = "x-contam-reference"


def probe_spec_components(settings: ServerSettings) -> dict[str, Any]:
    """Schema components: `<Probe>Spec` per registered probe, their parameter models, and
    `ProbeSpec` as the `oneOf` of them (discriminated by `name`)."""
    from contam.registry import get_probe, probe_names

    components: dict[str, Any] = {}
    mapping: dict[str, str] = {}
    for name in probe_names():
        cls = get_probe(name)
        params = cls.Params.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(params.pop("$defs", {}))
        _apply_server_rules(params, settings)
        spec_name = f"{cls.__name__}Spec"
        components[spec_name] = {
            "type": "object",
            "title": spec_name,
            "description": (cls.__doc__ or "").strip().split("\n")[0] or f"the {name} probe",
            "properties": {"name": {"const": name, "type": "string"}, "params": params},
            "required": ["name"],
            "additionalProperties": False,
        }
        mapping[name] = f"#/components/schemas/{spec_name}"
    components["ProbeSpec"] = {
        "title": "ProbeSpec",
        "description": "A probe by registered name, with its parameters (validated by the probe's own "
        "model; caps and registered names are this server's).",
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "name", "mapping": mapping},
    }
    return components


def _apply_server_rules(schema: dict[str, Any], settings: ServerSettings) -> None:
    for prop in schema.get("properties", {}).values():
        cap = prop.get(CAP_KEY)
        if isinstance(cap, str):
            bound, floor = settings.caps.bound(cap)
            for target in _numeric(prop):
                key = "minimum" if floor else "maximum"
                current = target.get(key)
                target[key] = bound if current is None else (max if floor else min)(current, bound)
            prop["description"] = (
                f"{prop.get('description', '')} (this server: {'at least' if floor else 'at most'} "
                f"{bound}, caps.{cap})"
            ).strip()
        for target in _with_key(prop, REF_KEY):
            names = _registered(settings, target[REF_KEY])
            target.pop("maxLength", None)
            target["pattern"] = NAME_PATTERN
            if names:
                target["enum"] = names


def _numeric(prop: dict[str, Any]) -> list[dict[str, Any]]:
    """The integer or number schemas in `prop` (itself, or inside anyOf for an optional)."""
    found = [s for s in prop.get("anyOf", []) if s.get("type") in ("integer", "number")]
    return found or ([prop] if prop.get("type") in ("integer", "number") else [])


def _with_key(prop: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return [s for s in [prop, *prop.get("anyOf", [])] if key in s]


def _registered(settings: ServerSettings, kind: str) -> list[str]:
    if kind == "model":
        return [m.name for m in settings.models]
    if kind == "templates":
        return [t.name for t in settings.templates]
    return []


__all__ = ["probe_spec_components"]
