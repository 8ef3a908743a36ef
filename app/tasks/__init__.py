"""Tasks, one module per queue class (routes in celeryconfig/queues.py)."""
