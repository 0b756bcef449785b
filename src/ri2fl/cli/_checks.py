"""Option checks shared by several subcommands."""

from __future__ import annotations

from ..errors import ConfigError


def check_medium_index(value: float | None) -> None:
    """Refuse a ``--medium-index`` outside what any imaging medium has."""
    if value is not None and not 1.0 <= value <= 1.6:
        raise ConfigError(f"implausible medium index {value}", "--medium-index",
                          "1.337 for culture medium, 1.335 for PBS")
