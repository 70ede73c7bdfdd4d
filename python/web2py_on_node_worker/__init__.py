"""web2py-on-node's Python worker: runs a WSGI application for the Node.js front.

Standard library only, Python 3.8 or newer. The front starts it as
``<python> <repo>/python/w2n_worker.py`` with a socket on file descriptor 3; see __main__.py and
docs/protocol.md.
"""

__version__ = '0.1.0'
