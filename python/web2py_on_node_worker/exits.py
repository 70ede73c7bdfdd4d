"""How the worker process ends: its exit statuses (docs/protocol.md) and ``exit_now``.

A leaf module (it imports nothing of the package): the channel exits from here when its
descriptor is gone, and so do __main__ and the worker classes, without importing each other.
"""

import os
import sys

#: SHUTDOWN and every request finished, or the front closed the channel
EXIT_OK = 0
#: the application could not be loaded (ERROR id 0, W2N_ERR_APP_IMPORT, was sent)
EXIT_APP_IMPORT = 3
#: the front broke the protocol, or its HANDSHAKE is not this worker's (ERROR id 0 was sent)
EXIT_PROTOCOL = 4
#: the channel's descriptor was closed under the worker (by the application): channel.py
EXIT_CHANNEL_LOST = 5


def exit_now(status):
    """Exit without waiting for request threads or atexit hooks (the channel is gone)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)
