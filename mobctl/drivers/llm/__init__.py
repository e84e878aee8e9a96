"""The ``llm`` driver (see :mod:`mobctl.drivers.llm.driver`). Deliberately empty: the
launcher in this package starts with every MCP server and must import nothing heavy."""
