"""Write a definition back out: Meerkat's JSON form, or readable TOML (via tomlkit).

The JSON form is what Meerkat's serde writes for the same definition: every field with its
value or default, ``null`` for an unset optional field, nothing where serde skips the field
(the model's ``JsonForm`` markers). The TOML form writes only what differs from the defaults.
Both are lossless for what the model holds.
"""

from __future__ import annotations

import tomllib
from typing import Any

import tomlkit
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from tomlkit.items import AoT, Array, InlineTable, Table

from mobctl.definition.model import JSON_ONLY_KEYS, JsonForm, MobDefinition, synthesised_root
from mobctl.definition.schemas import (
    InlineSchema,
    canonical_json,
    normalise_schema,
    parse_schema_ref,
)
from mobctl.errors import DefinitionError

_SORTED_MAPS = ("profiles", "models", "skills", "flows", "mcp")
_PLAIN = JsonForm()
# Tables written inline in TOML (small, read as one value).
_INLINE = frozenset(
    {"collection_policy", "condition", "until", "expr", "provider_tag", "env", "headers"}
)
# Arrays of tables written as arrays of inline tables rather than [[...]] sections.
_INLINE_ARRAYS = frozenset({"exprs", "message", "rules"})


def dump(model: BaseModel, *, json_form: bool) -> dict[str, Any]:
    """The model as plain data: every field as Meerkat's JSON form writes it (``json_form``),
    or only the fields that differ from their defaults (the TOML form). A None in a required
    field is a JSON null value (a condition's ``value``), never an unset field."""
    result: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        form = _json_form(info)
        if value is None and not info.is_required():
            if json_form and not form.skip_none:
                result[name] = form.unset_as
            continue
        if json_form:
            if form.skip_empty and value == []:
                continue
        elif not info.is_required() and value == info.get_default(call_default_factory=True):
            continue
        result[name] = _plain(value, json_form)
    extra = model.model_extra or {}
    result.update({key: _plain(value, json_form) for key, value in extra.items()})
    return result


def _json_form(info: FieldInfo) -> JsonForm:
    return next((m for m in info.metadata if isinstance(m, JsonForm)), _PLAIN)


def _plain(value: Any, json_form: bool) -> Any:
    if isinstance(value, BaseModel):
        return dump(value, json_form=json_form)
    if isinstance(value, dict):
        return {key: _plain(item, json_form) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item, json_form) for item in value]
    return value


def to_json_form(definition: MobDefinition) -> dict[str, Any]:
    """Meerkat's ``definition.json``: id/orchestrator on top, roots present, every field as
    Meerkat's serde writes it."""
    data = dump(definition, json_form=True)
    mob = data.pop("mob")
    flows = data.get("flows", {})
    for flow_id, flow in definition.flows.items():
        if flow.root is None:
            flows[flow_id]["root"] = dump(synthesised_root(flow.steps), json_form=True)
        for step_id, step in flow.steps.items():
            if step.expected_schema_ref is not None:
                ref = parse_schema_ref(step.expected_schema_ref)
                if isinstance(ref, InlineSchema):
                    flows[flow_id]["steps"][step_id]["expected_schema_ref"] = canonical_json(
                        ref.schema
                    )
    for name, profile in definition.inline_profiles().items():
        if profile.output_schema is not None:
            data["profiles"][name]["output_schema"] = normalise_schema(profile.output_schema)
    for key in _SORTED_MAPS:
        if key in data:
            data[key] = dict(sorted(data[key].items()))
    if data.get("mcp"):
        data["mcp_servers"] = data.pop("mcp")
    data.pop("mcp", None)
    return {"id": mob["id"], "orchestrator": mob["orchestrator"], **data}


def to_toml(definition: MobDefinition) -> str:
    """Readable TOML: top-level scalars first, then ``[mob]``, profiles, models, ..."""
    data = dump(definition, json_form=False)
    for key in JSON_ONLY_KEYS:  # the TOML form cannot hold them
        data.pop(key, None)
    if not data.get("mcp"):
        data.pop("mcp", None)
    orchestrator = data.get("mob", {}).get("orchestrator")
    if orchestrator is not None:
        data["mob"]["orchestrator"] = orchestrator["profile"]
    document = tomlkit.document()
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    for key, value in scalars.items():
        document.add(key, _toml_value(value, key, (key,)))
    for key, value in data.items():
        if key in scalars:
            continue
        document.add(key, _toml_value(value, key, (key,)))
    return tomlkit.dumps(document)


def _toml_value(value: Any, key: str, path: tuple[str | int, ...], inline: bool = False) -> Any:
    if value is None:
        raise DefinitionError(
            f"'{'.'.join(map(str, path))}' is null, which TOML cannot represent",
            hint="keep this definition in JSON, or replace the null",
        )
    if isinstance(value, dict):
        if inline or key in _INLINE:
            table: InlineTable | Table = tomlkit.inline_table()
            for k, v in value.items():
                table.append(k, _toml_value(v, k, (*path, k), True))
            return table
        has_subtables = any(isinstance(v, dict) for v in value.values())
        table = tomlkit.table(is_super_table=has_subtables and not _has_scalars(value))
        for k, v in value.items():
            table.add(k, _toml_value(v, k, (*path, k)))
        return table
    if isinstance(value, list):
        if (
            value
            and all(isinstance(v, dict) for v in value)
            and not inline
            and key not in _INLINE_ARRAYS
        ):
            aot = AoT([])
            for index, item in enumerate(value):
                aot.append(_toml_value(item, key, (*path, index)))
            return aot
        array: Array = tomlkit.array()
        for index, item in enumerate(value):
            array.append(_toml_value(item, key, (*path, index), True))
        if len(value) > 1 and any(isinstance(v, dict) for v in value):
            array.multiline(True)
        return array
    if isinstance(value, str) and "\n" in value:
        return _multiline(value)
    return value


def _multiline(value: str) -> Any:
    """A multi-line string when it reads back identically (TOML trims a leading newline and
    normalises line ends), else a one-line escaped string."""
    item = tomlkit.string(value, multiline=True)
    if tomllib.loads(f"v = {item.as_string()}")["v"] == value:
        return item
    return value


def _has_scalars(value: dict[str, Any]) -> bool:
    return any(not isinstance(v, dict) for v in value.values())
