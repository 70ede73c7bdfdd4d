"""The page served when no application is configured: a WSGI app with no dependencies.

It says that web2py-on-node runs, that the folder holds no web2py (no ``gluon/``), and how to
point the server at an application. ``/demo/echo`` answers the request's environ as JSON.
"""

import html
import json
import os
import sys

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>web2py-on-node is running</title>
<style>
  body {{ font: 16px/1.5 system-ui, sans-serif; color: #1d2733; background: #f4f6f8; margin: 0; }}
  main {{ max-width: 44rem; margin: 3rem auto; padding: 2rem 2.5rem; background: #fff;
          border-radius: 12px; box-shadow: 0 2px 12px rgba(0, 0, 0, .08); }}
  h1 {{ margin-top: 0; font-size: 1.6rem; }}
  h1 span {{ color: #2e8540; }}
  code, pre {{ font: 14px/1.4 ui-monospace, monospace; background: #eef1f4; border-radius: 4px; }}
  code {{ padding: .1rem .3rem; }}
  pre {{ padding: .75rem 1rem; overflow-x: auto; }}
  table {{ border-collapse: collapse; }}
  td {{ padding: .15rem 1.5rem .15rem 0; vertical-align: top; }}
  td:first-child {{ color: #5b6b7b; }}
  footer {{ margin-top: 1.5rem; color: #5b6b7b; font-size: .9rem; }}
</style>
</head>
<body>
<main>
<h1><span>&#10003;</span> web2py-on-node is running</h1>
<p>This is the built-in demo application: no <code>gluon/</code> folder was found in
<code>{folder}</code>, so there is no web2py to serve here.</p>
<p>To serve web2py, point the server at the folder that holds <code>web2py.py</code> and
<code>gluon/</code>:</p>
<pre>web2py-on-node -f /path/to/web2py</pre>
<p>To serve any other WSGI application, name its module and callable:</p>
<pre>web2py-on-node --app mymodule:application</pre>
<h2>This request</h2>
<table>
<tr><td>method</td><td>{method}</td></tr>
<tr><td>path</td><td>{path}</td></tr>
<tr><td>remote address</td><td>{remote}</td></tr>
<tr><td>scheme</td><td>{scheme}</td></tr>
<tr><td>worker pid</td><td>{pid}</td></tr>
<tr><td>Python</td><td>{python}</td></tr>
</table>
<footer>The environ of any request, as JSON: <a href="/demo/echo">/demo/echo</a></footer>
</main>
</body>
</html>
"""


def application(environ, start_response):
    if environ.get('PATH_INFO') == '/demo/echo':
        return _echo(environ, start_response)
    page = _PAGE.format(
        folder=html.escape(os.getcwd()),
        method=html.escape(environ.get('REQUEST_METHOD', '')),
        path=html.escape(environ.get('SCRIPT_NAME', '') + environ.get('PATH_INFO', '')),
        remote=html.escape(environ.get('REMOTE_ADDR', '')),
        scheme=html.escape(environ.get('wsgi.url_scheme', '')),
        pid=os.getpid(),
        python=html.escape(sys.version.split()[0]),
    ).encode('utf-8')
    start_response('200 OK', [('Content-Type', 'text/html; charset=utf-8'),
                              ('Content-Length', str(len(page)))])
    return [page]


def _echo(environ, start_response):
    public = {key: value for key, value in environ.items() if isinstance(value, str)}
    public['wsgi.multithread'] = environ.get('wsgi.multithread')
    public['pid'] = os.getpid()
    body = json.dumps(public, indent=2, sort_keys=True).encode('utf-8')
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(body)))])
    return [body]
