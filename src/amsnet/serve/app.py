"""The ASGI application behind ``amsnet serve``: one static page and a small JSON API.

Routes (all answers JSON except the page, the previews and the download):

* ``GET /``: the page (``page.html``, self-contained: no script or font from the network).
* ``GET /api/models``: the models offered, ``[{name, variants, summary}]``, default first.
* ``POST /api/jobs?name=FILE&model=NAME&variant=B|E&ensemble=1..8&strength=0..1``: the photo's
  bytes as the request body, not a multipart form (it is streamed straight into the queue's
  folder with its size checked as it arrives, so nothing is spooled elsewhere); ``ensemble``:
  the mean over that many flips and rotations (default 1); ``strength``: the share of the
  noise removal kept (default 1, :mod:`amsnet.ops.strength`). ``202 {id}``, or
  ``4xx/503 {error}``.
* ``GET /api/jobs/{id}``: state, queue position, tile progress, quality report.
* ``GET /api/jobs/{id}/noisy.png`` and ``/denoised.png``: 8-bit previews at full size.
* ``GET /api/jobs/{id}/result``: the denoised file in the input's format, as an attachment.

Starlette (with uvicorn as the server) was chosen over Gradio: the page needs an upload,
polling and one image comparison, which a 300-line static page does, while Gradio would add
about 40 packages, a front-end bundle and its own upload spooling outside our folder, and
cannot be bounded as tightly (see ``docs/serve.md``).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from amsnet.serve.jobs import JobQueue, UploadRefusedError


def _number_or_text(text: str, kind: type[int] | type[float]) -> int | float | str:
    """``text`` as a ``kind`` number, or unchanged when it is not one: the shared check then
    refuses it with the same message as an out-of-range number."""
    try:
        return kind(text)
    except ValueError:
        return text


def create_app(jobs: JobQueue) -> Any:
    """The Starlette application serving ``jobs`` (closed when the application shuts down)."""
    import contextlib

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse, HTMLResponse, JSONResponse
    from starlette.routing import Route

    page = (resources.files("amsnet.serve") / "page.html").read_text(encoding="utf-8")

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    async def models(request: Request) -> JSONResponse:
        return JSONResponse(
            [
                {"name": m.name, "variants": list(m.variants), "summary": m.summary}
                for m in jobs.models.values()
            ]
        )

    async def submit(request: Request) -> JSONResponse:
        params = request.query_params
        name = params.get("name", "")
        length = request.headers.get("content-length")
        try:
            size = int(length) if length is not None else None
            model = params.get("model", jobs.default_model)
            count = _number_or_text(params.get("ensemble", "1"), int)
            strength = _number_or_text(params.get("strength", "1"), float)
            job = jobs.new_job(name, model, params.get("variant", "B"), size, count, strength)
            received = 0
            with open(job.upload, "wb") as file:
                async for chunk in request.stream():
                    received += len(chunk)
                    if jobs.too_large(received):
                        file.close()
                        raise jobs.reject_oversize(job, received)
                    file.write(chunk)
            if received == 0:
                job.upload.unlink(missing_ok=True)
                raise UploadRefusedError(f"{name!r} arrived empty; pick the file again")
            jobs.enqueue(job)
        except ValueError:
            return JSONResponse({"error": "Content-Length is not a number"}, status_code=400)
        except UploadRefusedError as error:
            return JSONResponse({"error": str(error)}, status_code=error.status)
        return JSONResponse({"id": job.id}, status_code=202)

    def _job_or_404(request: Request):
        return jobs.get(request.path_params["job_id"])

    async def status(request: Request) -> JSONResponse:
        answer = jobs.status(request.path_params["job_id"])
        if answer is None:
            return JSONResponse({"error": "no such job (finished too long ago?)"}, 404)
        return JSONResponse(answer)

    async def preview(request: Request):
        job = _job_or_404(request)
        which = request.path_params["which"]
        if job is None or job.state != "done" or which not in ("noisy", "denoised"):
            return JSONResponse({"error": "no such preview"}, status_code=404)
        return FileResponse(job.preview(which), media_type="image/png")

    async def result(request: Request):
        job = _job_or_404(request)
        if job is None or job.state != "done" or not job.result.is_file():
            return JSONResponse({"error": "no result for this job"}, status_code=404)
        return FileResponse(job.result, filename=job.download_name)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        jobs.close()

    return Starlette(
        routes=[
            Route("/", index),
            Route("/api/models", models),
            Route("/api/jobs", submit, methods=["POST"]),
            Route("/api/jobs/{job_id:str}", status),
            Route("/api/jobs/{job_id:str}/{which:str}.png", preview),
            Route("/api/jobs/{job_id:str}/result", result),
        ],
        lifespan=lifespan,
    )
