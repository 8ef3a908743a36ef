"""A message Redis popped just before a network cut must not be lost when the cut heals.

A worker waits in ``BRPOP``. The network between it and Redis is cut right after that command
reached Redis, and a task is published directly to Redis at that moment: Redis pops it and sends
the reply into the cut, where TCP keeps retransmitting it. Kombu's watchdog gives the connection up
when its ``BRPOP`` has had no reply for ``brpop_timeout`` plus ``health_check_interval`` (26 s with
kombu's defaults, which the kit keeps) and closes it; the reply delivered when the cut heals then
reaches a closed socket, and the message, no longer in Redis, is gone. The kit's transport
(``celeryconfig/transport.py``) keeps watching the old socket instead and returns a late message to
its queue.

The worker's event loop does not run the watchdog during the cut: its next heartbeat, published
on another connection, waits for Redis's reply. It runs when that reply arrives after the cut heals,
finds the ``BRPOP`` reply, whose retransmission backoff grew during the cut, not there yet, and gives
the connection up. The cut is a test-local TCP proxy that stops forwarding in both directions and
holds what each side sends until it heals; then it delivers the held ``BRPOP`` reply a few seconds
after the rest. Completion is read from the task's ledger file, outside Redis.
"""
from __future__ import annotations

import socket
import threading
import time
import uuid

import pytest

from support import cut, procs

#: Longer than kombu's watchdog: brpop_timeout (1 s) + health_check_interval (25 s).
CUT_SECONDS = 32
LATE_REPLY_DELAY = 5
WATCHDOG_LOG = "Redis BRPOP got no reply"
LATE_LOG = "arrived late, on a connection given up as stale"


class _Pipe:
    """One direction of one proxied connection; holds what it reads while the network is cut."""

    def __init__(self, proxy: PartitioningProxy, src: socket.socket, dst: socket.socket, upstream: bool):
        self.proxy, self.src, self.dst, self.upstream = proxy, src, dst, upstream
        self.held: list[bytes] = []
        self.holding = proxy.partitioned
        self.eof = False
        self.lock = threading.Lock()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        while True:
            try:
                data = self.src.recv(65536)
            except OSError:
                data = b""
            with self.lock:
                if not data:
                    self.eof = True
                    if not self.holding:
                        self._close_dst()
                    return
                if self.holding:
                    self.held.append(data)
                    continue
                self._send(data)
            if self.upstream and b"BRPOP" in data and self.proxy.cut_after_brpop.is_set():
                self.proxy.cut_after_brpop.clear()
                self.proxy.partition()  # the BRPOP reached Redis; its reply will not come back

    def _send(self, data: bytes) -> None:
        try:
            self.dst.sendall(data)
        except OSError:
            pass

    def _close_dst(self) -> None:
        try:
            self.dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def flush(self) -> None:
        """The cut heals: what was held arrives, then a close that happened during the cut."""
        with self.lock:
            for data in self.held:
                self._send(data)
            self.held.clear()
            self.holding = False
            if self.eof:
                self._close_dst()

    def held_bytes(self) -> bytes:
        with self.lock:
            return b"".join(self.held)


class PartitioningProxy:
    """TCP between the worker and Redis; arm ``cut_after_brpop`` to cut the network right after a BRPOP."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.partitioned = False
        self.cut_after_brpop = threading.Event()
        self.cut = threading.Event()
        self.pipes: list[_Pipe] = []
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
                server = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                return
            self.pipes += [_Pipe(self, client, server, upstream=True), _Pipe(self, server, client, upstream=False)]

    def partition(self) -> None:
        self.partitioned = True
        for pipe in list(self.pipes):
            with pipe.lock:
                pipe.holding = True
        self.cut.set()

    def held_from_redis(self) -> bytes:
        return b"".join(pipe.held_bytes() for pipe in self.pipes if not pipe.upstream)

    def heal(self, late: bytes | None = None, delay: float = 0.0) -> None:
        """Deliver what was held; a reply from Redis containing ``late`` arrives ``delay`` s after the rest,
        as a retransmission whose backoff grew during the cut does."""
        self.partitioned = False
        for pipe in list(self.pipes):
            if late and not pipe.upstream and late in pipe.held_bytes():
                threading.Timer(delay, pipe.flush).start()
            else:
                pipe.flush()

    def close(self) -> None:
        self._listener.close()
        for pipe in self.pipes:
            for sock in (pipe.src, pipe.dst):
                sock.close()


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


@pytest.fixture
def broker_behind_partition(log_dir):
    port = procs.free_port()
    redis_proc = procs.start_redis(log_dir, port)
    proxy = PartitioningProxy(port)
    yield port, proxy
    proxy.close()
    redis_proc.stop()


def test_message_popped_into_a_network_cut_runs_once_after_it_heals(broker_behind_partition, log_dir, tmp_path,
                                                                     monkeypatch):
    port, proxy = broker_behind_partition
    client, worker = cut.worker_behind(proxy.port, port, f"partition-{port}", log_dir, tmp_path, monkeypatch)
    try:
        warmup = str(uuid.uuid4())  # opens the client's own broker connection before the cut
        client.send_task("app.tasks.probe.record", task_id=warmup, queue="default")
        assert _wait(lambda: cut.completions(tmp_path, warmup) == 1, 30), worker.log()[-3000:]

        # BRPOP waits at most 1 s: the task must reach Redis within that second to be popped into the
        # cut. If the reply held is a nil one instead, heal and try again.
        for _ in range(5):
            task_id = str(uuid.uuid4())
            proxy.cut.clear()
            proxy.cut_after_brpop.set()
            assert proxy.cut.wait(30), "the worker sent no BRPOP through the proxy:\n" + worker.log()[-3000:]
            client.send_task("app.tasks.probe.record", task_id=task_id, queue="default")
            if _wait(lambda task_id=task_id: task_id.encode() in proxy.held_from_redis(), 2):
                break
            proxy.heal()
            assert _wait(lambda task_id=task_id: cut.completions(tmp_path, task_id) == 1, 30), worker.log()[-3000:]
        else:
            pytest.fail("Redis never popped the task into the cut in 5 tries")

        # The cut outlasts kombu's watchdog. When it heals, the BRPOP reply comes last: its retransmission
        # backoff grew during the cut.
        time.sleep(CUT_SECONDS)
        proxy.heal(late=task_id.encode(), delay=LATE_REPLY_DELAY)
        assert _wait(lambda: WATCHDOG_LOG in worker.log(), 30), (
            "kombu's watchdog never gave the stale connection up:\n" + worker.log()[-3000:])

        cut.assert_ran_once_and_left_nothing(client, worker, tmp_path, task_id,
                                             "the task popped into the cut", timeout=30)
        assert LATE_LOG in worker.log()
    finally:
        worker.stop()


@pytest.mark.parametrize("reply, expected", [
    (b"*2\r\n$7\r\ndefault\r\n$5\r\nhello\r\n", (True, b"hello")),
    (b"*2\r\n$7\r\ndefault\r\n$5\r\nhel", (False, None)),  # the rest is still on its way
    (b"*2\r\n$7\r\ndefa", (False, None)),
    (b"*2", (False, None)),
    (b"*-1\r\n", (True, None)),  # BRPOP timed out (RESP2)
    (b"_\r\n", (True, None)),  # the same in RESP3
    (b"-NOPERM this user has no permissions\r\n", (True, None)),
])
def test_late_reply_is_read_whole_or_not_at_all(reply, expected):
    from celeryconfig.transport import _brpop_reply
    assert _brpop_reply(reply) == expected
