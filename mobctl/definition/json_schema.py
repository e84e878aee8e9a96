"""The JSON Schema of the TOML definition format (``mobctl schema``), for editors."""

from __future__ import annotations

from typing import Any

from mobctl.definition.model import JSON_ONLY_KEYS, MobDefinition

SCHEMA_ID = "https://mobctl.dev/schema/definition.json"


def definition_json_schema() -> dict[str, Any]:
    schema = MobDefinition.model_json_schema(mode="validation")
    for key in JSON_ONLY_KEYS:
        schema["properties"].pop(key, None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "mob definition (meerkat-mob TOML)",
        **schema,
    }
