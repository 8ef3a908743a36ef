"""HTTP API for starting and following tasks (FastAPI, served by uvicorn).

FastAPI because the seed posts' latest producer is FastAPI, and because its request and
response models document the API at /docs for free. Endpoints are synchronous functions:
FastAPI runs them in a thread pool, so the blocking Redis calls of Celery's result API never
stall the event loop.
"""
from fastapi import Body, FastAPI, HTTPException

from . import service

api = FastAPI(title="Celery kit sample producer")


@api.get("/healthz")
def healthz():
    return {"ok": True}


@api.post("/tasks/{kind}", status_code=202)
def start_task(kind: str, params: dict = Body(default_factory=dict)):
    try:
        result = service.start(kind, params)
    except KeyError as exc:
        raise HTTPException(status_code=404, detail=str(exc.args[0])) from None
    except (ValueError, TypeError) as exc:
        raise HTTPException(status_code=422, detail=f"bad parameters for {kind}: {exc}") from None
    return {"id": result.id, "kind": kind}


@api.get("/tasks/{task_id}")
def task_status(task_id: str):
    return service.describe(task_id)


@api.delete("/tasks/{task_id}")
def cancel_task(task_id: str):
    return service.cancel(task_id)


@api.post("/reports", status_code=202)
def start_report(params: dict = Body(default_factory=dict)):
    """Single-flight: refuses (409) while the previous report still runs."""
    try:
        result = service.start_single_flight("report", params)
    except service.AlreadyRunning as exc:
        raise HTTPException(status_code=409, detail={"message": str(exc), "running": exc.task_id}) from None
    except service.Busy:
        raise HTTPException(status_code=503, detail="could not take the single-flight lock") from None
    return {"id": result.id, "kind": "report"}
