"""Spruce's router. Its hot modules may be compiled (see native.py): chosen here, before any
of them is imported."""

from . import native

native.choose()
