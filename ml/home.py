"""Where the platform keeps its state: --home, else $ETRM_HOME, else .etrm in the working dir."""
from __future__ import annotations

import os
import pathlib
from typing import Optional, Union

HOME_ENV_VAR = "ETRM_HOME"
DEFAULT_HOME = ".etrm"


def resolve_home(home: Optional[Union[str, os.PathLike]] = None) -> pathlib.Path:
    """The project home as an absolute path (not created here)."""
    chosen = home if home not in (None, "") else os.environ.get(HOME_ENV_VAR) or DEFAULT_HOME
    return pathlib.Path(chosen).expanduser().resolve()
