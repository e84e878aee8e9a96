"""The model catalogue: which model ids ``unknown_model`` accepts (data, not code)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from mobctl.definition.files import read_regular
from mobctl.errors import CatalogError


class _Entry(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    id: str
    provider: str


class _CatalogFile(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    catalog: str
    image_generation_providers: list[str]
    models: list[_Entry]


@dataclass(frozen=True)
class Catalog:
    name: str
    model_ids: frozenset[str]
    image_generation_providers: frozenset[str]
    providers: Mapping[str, str] = field(default_factory=dict)  # model id -> provider


def bundled_catalog() -> Catalog:
    text = resources.files("mobctl.data").joinpath("models.json").read_text("utf-8")
    return _parse(text, "bundled catalogue")


def load_catalog(path: Path) -> Catalog:
    """A replacement catalogue (``--catalog FILE``); a bad file is a usage error."""
    try:
        text = read_regular(path).decode("utf-8")  # capped: --catalog /dev/zero never ends
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"cannot read catalogue {path}: {exc}") from exc
    return _parse(text, str(path))


def _parse(text: str, name: str) -> Catalog:
    try:
        data = _CatalogFile.model_validate(json.loads(text))
    except (ValueError, RecursionError, ValidationError) as exc:
        first = _first(exc) if isinstance(exc, ValidationError) else str(exc).splitlines()[0]
        raise CatalogError(
            f"malformed model catalogue {name}: {first}",
            hint='expected {"catalog": "...", "image_generation_providers": [...], '
            '"models": [{"id": "...", "provider": "..."}]}',
        ) from exc
    return Catalog(
        data.catalog,
        frozenset(entry.id for entry in data.models),
        frozenset(data.image_generation_providers),
        {entry.id: entry.provider for entry in data.models},
    )


def _first(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(part) for part in err["loc"]) or "document"
    return f"{where}: {err['msg']}"
