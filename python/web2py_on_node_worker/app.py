"""Loading the WSGI application named by HANDSHAKE's ``app``.

- ``{"kind": "web2py", "folder": F}``: what web2py's handlers/web2py_on_gevent.py does: work in
  F, F first on sys.path, ``global_settings.web2py_runtime_handler = True`` *before*
  ``import gluon.main``, then serve ``gluon.main.wsgibase``, with ``web2py_use_wsgi_file_wrapper``
  set in each environ: web2py's ``response.stream()`` and ``response.download()`` (gluon/globals.py,
  gluon/streamer.py) then hand a whole file to ``wsgi.file_wrapper``, which the worker passes to
  the front by descriptor (SENDFILE) instead of reading it through Python in 64 KiB chunks. A
  Range (206) answer is still made by web2py's own streamer, bounded to the range. Only web2py
  reads that key, so other applications do not get it.
- ``{"kind": "wsgi", "spec": "module:callable", "cwd": D}``: work in D, D first on sys.path,
  import the module, take the callable (``application``, then ``app``, when not named).
- ``{"kind": "demo"}``: the bundled demo page (demo.py).
"""

import importlib
import os
import sys

SUBMODULES_HINT = 'is gluon/packages (pydal, yatl) present? git submodule update --init --recursive'


class AppLoadError(Exception):
    """The application cannot be loaded; the message is one line for the operator."""


def load_app(spec):
    """The WSGI callable for HANDSHAKE's ``app`` object. Raises AppLoadError or the import's error."""
    kind = spec.get('kind') if isinstance(spec, dict) else None
    if kind == 'web2py':
        return load_web2py(spec['folder'])
    if kind == 'wsgi':
        return load_wsgi(spec['spec'], spec.get('cwd'))
    if kind == 'demo':
        from .demo import application
        return application
    raise AppLoadError('unknown application kind %r in HANDSHAKE' % (kind,))


def _work_in(folder):
    """chdir to ``folder`` and put it first on sys.path, once."""
    folder = os.path.abspath(folder)
    os.chdir(folder)
    sys.path[:] = [folder] + [path for path in sys.path if path != folder]


def load_web2py(folder):
    _work_in(folder)
    try:
        # The order matters: gluon.main reads the flag while it is imported.
        from gluon.settings import global_settings
        global_settings.web2py_runtime_handler = True
        import gluon.main
    except ImportError as error:
        if getattr(error, 'name', None) == 'gluon':
            raise AppLoadError('%s has no gluon/ package: it is not a web2py folder' % folder) from error
        raise AppLoadError('%s: %s (%s)' % (type(error).__name__, error, SUBMODULES_HINT)) from error
    wsgibase = gluon.main.wsgibase

    def web2py_application(environ, start_response):
        environ['web2py_use_wsgi_file_wrapper'] = True
        return wsgibase(environ, start_response)
    return web2py_application


def load_wsgi(spec, cwd=None):
    _work_in(cwd or os.getcwd())
    module_name, _, attribute = spec.partition(':')
    if not module_name:
        raise AppLoadError('%r is not "module:callable"' % spec)
    module = importlib.import_module(module_name)
    names = [attribute] if attribute else ['application', 'app']
    for name in names:
        target = module
        try:
            for part in name.split('.'):
                target = getattr(target, part)
        except AttributeError:
            continue
        if not callable(target):
            raise AppLoadError('%s:%s is a %s, not a WSGI callable' % (module_name, name, type(target).__name__))
        return target
    raise AppLoadError('module %s has no %s' % (module_name, ' or '.join(repr(n) for n in names)))
