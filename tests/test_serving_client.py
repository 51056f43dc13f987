"""ServingClient's failures are ServingErrors naming where it asked: a server that is not
there (REST and gRPC), and an answer that is not TF Serving's."""
import http.server
import socket
import threading

import numpy as np
import pytest

from tfvamp import serving


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_server_is_a_serving_error_naming_the_url_and_the_address():
    port = free_port()
    client = serving.ServingClient("vae", host="127.0.0.1", rest_port=port, grpc_port=port)
    images = np.zeros((1, 28, 28, 1), np.float32)
    with pytest.raises(serving.ServingError, match=f"No answer from http://127.0.0.1:{port}/v1/models/vae:predict"):
        client.predict_rest("reconstruct", images=images, timeout=5)
    with pytest.raises(serving.ServingError, match=f"gRPC Predict at 127.0.0.1:{port} .*UNAVAILABLE"):
        client.predict_grpc("reconstruct", images=images, timeout=5)


def test_an_answer_that_is_not_tf_servings_json_is_a_serving_error():
    class NotServing(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html>a proxy's page</html>")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), NotServing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = serving.ServingClient("vae", host="127.0.0.1", rest_port=server.server_address[1])
        with pytest.raises(serving.ServingError, match="not TF Serving's JSON: .*a proxy's page"):
            client.predict_rest("reconstruct", images=np.zeros((1, 28, 28, 1), np.float32), timeout=5)
    finally:
        server.shutdown()
