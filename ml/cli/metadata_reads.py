"""One answer for the read-only ML Metadata commands (lineage, models, runs) when a read fails:
a LookupError (no such version, label or store) or a store error becomes one line naming it."""
from __future__ import annotations

from typing import Any, Callable, Optional, Tuple


def read_metadata(home, read: Callable[[Any], Any]) -> Tuple[Any, Optional[str]]:
    """(read(store), None) on the home's existing store, or (None, the error line's text)."""
    from ml.core.metadata import STORE_ERRORS, existing_store, store_error_reason

    try:
        return read(existing_store(home)), None
    except LookupError as exc:
        return None, str(exc)
    except STORE_ERRORS as exc:
        return None, (f"cannot read ML Metadata at {home.metadata.describe()}: "
                      f"{store_error_reason(exc, home.metadata)}")
