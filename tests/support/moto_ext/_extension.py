"""One extension: what it adds, the AWS page it follows, and the probe that makes it step aside."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import moto

log = logging.getLogger("lakeops.moto_ext")

# The moto release every extension was written against and is tested with. A newer moto is
# not refused: each extension's probe decides whether that release still lacks the behaviour.
TESTED_WITH = "5.2.5"


@dataclass
class Extension:
    name: str
    # The AWS documentation page the behaviour follows.
    doc: str
    # True when the running moto already behaves as AWS documents: the extension then steps aside.
    already_in_moto: Callable[[], bool]
    install: Callable[[], None]
    active: bool = False
    reason: str = field(default="not applied yet")

    def report(self) -> dict[str, object]:
        return {"active": self.active, "reason": self.reason, "doc": self.doc}


def apply(extension: Extension) -> None:
    """Installs `extension` unless moto already has the behaviour or has changed under it."""
    version = moto.__version__
    try:
        present = extension.already_in_moto()
    except (AttributeError, ImportError, OSError, TypeError) as e:
        # What the extension patches is gone or different: a moto this layer does not know.
        extension.active = False
        extension.reason = f"moto {version} differs from {TESTED_WITH} where this extension hooks in ({e}); not applied"
        log.warning("lakeops extension %s: %s", extension.name, extension.reason)
        return
    if present:
        extension.active = False
        extension.reason = f"moto {version} already does this; not applied"
    else:
        extension.install()
        extension.active = True
        extension.reason = f"applied to moto {version} (written for {TESTED_WITH})"
    log.info("lakeops extension %s: %s", extension.name, extension.reason)
