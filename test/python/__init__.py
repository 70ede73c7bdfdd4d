"""Python worker tests (stdlib unittest). Run from the repo root:

    python3 -m unittest discover -s test/python

(``-t .`` works too once ``test/__init__.py`` exists: without it the standard library's own
``test`` package shadows this folder.) The modules import their helpers as top-level modules, so
this folder is put on sys.path when it is imported as a package.
"""
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
if _here not in sys.path:
    sys.path.insert(0, _here)
