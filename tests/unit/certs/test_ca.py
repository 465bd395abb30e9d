import socket
import ssl
import threading

from spruce.certs.ca import InternalCA


def test_ca_persists_and_signs_a_chain_clients_trust(tmp_path):
    ca = InternalCA(tmp_path / "ca")
    again = InternalCA(tmp_path / "ca")
    assert ca.cert_pem == again.cert_pem
    issued = ca.issue(["localhost", "app.localhost", "*.apps.example.test"], ["127.0.0.1"])
    (tmp_path / "c.pem").write_text(issued.cert_pem)
    (tmp_path / "k.pem").write_text(issued.key_pem)

    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    client_ctx = ssl.create_default_context(cadata=ca.cert_pem)

    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen()
    port = lsock.getsockname()[1]

    def serve():
        conn, _ = lsock.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as s:
            s.sendall(b"hi")

    t = threading.Thread(target=serve)
    t.start()
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with client_ctx.wrap_socket(raw, server_hostname="app.localhost") as s:
            assert s.recv(2) == b"hi"
    t.join()
    lsock.close()


def test_ca_key_is_private(tmp_path):
    ca = InternalCA(tmp_path / "ca")
    assert (ca.key_path.stat().st_mode & 0o077) == 0
