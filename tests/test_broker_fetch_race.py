"""A message fetched at the moment the broker connection drops must not be lost.

Kombu's Redis transport takes a message off its queue with ``BRPOP`` and only afterwards records it as
unacknowledged (``ZADD unacked_index`` + ``HSET unacked``, one pipeline). A test-local TCP proxy sits
between a real worker (the kit's configuration) and a real redis-server: when the ``BRPOP`` reply
carrying the published task has passed through it whole, it stops forwarding anything, closes every
connection of the worker and refuses new ones for a few seconds, as a Redis restart does. The
worker's recording pipeline therefore fails, deterministically, with the message only in its memory.

The task records its completion in a ledger file outside Redis (``app.tasks.probe``), so the verdict
does not depend on the component that was cut off.
"""
from __future__ import annotations

import socket
import threading
import time
import uuid

import pytest
import redis
from kombu import Connection, Exchange, Producer, Queue
from kombu.transport import redis as kombu_redis

from celeryconfig import transport
from celeryconfig.transport import Transport
from support import cut, procs

OUTAGE_SECONDS = 3.0


def _reply_end(buf: bytes) -> int | None:
    """Length of the first complete ``BRPOP`` reply in ``buf`` (RESP2 or RESP3), None if incomplete.

    Anything that is not a ``BRPOP`` reply is passed on as it is.
    """
    if buf.startswith(b"*-1\r\n"):
        return 5
    if buf.startswith(b"_\r\n"):
        return 3
    if not buf.startswith(b"*2\r\n"):
        return len(buf)
    pos = 4
    for _ in range(2):  # the key, then the message
        if len(buf) <= pos:
            return None
        if buf[pos:pos + 1] != b"$":
            return len(buf)
        newline = buf.find(b"\r\n", pos)
        if newline < 0:
            return None
        end = newline + 2 + int(buf[pos + 1:newline]) + 2
        if len(buf) < end:
            return None
        pos = end
    return pos


class CuttingProxy:
    """Forwards TCP between clients and Redis; cuts every connection right after the ``BRPOP`` reply
    that carries ``armed`` (a task id) went through, then refuses connections for ``outage`` seconds."""

    def __init__(self, upstream_port: int, outage: float):
        self.upstream_port = upstream_port
        self.outage = outage
        self.armed: bytes | None = None
        self.cut = threading.Event()
        self.down_until = 0.0
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _down(self) -> bool:
        return time.monotonic() < self.down_until

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._down():
                client.close()  # Redis is "restarting": the connection is dropped at once
                continue
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()
                continue
            state = {"brpop": False}
            with self._lock:
                self._sockets.update((client, server))
            threading.Thread(target=self._client_to_server, args=(client, server, state), daemon=True).start()
            threading.Thread(target=self._server_to_client, args=(server, client, state), daemon=True).start()

    def _client_to_server(self, client, server, state) -> None:
        try:
            while data := client.recv(65536):
                if b"BRPOP" in data:
                    state["brpop"] = True
                if self._down():
                    break  # nothing sent after the cut reaches Redis
                server.sendall(data)
        except OSError:
            pass
        finally:
            self._close(client, server)

    def _server_to_client(self, server, client, state) -> None:
        buf = b""
        try:
            while data := server.recv(65536):
                buf += data
                while buf:
                    end = _reply_end(buf) if state["brpop"] else len(buf)
                    if end is None:
                        break
                    reply, buf = buf[:end], buf[end:]
                    if self.armed and self.armed in reply:
                        self.armed = None
                        self.down_until = time.monotonic() + self.outage
                        client.sendall(reply)  # the worker gets the message whole ...
                        self.cut.set()
                        self._close_all()  # ... and then loses every connection
                        return
                    client.sendall(reply)
        except OSError:
            pass
        finally:
            self._close(client, server)

    def _close(self, *socks) -> None:
        for sock in socks:
            with self._lock:
                self._sockets.discard(sock)
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _close_all(self) -> None:
        with self._lock:
            socks = list(self._sockets)
        self._close(*socks)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self._close_all()


@pytest.fixture
def broker_behind_proxy(log_dir):
    port = procs.free_port()
    redis_proc = procs.start_redis(log_dir, port)
    proxy = CuttingProxy(port, OUTAGE_SECONDS)
    yield port, proxy
    proxy.close()
    redis_proc.stop()


def test_message_fetched_as_the_connection_drops_is_not_lost(broker_behind_proxy, log_dir, tmp_path, monkeypatch):
    port, proxy = broker_behind_proxy
    client, worker = cut.worker_behind(proxy.port, port, f"fetch-race-{port}", log_dir, tmp_path, monkeypatch)
    try:
        task_id = str(uuid.uuid4())
        proxy.armed = task_id.encode()
        client.send_task("app.tasks.probe.record", task_id=task_id, queue="default")
        assert proxy.cut.wait(30), "the worker never fetched the task through the proxy:\n" + worker.log()[-3000:]
        cut.assert_ran_once_and_left_nothing(client, worker, tmp_path, task_id,
                                             "the task fetched as the broker connection dropped")
    finally:
        worker.stop()


@pytest.mark.parametrize("url, alias", [
    ("redis://127.0.0.1:6379/0", "redis"),
    ("rediss://127.0.0.1:6380/0", "rediss"),
    ("redis+socket:///run/redis/redis.sock", "redis"),
])
def test_every_kit_url_scheme_gets_the_kits_transport(url, alias):
    conn = Connection(url)
    assert conn.transport_cls == alias  # kombu's own handling of the scheme (TLS for rediss) is kept
    assert conn.get_transport_cls() is Transport


def test_app_broker_connection_uses_the_kits_transport(celery_app):
    with celery_app.connection_for_read() as conn:
        assert isinstance(conn.transport, Transport)


def test_held_message_is_returned_once_and_unmarked(redis_server, monkeypatch):
    """The two steps of a return are idempotent: repeating one (its reply lost) pushes nothing twice."""
    queue = Queue("fetch-race-q", Exchange("fetch-race-q"), routing_key="fetch-race-q")
    with Connection(f"{redis_server}/9") as conn:
        channel = conn.default_channel
        client = channel.client
        client.flushdb()
        try:
            Producer(channel).publish({"n": 1}, exchange=queue.exchange, routing_key="fetch-race-q",
                                      declare=[queue], headers={"id": "task-1"})

            def refused(self, message, delivery_tag):
                raise redis.ConnectionError("connection lost as the message arrived")

            with monkeypatch.context() as patch:
                patch.setattr(kombu_redis.QoS, "append", refused)
                with pytest.raises(redis.ConnectionError):
                    channel.basic_get("fetch-race-q")
            assert client.llen("fetch-race-q") == 0 and transport.held_count() == 1
            [held] = transport._held_here()[channel._broker_key()]

            channel._return_held()
            assert transport.held_count() == 0
            assert client.llen("fetch-race-q") == 1
            assert client.hlen("unacked") == 0 and client.zcard("unacked_index") == 0
            # The move back repeated, as after a lost EXEC reply: nothing is pushed a second time.
            assert held.recorded and channel._return(held) == []
            assert client.llen("fetch-race-q") == 1

            message = channel.basic_get("fetch-race-q")
            assert message.payload == {"n": 1}
            assert not message.delivery_info.get("redelivered"), "a message no task saw is not a redelivery"
            message.ack()
        finally:
            client.flushdb()
