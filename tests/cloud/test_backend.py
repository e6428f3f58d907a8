"""State kept remotely: --backend http with --backend-config, against a state server on
loopback that speaks Terraform's http backend protocol (GET the state, POST a new one). Written
here because no state service can run offline; it is the boundary Terraform itself talks to."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.cloud.conftest import exoscale_args

pytestmark = pytest.mark.xdist_group("terraform")


class StateServer(ThreadingHTTPServer):
    state: bytes | None = None
    posts = 0


class StateHandler(BaseHTTPRequestHandler):
    server: StateServer

    def do_GET(self) -> None:
        if self.server.state is None:
            self.send_response(404)  # no state yet: the http backend starts empty
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.server.state)))
        self.end_headers()
        self.wfile.write(self.server.state)

    def do_POST(self) -> None:
        self.server.state = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.posts += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def state_server():
    server = StateServer(("127.0.0.1", 0), StateHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_state_lives_in_the_backend_given(cloud_cli, seed_store, tmp_path, state_server):
    workdir = tmp_path / "work"
    address = f"http://127.0.0.1:{state_server.server_address[1]}/state/python-lb"
    cloud = cloud_cli(
        *exoscale_args(seed_store, workdir),
        "--backend", "http", "--backend-config", f"address={address}",
    )  # fmt: skip

    code, _, err = cloud("apply", "--auto-approve")
    assert code == 0, err
    assert state_server.posts >= 1
    assert b'"nlb_service"' in state_server.state
    assert not (workdir / "terraform.tfstate").exists()  # nothing kept locally

    code, out, err = cloud("check")
    assert code == 0, out + err
    code, _, err = cloud("plan", "--detailed-exitcode")
    assert code == 0, err  # the remote state is found again: no changes


def test_state_file_is_for_the_local_backend_only(cloud_cli, seed_store, tmp_path):
    code, _, err = cloud_cli(*exoscale_args(seed_store, tmp_path / "work"))(
        "plan", "--backend", "s3", "--state", str(tmp_path / "x.tfstate")
    )
    assert code == 2
    assert "--state is the local backend's file" in err
