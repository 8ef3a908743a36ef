"""Tasks that fail on purpose (queue ``default``): a FAILURE with its traceback, and a task
that kills the process running it (what the OOM killer or a crashing C extension does)."""
import os
import signal

from ..celery import app


class ReportError(RuntimeError):
    pass


@app.task
def boom(reason="broken on purpose"):
    raise ReportError(reason)


@app.task
def crash():
    """Kill the pool process running this task: late acks requeue it, the redelivery cap
    (celeryconfig.redelivery) stops the loop."""
    os.kill(os.getpid(), signal.SIGKILL)
