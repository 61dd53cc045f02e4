"""Descriptions of sparsecore's own adapters, registered in pyproject.toml.

Each is a light class: importing this module imports no optional dependency.
The adapter packages call ``<Adapter>().require()`` before importing theirs, so
a missing dependency gives an ImportError that names the extra to install.
"""
from sparsecore.plugins._base import Adapter

__all__ = []
