"""Log events the worker reports to the front's log: one stderr line each,
``w2n-event <name> <JSON object>``.

The front reads a worker's stderr line by line; a line naming an event it declares
(WORKER_EVENTS in src/pool/output-relay.ts, each logged by its own function in
src/observability/events.ts, with its level and fields) is logged as that event, any other line
as worker output (``worker.output``, info). EVENTS is checked against WORKER_EVENTS by
test/unit/protocol-constants.test.ts.
"""

import json
import sys

PREFIX = 'w2n-event '
#: the response body iterable yielded str, not bytes (web2py's ``HTTP(200, T('...'))``): encoded
#: and served; fields ``path`` and ``charset``. Logged once per path (wsgi.py).
APP_STR_BODY = 'app.str_body'
EVENTS = (APP_STR_BODY,)


def emit(name, **fields):
    """Write event ``name`` with ``fields`` (JSON values) as one stderr line."""
    # ASCII JSON: no newline or control character can split or forge the line.
    sys.stderr.write('%s%s %s\n' % (PREFIX, name, json.dumps(fields, sort_keys=True)))
