"""Launcher the front runs: ``<python> <repo>/python/w2n_worker.py`` (see web2py_on_node_worker/__main__.py).

Python puts this script's folder first on sys.path, which is how the package is found; it is
taken off again once the package is imported, so the application's sys.path is its own.
"""
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
if _here not in sys.path:
    sys.path.insert(0, _here)
from web2py_on_node_worker.__main__ import main  # noqa: E402
sys.path[:] = [path for path in sys.path if os.path.abspath(path or '.') != _here]

if __name__ == '__main__':
    main()
