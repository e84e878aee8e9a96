"""A run's flow configuration (flow-semantics §1): what its outcome depends on besides its
params, and the digest a resume compares."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mobctl.definition.model import MobDefinition


def _digest(config: dict[str, Any]) -> str:
    canonical_config = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(canonical_config).hexdigest()


def flow_config(definition: MobDefinition, flow_id: str) -> dict[str, Any]:
    """What a run's outcome depends on besides its params (its digest pins a resume)."""

    def document(model: Any, **options: bool) -> Any:
        return None if model is None else json.loads(model.model_dump_json(**options))

    orchestrator = definition.mob.orchestrator
    supervisor = definition.supervisor
    return {
        "flow_id": flow_id,
        "flow_spec": document(definition.flows[flow_id], exclude_none=True),
        "topology": document(definition.topology),
        # the timeout in effect, so that an unset one digests as the 2000 it means
        "supervisor": None
        if supervisor is None
        else document(supervisor) | {"escalation_turn_timeout_ms": supervisor.turn_timeout_ms},
        "limits": document(definition.limits, exclude_none=True),
        "orchestrator_role": orchestrator.profile if orchestrator else None,
    }


def flow_digest(definition: MobDefinition, flow_id: str) -> str:
    """The ``flow_definition_digest`` a run of this flow records (a resume compares it)."""
    return _digest(flow_config(definition, flow_id))
