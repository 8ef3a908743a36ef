"""Redis transport that does not lose a message fetched as the broker connection drops.

Kombu's Redis transport takes a message off its queue with ``BRPOP`` and only then records it as
unacknowledged (``ZADD unacked_index`` + ``HSET unacked``, one pipeline in ``QoS.append``), which is
what late acks and the visibility-timeout restore rely on. When the connection drops between the two
(Redis restarted, crashed or cut off while a worker fetches), the pipeline raises, the message exists
only in the worker's memory, and kombu drops it.

This transport keeps such a message instead: ``QoS.append`` holds the raw message (its payload,
exchange, routing key, delivery tag) in the process when recording it fails, and lets the error end
the consumer's connection as before. The next time a channel to the same broker works (a new
channel, or before every ``BRPOP`` and ``basic_get``) the held message is first recorded as kombu
would have (``ZADD`` + ``HSET``, so it is safe in Redis from then on and the visibility timeout
would restore it) and then moved back to the consuming end of its queue in one ``MULTI``
transaction that also removes the unacknowledged record; only then does the worker fetch again.
Both steps are idempotent, so a step whose reply was lost is repeated without duplicating the
message. The message goes back unchanged: it never reached a task, so it is not marked
``redelivered`` (the redelivery cap, ``celeryconfig.redelivery``, counts only real redeliveries).
The commands used are those kombu's own restore uses (``ZADD HSET WATCH HGET MULTI ZREM HDEL RPUSH
EXEC``).

Covered: a ``BRPOP`` (or ``basic_get``) reply the worker received whole, whose recording failed for
any reason (connection loss at that moment, the most common case, or a refused write).

A ``BRPOP`` reply that is late rather than lost is kept too. Kombu's watchdog drops a consuming
connection whose ``BRPOP`` has had no reply for ``brpop_timeout`` plus ``health_check_interval``
(about 26 s): a broker that vanished without closing the connection (a network cut, a power cut).
If Redis popped a message just before the cut, its reply is still being retransmitted by the
broker's TCP and arrives when the cut heals; kombu would have closed the socket by then, and the
message, no longer in Redis, would be gone. This transport closes nothing at that moment: it takes
the socket away from the connection (kombu reconnects on a new one as before) and watches it for up
to ``LATE_REPLY_WAIT`` seconds (about as long as Linux keeps retransmitting). A message arriving on
it is held and returned to its queue as above; a nil reply, an error or the end of the wait closes
the socket.

Not covered, the message is lost as with kombu's transport:

- the worker process ends while it holds a message, or while it still waits for a late reply,
  before the broker is reachable again: killed, or stopped during the broker outage (its log then
  names a held message at exit);
- a reply Redis sent that never reaches the worker at all: Redis killed after it popped the message
  but before the reply left the host, a cut longer than the broker's TCP retransmission (then
  Redis's kernel drops the reply), or a reply left unread because the worker had no free prefetch
  slot when the connection closed. Only an atomic move into a processing list on the server closes
  those, and Redis has no blocking move from several lists (a kombu worker waits on every queue and
  priority at once), so this transport does not change how messages are fetched.

Importing this module (``celeryconfig`` does) registers the transport under kombu's ``redis`` and
``rediss`` transport names, so every ``redis://``, ``rediss://`` and ``redis+socket://`` URL in the
process uses it. The ``broker_transport`` setting would cover ``redis://`` only: kombu resolves a
``redis+socket://`` URL to ``redis`` whatever the setting says, and applies its ``rediss`` TLS
defaults by that name.
"""
from __future__ import annotations

import atexit
import logging
import os
import select
import socket
import threading
from dataclasses import dataclass
from time import monotonic, time

from kombu import transport as _kombu_transports
from kombu.exceptions import InconsistencyError
from kombu.transport import redis as _redis
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

logger = logging.getLogger("celeryconfig.transport")

TRANSPORT = f"{__name__}:Transport"
ALIASES = ("redis", "rediss")

#: After a return failed with an error other than a lost connection, wait this long before retrying.
RETRY_AFTER_ERROR = 10.0
#: How long a consuming connection given up as stale is watched for a late BRPOP reply: Linux's
#: default ``tcp_retries2`` (15) makes the broker's kernel retransmit an unacknowledged reply for
#: about 924 s before it gives up.
LATE_REPLY_WAIT = 960.0


@dataclass
class _Held:
    tag: str
    record: str  # JSON [payload, exchange, routing_key], as kombu stores it in the unacked hash
    task_id: str | None
    recorded: bool = False  # step 1 (ZADD + HSET) done


_lock = threading.RLock()
_held: dict[tuple, list[_Held]] = {}
_owner_pid: int | None = None
_retry_at: dict[tuple, float] = {}


def _held_here() -> dict[tuple, list[_Held]]:
    """The held messages of this process: a forked child starts with none (they are its parent's)."""
    global _owner_pid
    if _owner_pid != os.getpid():
        _held.clear()
        _retry_at.clear()
        _owner_pid = os.getpid()
    return _held


def held_count() -> int:
    with _lock:
        return sum(len(entries) for entries in _held_here().values())


def _keep(broker_key: tuple, payload: dict, tag: str, exchange: str, routing_key: str) -> _Held:
    """Hold a message taken off its queue, as kombu would record it in the unacked hash."""
    entry = _Held(tag=tag, record=dumps([payload, exchange, routing_key]),
                  task_id=(payload.get("headers") or {}).get("id"))
    with _lock:
        _held_here().setdefault(broker_key, []).append(entry)
    return entry


class QoS(_redis.QoS):
    def append(self, message, delivery_tag):
        try:
            super().append(message, delivery_tag)
        except BaseException as exc:
            self.channel._hold(message, delivery_tag, exc)
            raise


class Channel(_redis.Channel):
    QoS = QoS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The connection answered PING: a good moment to return what an earlier one left held.
        try:
            self._return_held()
        except self.connection_errors:
            logger.debug("returning held messages: connection error, retried before the next fetch",
                         exc_info=True)

    def _broker_key(self) -> tuple:
        params = self.pool.connection_kwargs
        return (params.get("host"), params.get("port"), params.get("path"), params.get("db"),
                self.global_keyprefix, self.unacked_key, self.unacked_index_key)

    def _hold(self, message, delivery_tag, exc) -> None:
        delivery = message.delivery_info
        entry = _keep(self._broker_key(), message._raw, delivery_tag, delivery["exchange"], delivery["routing_key"])
        logger.warning("Message %s (task %s) was taken off queue %r but could not be recorded as unacknowledged"
                       " (%r): kept in memory, it goes back to its queue as soon as the broker is reachable",
                       delivery_tag, entry.task_id, delivery["routing_key"], exc)

    def _return_held(self) -> None:
        """Put every message held for this broker back at the consuming end of its queue.

        Raises the connection error when the broker cannot be reached; other errors are logged and
        retried after ``RETRY_AFTER_ERROR`` seconds, without stopping the consumer.
        """
        if not _held:  # the common case, before every BRPOP: nothing to do
            return
        with _lock:
            key = self._broker_key()
            entries = _held_here().get(key)
            if not entries or monotonic() < _retry_at.get(key, 0.0):
                return
            # Newest first: each goes to the consuming end, so the oldest is fetched first again.
            for entry in reversed(list(entries)):
                try:
                    queues = self._return(entry)
                except self.connection_errors:
                    raise
                except Exception:
                    _retry_at[key] = monotonic() + RETRY_AFTER_ERROR
                    logger.exception("Could not return held message %s (task %s) to its queue; retrying in %ss",
                                     entry.tag, entry.task_id, RETRY_AFTER_ERROR)
                    return
                entries.remove(entry)
                logger.warning("Returned held message %s (task %s) to queue(s) %s",
                               entry.tag, entry.task_id, ", ".join(queues) or "(none: already returned)")
            if not entries:
                _held_here().pop(key, None)
                _retry_at.pop(key, None)

    def _return(self, entry: _Held) -> list[str]:
        payload, exchange, routing_key = loads(entry.record)
        if not entry.recorded:
            # Step 1, what QoS.append could not do: from here on the message is safe in Redis.
            with self.conn_or_acquire() as client:
                with client.pipeline() as pipe:
                    pipe.zadd(self.unacked_index_key, {entry.tag: time()})
                    pipe.hset(self.unacked_key, entry.tag, entry.record)
                    pipe.execute()
            entry.recorded = True
        try:
            queues = self._lookup(exchange, routing_key) or [routing_key]
        except InconsistencyError:  # no bindings in Redis (yet): the kit's queues are named after their routing keys
            queues = [routing_key]
        priority = self._get_message_priority(payload, reverse=False)
        moved: list[str] = []

        def move_back(pipe):
            # Step 2, as kombu's restore_by_tag but without the redelivered mark: only if the record is
            # still there, so a repeat after a lost EXEC reply does not push the message twice.
            moved.clear()
            present = pipe.hget(self.unacked_key, entry.tag)
            pipe.multi()
            pipe.zrem(self.unacked_index_key, entry.tag)
            pipe.hdel(self.unacked_key, entry.tag)
            if present:
                message = dumps(loads(bytes_to_str(present))[0])
                for queue in queues:
                    pipe.rpush(self._q_for_pri(queue, priority), message)
                    moved.append(queue)

        with self.conn_or_acquire() as client:
            client.transaction(move_back, self.unacked_key)
        return moved

    def _brpop_start(self, timeout=None):
        self._return_held()
        return super()._brpop_start(timeout)

    def _get(self, queue):
        self._return_held()
        return super()._get(queue)


def _brpop_reply(buf: bytes) -> tuple[bool, bytes | None]:
    """Read a ``BRPOP`` reply from the start of ``buf``: (complete, the message or None).

    A nil reply (RESP2 ``*-1``, RESP3 ``_``), an error or anything else but a two-element array is
    complete and carries no message.
    """
    head_end = buf.find(b"\r\n")
    if head_end < 0:
        return False, None
    if buf[:head_end] != b"*2":
        return True, None
    pos, items = head_end + 2, []
    for _ in range(2):  # the queue's key, then the message
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return False, None
        if buf[pos:pos + 1] != b"$":
            return True, None
        start = line_end + 2
        end = start + int(buf[pos + 1:line_end])
        if len(buf) < end + 2:
            return False, None
        items.append(buf[start:end])
        pos = end + 2
    return True, items[1]


def _close_socket(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _await_late_reply(sock, broker_key: tuple, deadline: float) -> None:
    """Read what a connection given up as stale still receives; hold a message that arrives on it."""
    buf = b""
    try:
        while True:
            pending = getattr(sock, "pending", None)  # TLS: bytes already decrypted, select cannot see them
            if not (pending and pending()):
                left = deadline - monotonic()
                if left <= 0:
                    logger.info("No late BRPOP reply on the connection given up as stale; closed it")
                    return
                ready, _, _ = select.select([sock], [], [], left)
                if not ready:
                    continue
            data = sock.recv(65536)
            if not data:
                return  # closed by the broker's side: no reply is coming
            buf += data
            complete, item = _brpop_reply(buf)
            if complete:
                break
    except (OSError, ValueError):
        logger.debug("The connection given up as stale failed while a late BRPOP reply was awaited",
                     exc_info=True)
        return
    finally:
        _close_socket(sock)
    if item is None:
        return
    try:
        payload = loads(bytes_to_str(item))
        properties = payload["properties"]
        delivery = properties["delivery_info"]
        entry = _keep(broker_key, payload, properties["delivery_tag"], delivery["exchange"], delivery["routing_key"])
    except (ValueError, TypeError, KeyError):
        logger.error("A late BRPOP reply on a connection given up as stale is not a kombu message; it is lost: %r",
                     item[:500])
        return
    logger.warning("Message %s (task %s) arrived late, on a connection given up as stale: kept in memory, it goes"
                   " back to its queue %r as soon as the broker is reachable",
                   entry.tag, entry.task_id, delivery.get("routing_key"))


class MultiChannelPoller(_redis.MultiChannelPoller):
    def maybe_check_brpop_health(self):
        """Kombu's watchdog for a ``BRPOP`` without reply, but the stale socket is watched, not closed.

        The checks are kombu's own (``kombu.transport.redis.MultiChannelPoller``); only what is done
        with the socket differs.
        """
        now = monotonic()
        for channel in self._channels:
            connection = channel._in_poll
            if not connection or channel._brpop_sent_at is None \
                    or not channel.brpop_timeout or not channel.health_check_interval:
                continue
            waited = now - channel._brpop_sent_at
            if waited < channel.brpop_timeout + channel.health_check_interval:
                continue
            sock = getattr(connection, "_sock", None)
            if sock is None or _redis._socket_readable(sock):
                continue
            logger.warning("Redis BRPOP got no reply for %.0f seconds; dropping stale connection (consuming goes on"
                           " on a new one; the old one is watched for %.0f s for a message already sent on it)",
                           waited, LATE_REPLY_WAIT)
            connection._sock = None  # disconnect() then leaves the socket open for the watcher
            deadline = monotonic() + LATE_REPLY_WAIT
            threading.Thread(target=_await_late_reply, args=(sock, channel._broker_key(), deadline),
                             name="celeryconfig-late-brpop-reply", daemon=True).start()
            connection.disconnect()


class Transport(_redis.Transport):
    Channel = Channel

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cycle = MultiChannelPoller()


def install() -> None:
    """Make kombu use this transport for ``redis://``, ``rediss://`` and ``redis+socket://`` URLs."""
    for alias in ALIASES:
        _kombu_transports.TRANSPORT_ALIASES[alias] = TRANSPORT
        _kombu_transports._transport_cache.pop(alias, None)


@atexit.register
def _report_lost_at_exit() -> None:
    with _lock:
        if _owner_pid != os.getpid():
            return
        for entries in _held.values():
            for entry in entries:
                logger.error("Message %s (task %s) was taken off its queue while the broker connection failed"
                             " and could not be returned before this process ended: it is lost",
                             entry.tag, entry.task_id)


install()
