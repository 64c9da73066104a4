"""Model names as the server, the request logger and the CLI accept them.

A model name becomes a folder name (serving logs, monitoring state) and a metrics label, so
it must be one plain path component: letters, digits, `_`, `.`, `-`, starting with a letter or
digit, at most 128 characters, and never `..`. Anything else (an absolute path, `../../x`, a
separator, a control character, an 8 KB string) is refused before it reaches the filesystem.
"""
from __future__ import annotations

import re

MODEL_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}"
_MODEL_NAME = re.compile(MODEL_NAME_PATTERN)
_SHOWN_CHARACTERS = 64


def is_valid_model_name(name: str) -> bool:
    """True when name matches MODEL_NAME_PATTERN and holds no `..`."""
    return (isinstance(name, str) and _MODEL_NAME.fullmatch(name) is not None
            and ".." not in name)


def check_model_name(name: str, what: str = "model name") -> str:
    """name itself when valid, else a ValueError naming `what` and the (shortened) name."""
    if is_valid_model_name(name):
        return name
    shown = repr(name) if not isinstance(name, str) or len(name) <= _SHOWN_CHARACTERS else (
        repr(name[:_SHOWN_CHARACTERS]) + f"... ({len(name)} characters)")
    raise ValueError(f"invalid {what} {shown}: use 1-128 letters, digits, '_', '.' or '-', "
                     "starting with a letter or digit, without '..'")
