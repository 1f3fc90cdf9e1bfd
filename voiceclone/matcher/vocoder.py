"""pyworld (the WORLD vocoder's Python binding), imported in one place with its import-time warning silenced."""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    # pyworld's __init__ imports pkg_resources, which warns that it is deprecated.
    warnings.simplefilter("ignore", UserWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    import pyworld

__all__ = ["pyworld"]
