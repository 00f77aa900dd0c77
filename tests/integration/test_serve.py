"""``amsnet serve``: the JSON API through Starlette's test client, and the page in a real
browser (Debian's headless Chromium driven by Playwright), both against ``amsnet denoise``."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
import torch

from amsnet.checkpoint import save_pretrained
from amsnet.cli import main
from amsnet.data.io import read_integer_image, write_image
from amsnet.methods import AMSNet
from amsnet.nets import create_net
from amsnet.serve import JobQueue, ModelChoice, ServeLimits
from tests.nets_tiny import TINY

pytest.importorskip("starlette", reason="amsnet[serve] is not installed")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def weights(tmp_path):
    method = AMSNet(create_net("dncnn", preset=None, **TINY["dncnn"]))
    return save_pretrained(method, tmp_path / "tiny.safetensors")


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "in" / "holiday photo.png"
    write_image(path, rng.integers(0, 65535, (40, 52, 3), dtype=np.uint16))
    return path


def _queue(weights, tmp_path, **limits) -> JobQueue:
    model = ModelChoice("tiny", str(weights), ("B", "E"), summary="tiny AMSNet")
    folder = tmp_path / "serve"
    folder.mkdir()
    return JobQueue([model], limits=ServeLimits(**limits), device="cpu", folder=folder)


def _cli_result(weights, photo, tmp_path, *flags: str) -> np.ndarray:
    out = tmp_path / ("cli" + "".join(flags))
    args = ["denoise", str(photo), "-o", str(out), "--weights", str(weights), "--device", "cpu"]
    assert main([*args, *flags, "--quiet"]) == 0
    return read_integer_image(out / photo.name).array


def _wait(client, job_id: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = client.get(f"/api/jobs/{job_id}").json()
        if state["state"] in ("done", "failed"):
            return state
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def test_the_api_denoises_like_the_cli_and_keeps_nothing_but_the_result(weights, photo, tmp_path):
    from starlette.testclient import TestClient

    from amsnet.serve.app import create_app

    jobs = _queue(weights, tmp_path)
    with TestClient(create_app(jobs)) as client:
        assert client.get("/").text.startswith("<!doctype html>")
        assert client.get("/api/models").json() == [
            {"name": "tiny", "variants": ["B", "E"], "summary": "tiny AMSNet"}
        ]
        reply = client.post(
            "/api/jobs",
            params={"name": photo.name, "model": "tiny", "variant": "E"},
            content=photo.read_bytes(),
        )
        assert reply.status_code == 202
        state = _wait(client, reply.json()["id"])
        assert state["state"] == "done", state["error"]
        assert (state["width"], state["height"]) == (52, 40)
        assert set(state["report"]) and state["summary"]
        download = client.get(f"/api/jobs/{state['id']}/result")
        assert download.status_code == 200
        assert 'filename="holiday_photo-denoised.png"' in download.headers["content-disposition"]
        served = tmp_path / "served.png"
        served.write_bytes(download.content)
        result = read_integer_image(served).array
        assert result.dtype == np.uint16  # 16 bits in, 16 bits out
        assert np.array_equal(result, _cli_result(weights, photo, tmp_path, "--variant", "E"))
        for which in ("noisy", "denoised"):
            preview = client.get(f"/api/jobs/{state['id']}/{which}.png")
            assert preview.status_code == 200 and preview.content[:4] == b"\x89PNG"
        # The upload is gone; only the result and its previews remain, inside the folder.
        names = sorted(p.name for p in jobs.folder.iterdir())
        job = state["id"]
        assert names == [
            f"{job}-preview-denoised.png",
            f"{job}-preview-noisy.png",
            f"{job}-result.png",
        ]


def _served(client, photo, tmp_path, **params: str) -> tuple[dict, np.ndarray]:
    """Upload ``photo`` with ``params``, wait, download: the job's state and its pixels."""
    body = photo.read_bytes()
    reply = client.post("/api/jobs", params={"name": photo.name, **params}, content=body)
    state = _wait(client, reply.json()["id"])
    assert state["state"] == "done"
    served = tmp_path / f"served-{state['id']}.png"
    served.write_bytes(client.get(f"/api/jobs/{state['id']}/result").content)
    return state, read_integer_image(served).array


@pytest.mark.parametrize(
    "params, flags",
    [
        ({"variant": "E", "ensemble": "8"}, ("--variant", "E", "--ensemble", "8")),
        ({"strength": "0.3"}, ("--strength", "0.3")),
    ],
)
def test_the_self_ensemble_and_the_strength_are_the_clis(weights, photo, tmp_path, params, flags):
    from starlette.testclient import TestClient

    from amsnet.serve.app import create_app

    with TestClient(create_app(_queue(weights, tmp_path))) as client:
        state, served = _served(client, photo, tmp_path, **params)
        _, plain = _served(client, photo, tmp_path, variant=params.get("variant", "B"))
    assert all(str(state[key]) == value for key, value in params.items())
    assert np.array_equal(served, _cli_result(weights, photo, tmp_path, *flags))
    assert not np.array_equal(served, plain)


def test_a_jpeg_comes_back_a_jpeg_with_its_exif_and_icc_profile(weights, tmp_path):
    from PIL import Image as PILImage
    from starlette.testclient import TestClient

    from amsnet.data.io import read_image
    from amsnet.serve.app import create_app

    exif = PILImage.Exif()
    exif[0x010F] = "TestCam"  # Make
    photo = tmp_path / "camera.jpg"
    pixels = np.random.default_rng(1).integers(0, 255, (48, 40, 3), dtype=np.uint8)
    PILImage.fromarray(pixels).save(photo, icc_profile=b"icc" * 50, exif=exif.tobytes())
    with TestClient(create_app(_queue(weights, tmp_path))) as client:
        reply = client.post("/api/jobs", params={"name": photo.name}, content=photo.read_bytes())
        state = _wait(client, reply.json()["id"])
        assert state["state"] == "done", state["error"]
        served = tmp_path / "served.jpg"
        served.write_bytes(client.get(f"/api/jobs/{state['id']}/result").content)
    result = read_image(served)
    assert result.format == "JPEG" and result.icc_profile == b"icc" * 50
    kept = PILImage.Exif()
    kept.load(result.exif)
    assert kept[0x010F] == "TestCam"


def test_bad_uploads_are_refused_with_a_reason(weights, photo, tmp_path):
    from starlette.testclient import TestClient

    from amsnet.serve.app import create_app

    jobs = _queue(weights, tmp_path, max_upload_bytes=4000, max_pixels=1000)
    with TestClient(create_app(jobs)) as client:

        def post(name, body, **params):
            return client.post("/api/jobs", params={"name": name, **params}, content=body)

        reply = post("notes.txt", b"hello")
        assert reply.status_code == 415 and "not a photo format" in reply.json()["error"]
        reply = post("big.png", photo.read_bytes())
        assert reply.status_code == 413 and "MiB" in reply.json()["error"]
        small = tmp_path / "small.png"
        write_image(small, torch.rand(3, 40, 30))  # 1200 pixels > 1000
        reply = post("small.png", small.read_bytes())
        assert reply.status_code == 413 and "megapixels" in reply.json()["error"]
        reply = post("broken.jpg", b"\xff\xd8 not really a jpeg")
        assert reply.status_code == 415 and "'broken.jpg'" in reply.json()["error"]
        assert str(jobs.folder) not in reply.json()["error"]
        reply = post("a.png", b"x", model="nope")
        assert reply.status_code == 400 and "unknown model" in reply.json()["error"]
        reply = post("a.png", b"", variant="X")
        assert reply.status_code == 400
        for ensemble in ("9", "0", "two", "-1"):
            reply = post("a.png", b"x", ensemble=ensemble)
            assert reply.status_code == 400 and "ensemble" in reply.json()["error"], ensemble
        for strength in ("1.5", "-0.1", "half", "nan"):
            reply = post("a.png", b"x", strength=strength)
            assert reply.status_code == 400 and "strength" in reply.json()["error"], strength
        reply = post("a.png", b"")
        assert reply.status_code == 400 and "empty" in reply.json()["error"]
        assert client.get("/api/jobs/0123456789abcdef").status_code == 404
        assert client.get("/api/jobs/../../etc/passwd").status_code == 404
        assert client.get("/api/jobs/0123456789abcdef/result").status_code == 404
    assert list(jobs.folder.iterdir()) == []  # nothing refused was kept


def test_variant_e_is_refused_for_a_one_pass_model(tmp_path):
    model = ModelChoice("student", "student-nafnet", ("B",))
    jobs = JobQueue([model], device="cpu")
    try:
        with pytest.raises(Exception, match="variant E"):
            jobs.new_job("a.png", "student", "E", 10)
    finally:
        jobs.close()
    assert not jobs.folder.exists()  # its own temporary folder is removed


def test_an_exported_onnx_graph_is_served_with_its_one_variant(weights, photo, tmp_path):
    pytest.importorskip("onnxruntime", reason="amsnet[onnx] is not installed")
    from starlette.testclient import TestClient

    from amsnet.onnx_export import export_onnx
    from amsnet.serve import offered_models
    from amsnet.serve.app import create_app

    graph = export_onnx(weights, tmp_path / "tiny.onnx", variant="B")
    models = offered_models(weights=str(graph))
    assert models[0].name == "tiny.onnx" and models[0].variants == ("B",)
    jobs = JobQueue(models[:1], device="cpu")
    with TestClient(create_app(jobs)) as client:
        name = {"name": photo.name}
        refused = client.post("/api/jobs", params={**name, "variant": "E"}, content=b"x")
        assert refused.status_code == 400 and "runs B only" in refused.json()["error"]
        reply = client.post("/api/jobs", params=name, content=photo.read_bytes())
        state = _wait(client, reply.json()["id"])
        assert state["state"] == "done", state["error"]
        served = tmp_path / "served.png"
        served.write_bytes(client.get(f"/api/jobs/{state['id']}/result").content)
    difference = read_integer_image(served).array.astype(np.int64) - _cli_result(
        weights, photo, tmp_path, "--variant", "B"
    )
    assert np.abs(difference).max() <= 257  # one 8-bit step in 16 bits: float32 rounding


def test_serve_refuses_a_bad_weights_file_before_listening(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not weights")
    assert main(["serve", "--weights", str(bad), "--port", "0"]) != 0
    assert "bad.safetensors" in capsys.readouterr().err


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")
def test_the_page_in_a_real_browser(weights, photo, tmp_path):
    """Upload through the page's file picker, wait, download: the same pixels as the CLI."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    from amsnet.serve import LocalServer

    server = LocalServer(_queue(weights, tmp_path), port=0)
    address = server.start()
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                ],
            )
            page = browser.new_page(accept_downloads=True)
            page.goto(address)
            page.wait_for_selector("#model option", state="attached")
            page.select_option("#variant", "B")
            page.select_option("#ensemble", "1")
            page.set_input_files("#files", str(photo))
            page.wait_for_selector(".job.done a.download", timeout=60_000)
            assert page.locator(".job.done table.report tr").count() > 0
            assert page.locator(".job.done img.after").evaluate("i => i.naturalWidth") == 52
            with page.expect_download() as info:
                page.click(".job.done a.download")
            download = info.value
            assert download.suggested_filename == "holiday_photo-denoised.png"
            saved = tmp_path / "from-browser.png"
            download.save_as(saved)
            browser.close()
    finally:
        server.stop()
    assert np.array_equal(
        read_integer_image(saved).array, _cli_result(weights, photo, tmp_path, "--variant", "B")
    )
