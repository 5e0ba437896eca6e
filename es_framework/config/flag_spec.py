"""One flag's entry in the flag table (:data:`es_framework.config.flags.FLAGS`): its name (the Java
framework's), :class:`~es_framework.config.record.Config` attribute, default, parser and help."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from es_framework.config.values import ENV_PREFIX


@dataclass(frozen=True)
class FlagSpec:
    name: str
    attr: str
    default: str
    parse: Callable[[str], Any]
    help: str
    metavar: str = "VALUE"
    secret: bool = False

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + re.sub(r"(?<!^)(?=[A-Z])", "_", self.name).upper()
