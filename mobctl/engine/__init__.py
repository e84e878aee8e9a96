"""Flow semantics: pure cores (context, conditions, rendering, outputs, frames) and, later,
the scheduler that drives them through the store contract."""
