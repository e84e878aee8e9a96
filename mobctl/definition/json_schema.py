"""The JSON Schema of the TOML definition format (``mobctl schema``), for editors."""

from __future__ import annotations

from typing import Any

from mobctl.definition.model import MobDefinition

SCHEMA_ID = "https://mobctl.dev/schema/definition.json"
_JSON_ONLY = ("owner_session_id", "session_cleanup_policy", "is_implicit", "source_identity")


def definition_json_schema() -> dict[str, Any]:
    schema = MobDefinition.model_json_schema(mode="validation")
    for key in _JSON_ONLY:
        schema["properties"].pop(key, None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "mob definition (meerkat-mob TOML)",
        **schema,
    }
