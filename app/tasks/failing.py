"""A task that fails, to show FAILURE state and the traceback (queue ``default``)."""
from ..celery import app


class ReportError(RuntimeError):
    pass


@app.task
def boom(reason="broken on purpose"):
    raise ReportError(reason)
