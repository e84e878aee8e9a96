"""mobctl: validate, register and run mobs (teams of AI agents) described in TOML."""

__version__ = "0.1.0"
