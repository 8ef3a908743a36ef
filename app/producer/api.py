"""HTTP API for starting and following tasks (FastAPI, served by uvicorn).

FastAPI because the seed posts' latest producer is FastAPI, and because its request and
response models document the API at /docs for free. Endpoints are synchronous functions:
FastAPI runs them in a thread pool, so the blocking Redis calls of Celery's result API never
stall the event loop.

With ``KIT_PRODUCER_TOKEN`` (or ``_FILE``) set, every endpoint but ``/healthz`` wants
``Authorization: Bearer <token>``. Redis or the broker unreachable: 503 within seconds.
"""
import logging

from fastapi import APIRouter, Body, Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse

from . import security, service

log = logging.getLogger("app.producer")


def require_token(authorization: str | None = Header(default=None)) -> None:
    if not security.token_ok(authorization):
        raise HTTPException(status_code=401, detail="missing or wrong bearer token",
                            headers={"WWW-Authenticate": "Bearer"})


api = FastAPI(title="Celery kit sample producer")
tasks = APIRouter(dependencies=[Depends(require_token)])


async def _unavailable(request: Request, exc: Exception):
    """Redis or the broker unreachable: 503; the reason goes to the log, not to the caller."""
    cause = exc.__cause__ if isinstance(exc, RuntimeError) and exc.__cause__ else exc
    log.warning("%s %s: 503, %s: %s", request.method, request.url.path, type(cause).__name__, cause)
    return JSONResponse(status_code=503, content={"detail": "Redis or the broker is unavailable"})


async def _runtime_error(request: Request, exc: RuntimeError):
    """Celery's Redis result consumer gives up with a RuntimeError caused by a connection error."""
    if isinstance(exc.__cause__, service.unavailable_errors()):
        return await _unavailable(request, exc)
    raise exc


for _error in service.unavailable_errors():
    api.add_exception_handler(_error, _unavailable)
api.add_exception_handler(RuntimeError, _runtime_error)


@api.get("/healthz")
def healthz():
    """200 when the app's Redis and the result backend answer, 503 otherwise (no token needed)."""
    return service.healthy()


@tasks.post("/tasks/{kind}", status_code=202)
def start_task(kind: str, params: dict = Body(default_factory=dict)):
    try:
        result = service.start(kind, params)
    except KeyError as exc:
        raise HTTPException(status_code=404, detail=str(exc.args[0])) from None
    except service.AlreadyRunning as exc:
        raise HTTPException(status_code=409, detail={"message": str(exc), "running": exc.task_id}) from None
    except service.Busy:
        raise HTTPException(status_code=503, detail="could not take the single-flight lock") from None
    except (ValueError, TypeError) as exc:
        raise HTTPException(status_code=422, detail=f"bad parameters for {kind}: {exc}") from None
    return {"id": result.id, "kind": kind}


@tasks.get("/tasks/{task_id}")
def task_status(task_id: str):
    return service.describe(task_id)


@tasks.delete("/tasks/{task_id}")
def cancel_task(task_id: str):
    return service.cancel(task_id)


@tasks.post("/reports", status_code=202)
def start_report(params: dict = Body(default_factory=dict)):
    """Single-flight: refuses (409) while the previous report still runs."""
    try:
        result = service.start_single_flight("report", params)
    except service.AlreadyRunning as exc:
        raise HTTPException(status_code=409, detail={"message": str(exc), "running": exc.task_id}) from None
    except service.Busy:
        raise HTTPException(status_code=503, detail="could not take the single-flight lock") from None
    return {"id": result.id, "kind": "report"}


api.include_router(tasks)
