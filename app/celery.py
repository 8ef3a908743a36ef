"""Builds the Celery app, the way Celery's examples/next-steps/proj does.

Configuration lives in the separate ``celeryconfig`` package; every deployment-specific value
in it comes from environment variables.
"""
from celery import Celery

app = Celery("app", include=[
    "app.tasks.math",
    "app.tasks.urgent",
    "app.tasks.long",
    "app.tasks.io",
    "app.tasks.bulk",
    "app.tasks.failing",
    "app.tasks.periodic",
    "app.tasks.probe",
])
app.config_from_object("celeryconfig")

if __name__ == "__main__":
    app.start()
