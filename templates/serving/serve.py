"""A tiny AzureML-like inference server (standard library only; Python >= 3.8).

    GET  /       200 "Healthy" once the scoring script's init() has run
    POST /score  the body goes to score.run() as a string; its return value comes back as JSON
                 (500 with {"error": ...} when run() raises)

The scoring script is $AZUREML_ENTRY_SCRIPT (default score.py) in $AZUREML_APP_ROOT
(default: this file's folder). Listens on $HOST:$PORT (default 0.0.0.0:5001).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 16 * 1024 * 1024


def load_entry_script():
    root = os.environ.get("AZUREML_APP_ROOT") or os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(root, os.environ.get("AZUREML_ENTRY_SCRIPT", "score.py"))
    spec = importlib.util.spec_from_file_location("score", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_handler(score):
    class Handler(BaseHTTPRequestHandler):
        server_version = "buildtool-serving/1"

        def _reply(self, status, body, content_type="application/json"):
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 - http.server's naming
            if self.path in ("/", "/health"):
                self._reply(200, "Healthy\n", "text/plain; charset=utf-8")
            else:
                self._reply(404, json.dumps({"error": f"no route {self.path}"}))

        def do_POST(self):  # noqa: N802
            if self.path != "/score":
                self._reply(404, json.dumps({"error": f"no route {self.path}"}))
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_BODY:
                self._reply(400, json.dumps({"error": f"a body of 1..{MAX_BODY} bytes is required"}))
                return
            raw = self.rfile.read(length).decode("utf-8")
            try:
                result = score.run(raw)
                body = json.dumps(result)
            except Exception as exc:  # the scoring script's failure is the client's answer
                traceback.print_exc()
                self._reply(500, json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
                return
            self._reply(200, body)

        def log_message(self, fmt, *args):
            sys.stderr.write("serve: " + (fmt % args) + "\n")

    return Handler


def make_server(score, host, port):
    return ThreadingHTTPServer((host, port), make_handler(score))


def main():
    score = load_entry_script()
    score.init()  # health answers only after the model is loaded
    host, port = os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "5001"))
    server = make_server(score, host, port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"serve: {os.environ.get('AZUREML_ENTRY_SCRIPT', 'score.py')} ready on {host}:{port} (uid {os.getuid()})", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
