"""python/w2n_scheduler.py: runs web2py.py as ``python web2py.py`` would, and tells each heartbeat
record of the scheduler's logger on descriptor 3, without changing what web2py's level prints."""

import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAUNCHER = os.path.join(REPO, 'python', 'w2n_scheduler.py')

# A web2py.py of a few lines: web2py's logging set-up (-D WARNING), then what gluon/scheduler.py
# logs, from a logger made after that set-up, as in web2py.
SCRIPT = textwrap.dedent('''
    import logging, os, socket, sys
    print("argv", sys.argv, "main", __name__, "path0", sys.path[0] == os.path.dirname(os.path.abspath(__file__)))
    print("launcher on path", any(p.endswith(os.sep + "python") and os.path.exists(os.path.join(p, "w2n_scheduler.py")) for p in sys.path))
    logging.basicConfig(stream=sys.stdout, format="%(levelname)s %(message)s")
    logging.getLogger("web2py").setLevel(os.environ.get("LEVEL", "WARNING"))
    logger = logging.getLogger("web2py.scheduler.%s#%s" % (socket.gethostname(), os.getpid()))
    logger.info("TICKER: I'm a ticker")
    logger.debug("........recording heartbeat (%s)", "ACTIVE")
    logger.debug("looping...")
    logger.debug("........recording heartbeat (DISABLED)")
    logger.debug("broken %s %s", "one")
    logger.warning("a warning")
    logging.getLogger("web2py.other").debug("not the scheduler's: unchanged")
    sys.exit(3)
''')


class LauncherTest(unittest.TestCase):
    def run_launcher(self, level='WARNING'):
        folder = tempfile.mkdtemp()
        script = os.path.join(folder, 'web2py.py')
        with open(script, 'w') as stream:
            stream.write(SCRIPT)
        read_end, write_end = os.pipe()
        try:
            result = subprocess.run(
                [sys.executable, LAUNCHER, script, '-K', 'app'], cwd=folder, capture_output=True, text=True,
                env=dict(os.environ, LEVEL=level), close_fds=False, preexec_fn=lambda: os.dup2(write_end, 3), timeout=30)
        finally:
            os.close(write_end)
        with os.fdopen(read_end) as pipe:
            heartbeats = pipe.read()
        return result, heartbeats, script

    def test_heartbeats_told_on_descriptor_3_and_the_output_is_webpys_own(self):
        result, heartbeats, script = self.run_launcher()
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertEqual(heartbeats, 'heartbeat ACTIVE\nheartbeat DISABLED\n')
        lines = result.stdout.splitlines()
        self.assertEqual(lines[0], "argv %r main __main__ path0 True" % ([script, '-K', 'app'],))
        self.assertEqual(lines[1], 'launcher on path False')
        self.assertEqual(lines[2:], ['WARNING a warning'])
        self.assertNotIn('Traceback', result.stderr)

    def test_at_debug_level_web2py_prints_them_all(self):
        result, heartbeats, _ = self.run_launcher('DEBUG')
        self.assertEqual(heartbeats.count('heartbeat'), 2)
        self.assertIn('DEBUG ........recording heartbeat (ACTIVE)', result.stdout)
        self.assertIn('DEBUG looping...', result.stdout)
        self.assertIn("DEBUG not the scheduler's: unchanged", result.stdout)


if __name__ == '__main__':
    unittest.main()
