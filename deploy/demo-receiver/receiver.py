"""A demo webhook receiver for the compose stack: logs each delivery and answers 204."""

import http.server
import json
import sys


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        try:
            event = json.loads(body)
            summary = f"{event.get('type')} {event.get('id')}"
        except ValueError:
            summary = f"{length} bytes (not JSON)"
        print(
            f"delivery {summary} webhook-id={self.headers.get('webhook-id')} "
            f"signature={self.headers.get('webhook-signature', '')[:20]}...",
            flush=True,
        )
        self.send_response(204)
        self.end_headers()

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
    http.server.ThreadingHTTPServer(("0.0.0.0", port), Receiver).serve_forever()
