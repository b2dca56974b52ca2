"""What the agent must remember across restarts, in one JSON file under state_path.

Link-local /31 pairs and floating-IP rule priorities are allocated by the agent; if a
restart handed out different ones, every router with a floating IP would be rewired
(traffic lost) instead of left alone. The file is replaced atomically (write, fsync,
rename), so a crash leaves the old or the new content, never half of one.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

LOG = logging.getLogger(__name__)
FILENAME = "allocations.json"


def load(state_path: str) -> dict[str, Any]:
    path = os.path.join(state_path, FILENAME)
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        # a damaged file costs a rewiring, not a crash loop
        LOG.error("cannot read %s (%s): starting with fresh allocations", path, exc)
        return {}
    if not isinstance(data, dict):
        LOG.error("%s does not hold a JSON object: starting with fresh allocations", path)
        return {}
    return data


def save(state_path: str, data: dict[str, Any]) -> None:
    path = os.path.join(state_path, FILENAME)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, sort_keys=True, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
