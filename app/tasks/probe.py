"""Delivery probe: a task that records its own completion outside Redis.

The fault and release scenarios publish it under load and count, per task id, how often it
completed. The record must survive whatever is being broken (Redis, the network, the worker's
process, the whole VM), so it is an append-only file on the worker's own disk, fsynced before the
task returns: a line there means the task body ran to its end on that host.

The file is ``$APP_LEDGER_DIR/ledger.jsonl`` or, under systemd, ``$STATE_DIRECTORY/ledger.jsonl``
(each worker unit has a state directory of its own).
"""
import json
import os
import socket
import time

from celery.utils.log import get_task_logger

from celeryconfig.reliability import LONG_TASK_TIME_LIMIT

from ..celery import app

logger = get_task_logger(__name__)
LEDGER_NAME = "ledger.jsonl"


def ledger_dir() -> str | None:
    directory = os.environ.get("APP_LEDGER_DIR") or os.environ.get("STATE_DIRECTORY")
    # systemd may list several state directories, separated by colons: the first is the unit's.
    return directory.split(":")[0] if directory else None


def append_line(path: str, record: dict) -> None:
    """Append one JSON line and fsync it: the line is on disk when this returns."""
    data = (json.dumps(record, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


@app.task(bind=True, time_limit=LONG_TASK_TIME_LIMIT)
def record(self, seconds=0.0, allocate_mib=0, log_lines=0):
    """Sleep ``seconds`` (holding ``allocate_mib`` MiB of touched memory), log ``log_lines`` numbered
    INFO lines as fast as it can (what reaches the journal is counted by the lab's log test), then
    record completion."""
    block = b"\x01" * (allocate_mib << 20) if allocate_mib else b""
    time.sleep(seconds)
    del block
    for number in range(log_lines):
        logger.info("probe %s log line %d", self.request.id, number)
    directory = ledger_dir()
    if directory is None:
        raise RuntimeError("no ledger directory: set APP_LEDGER_DIR (systemd sets STATE_DIRECTORY)")
    delivery = self.request.delivery_info or {}
    append_line(os.path.join(directory, LEDGER_NAME), {
        "id": self.request.id,
        "host": socket.gethostname(),
        "worker": self.request.hostname,
        "queue": delivery.get("routing_key"),
        "redelivered": bool(delivery.get("redelivered")),
        "done": time.time(),
    })
    return self.request.id
