"""How a member executes a turn (flow-semantics §3). A driver is chosen at run time, never
written into the definition, so an LLM-provider driver can be added without touching the
engine."""
