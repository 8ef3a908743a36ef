"""Small arithmetic tasks: smoke tests and the canvas examples (queue ``default``)."""
from ..celery import app


@app.task
def add(x, y):
    return x + y


@app.task
def mul(x, y):
    return x * y


@app.task
def xsum(numbers):
    return sum(numbers)
