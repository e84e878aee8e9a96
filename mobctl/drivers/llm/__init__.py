"""The ``llm`` driver (see :mod:`mobctl.drivers.llm.driver`). Deliberately light: the
launcher in this package starts with every MCP server and must import nothing heavy (the
factory imports the driver when it is called)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mobctl.drivers.base import Driver
    from mobctl.drivers.registry import DriverConfig


def factory(argument: str, config: DriverConfig) -> Driver:
    """``llm[:model=NAME,max_tool_rounds=N]``."""
    from mobctl.drivers.llm.driver import LlmDriver
    from mobctl.drivers.llm.options import parse_options

    return LlmDriver(
        parse_options(argument),
        env=config.env,
        allow_shell=config.allow_shell,
        allow_mcp=config.allow_mcp,
        workdir=config.workdir,
    )
