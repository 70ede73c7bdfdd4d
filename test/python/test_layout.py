"""The worker package's shape: its import graph has no cycle; gevent (an optional dependency) is
imported by one module only, workers/ggevent.py; and a thread or sync worker never loads it.

The graph is read from the source (ast), counting every import of the package's own modules,
those inside functions too: a lazy import that closes a cycle is a cycle all the same.
"""

import ast
import importlib.util
import json
import os
import re
import sys
import unittest

from worker_harness import REPO, WorkerProcess, wsgi_app

PACKAGE = 'web2py_on_node_worker'
PACKAGE_DIR = os.path.join(REPO, 'python', PACKAGE)
#: the one module allowed to import gevent (and greenlet, which comes with it)
GEVENT_MODULE = PACKAGE + '.workers.ggevent'
HAS_GEVENT = importlib.util.find_spec('gevent') is not None


def package_modules():
    """module name -> source path, for every module of the package."""
    modules = {}
    for folder, _dirs, files in os.walk(PACKAGE_DIR):
        for name in files:
            if not name.endswith('.py'):
                continue
            path = os.path.join(folder, name)
            parts = os.path.relpath(path, os.path.dirname(PACKAGE_DIR))[:-3].split(os.sep)
            if parts[-1] == '__init__':
                parts.pop()
            modules['.'.join(parts)] = path
    return modules


def imports_of(module, path, modules):
    """-> (the package's modules that ``module`` imports, the other top-level names it imports)."""
    is_package = path.endswith('__init__.py')
    with open(path) as stream:
        tree = ast.parse(stream.read(), path)
    own, other = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split('.') if is_package else module.split('.')[:-1]
                base = base[:len(base) - node.level + 1]
                target = '.'.join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            # ``from . import x`` imports the submodule x when there is one.
            names = [target] + ['%s.%s' % (target, alias.name) for alias in node.names]
        else:
            continue
        for name in names:
            if name in modules:
                own.add(name)
            elif not name.startswith(PACKAGE):
                other.add(name.split('.')[0])
    own.discard(module)
    return own, other


class ImportGraphTest(unittest.TestCase):
    def setUp(self):
        self.modules = package_modules()
        self.graph = {}
        self.external = {}
        for module, path in self.modules.items():
            self.graph[module], self.external[module] = imports_of(module, path, self.modules)

    def test_the_worker_classes_are_found(self):
        for name in ('base', 'thread', 'sync', 'ggevent'):
            self.assertIn('%s.workers.%s' % (PACKAGE, name), self.modules)

    def test_no_import_cycle(self):
        done, on_path = set(), []

        def visit(module):
            if module in on_path:
                cycle = on_path[on_path.index(module):] + [module]
                self.fail('import cycle: ' + ' -> '.join(cycle))
            if module in done:
                return
            on_path.append(module)
            for target in sorted(self.graph[module]):
                visit(target)
            on_path.pop()
            done.add(module)

        for module in sorted(self.graph):
            visit(module)

    def test_only_ggevent_imports_gevent(self):
        importers = sorted(module for module, names in self.external.items()
                           if names & {'gevent', 'greenlet'})
        self.assertEqual(importers, [GEVENT_MODULE])
        # Nor by name (importlib.import_module('gevent'), __import__('gevent')).
        by_name = re.compile(r'''(import_module|__import__)\(\s*['"](gevent|greenlet)''')
        for module, path in self.modules.items():
            with open(path) as stream:
                self.assertIsNone(by_name.search(stream.read()), module)


@unittest.skipUnless(HAS_GEVENT, 'gevent is not installed for %s: nothing could leak' % sys.executable)
class GeventStaysOutTest(unittest.TestCase):
    """Issue 16: the thread and sync classes once loaded ~28 gevent modules before the handshake."""

    def gevent_modules(self, worker_class):
        worker = WorkerProcess(wsgi_app('modules:app'), worker_class=worker_class, threads=2)
        self.addCleanup(worker.close)
        worker.wait_ready()
        response = worker.request(1, query='prefix=gevent')
        self.assertEqual(response.status, '200 OK', response.error)
        return json.loads(response.body)

    def test_a_thread_worker_has_no_gevent_module(self):
        self.assertEqual(self.gevent_modules('thread'), [])

    def test_a_sync_worker_has_no_gevent_module(self):
        self.assertEqual(self.gevent_modules('sync'), [])

    def test_a_gevent_worker_has_them(self):
        """The probe itself works: the gevent class does load gevent."""
        self.assertIn('gevent.monkey', self.gevent_modules('gevent'))
