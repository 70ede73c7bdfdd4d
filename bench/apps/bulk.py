"""Large bodies for the bulk scenario (stdlib only, any WSGI server).

GET  /                  a few bytes (readiness, warm-up)
GET  /download?bytes=N  N bytes made by the app, yielded in 64 KiB chunks (Content-Length: N)
GET  /file?bytes=N      N bytes of a real file through wsgi.file_wrapper when the server has one
                        (X-File-Wrapper says which: "server", or "none" when the app reads it)
POST /upload            reads wsgi.input in 64 KiB chunks, answers {"bytes": read, "how": ...}

The file of /file is BENCH_BULK_DIR (else the temp folder) / w2n-bench-bulk-N.bin; the bench
makes it before the servers start, so none pays for writing it; it is made here if missing.
A body without CONTENT_LENGTH is read to its end only when the server says it ends
(wsgi.input_terminated): reading past the body of a keep-alive connection could block.
"""
import json
import os
import tempfile

CHUNK = 64 * 1024
BLOCK = b"x" * CHUNK


def _size(environ):
    for part in environ.get("QUERY_STRING", "").split("&"):
        name, _, value = part.partition("=")
        if name == "bytes" and value.isdigit():
            return int(value)
    return None


def _made(n):
    """n bytes, CHUNK at a time (the same block each time: the app's cost stays small)."""
    whole, rest = divmod(n, CHUNK)
    for _ in range(whole):
        yield BLOCK
    if rest:
        yield BLOCK[:rest]


def bulk_file(n, folder=None):
    """Path of the n-byte file, written (atomically) if it is not there yet."""
    folder = folder or os.environ.get("BENCH_BULK_DIR") or tempfile.gettempdir()
    path = os.path.join(folder, "w2n-bench-bulk-%d.bin" % n)
    if not (os.path.exists(path) and os.path.getsize(path) == n):
        fd, tmp = tempfile.mkstemp(dir=folder)
        with os.fdopen(fd, "wb") as f:
            for block in _made(n):
                f.write(block)
        os.replace(tmp, path)
    return path


def _read_file(f):
    with f:
        while True:
            block = f.read(CHUNK)
            if not block:
                return
            yield block


def _upload(environ):
    read = environ["wsgi.input"].read
    n = 0
    length = environ.get("CONTENT_LENGTH", "")
    if length.isdigit():
        how, remaining = "content-length", int(length)
        while remaining > 0:
            block = read(min(CHUNK, remaining))
            if not block:
                break
            n += len(block)
            remaining -= len(block)
    elif environ.get("wsgi.input_terminated"):
        how = "to the end (wsgi.input_terminated)"
        while True:
            block = read(CHUNK)
            if not block:
                break
            n += len(block)
    else:
        how = "not read: no CONTENT_LENGTH and no wsgi.input_terminated"
    return json.dumps({"bytes": n, "how": how}).encode()


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    n = _size(environ)
    if path == "/upload" and environ["REQUEST_METHOD"] == "POST":
        body = _upload(environ)
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    if path in ("/download", "/file") and n is not None:
        headers = [("Content-Type", "application/octet-stream"), ("Content-Length", str(n))]
        if path == "/download":
            start_response("200 OK", headers)
            return _made(n)
        f = open(bulk_file(n), "rb")
        wrapper = environ.get("wsgi.file_wrapper")
        start_response("200 OK", headers + [("X-File-Wrapper", "server" if wrapper else "none")])
        return wrapper(f, CHUNK) if wrapper else _read_file(f)
    if path == "/":
        body = b"bulk app\n"
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "0")])
    return [b""]


app = application
