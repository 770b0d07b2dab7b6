"""Screenshots of the MLflow UI on the local store and of the caseload report (docs/screenshots/).

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--mlruns mlruns]

Starts ``mlflow server`` on the local SQLite store (127.0.0.1, a free port, one worker), waits
for /health, then drives headless Chromium over the DevTools protocol: it loads each page,
waits until the page shows the text that proves it has rendered (the React app fetches its data
after the first paint, so a fixed delay is not enough), and saves a PNG. The server and the
browser are always stopped by their PIDs, also when something fails.

Pages: the experiment's runs list, the latest "pipeline-..." run (overview and model-metrics
charts), the registered model and its latest version, and outputs/scores/caseload.html (run
``make score`` first). Needs only the project's venv and a ``chromium`` binary on PATH.

Nothing in the browser is set up to choose the UI's "Model training" view (a fresh profile;
localStorage only records that the Assistant side panel was shown once, as it would cover part
of every page). The script first loads the bare experiment address and logs the view the UI
opens by itself: MLflow 3.17 opens its GenAI overview there whatever the experiment's
``mlflow.experimentKind`` tag says (its view is a per-browser switch). The runs list is then
shot at the link ``make run`` prints, which asks for the training runs in its address.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
EXPERIMENT = "alliance-dropout"
MODEL = "alliance-dropout"
WIDTH, HEIGHT = 1600, 1200

# localStorage keys of the MLflow 3 UI (useLocalStorage stores JSON under "<key>_v<version>"):
# the Assistant panel only, never the workflow type ("mlflow.workflowType"), which decides
# whether the UI opens on training runs or on GenAI traces
UI_STORAGE = {
    "mlflow.assistant.panelOpen_v1": False,
    "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": True,
}


@dataclass
class Shot:
    name: str  # file name without .png
    url: str
    wait_for: list[str]  # texts that must all be on the page before the screenshot
    settle_s: float = 1.5  # extra time after the texts appear (charts animate, tables resize)
    height: int = HEIGHT
    click: str | None = None  # text of a button/link to click once rendered (e.g. "Show more")


def log(msg: str) -> None:
    print(f"screenshots: {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[bytes], what: str) -> None:
    """Stop a process we started (its own process group: the server forks gunicorn/uvicorn)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    how = "SIGTERM"
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        how = "SIGKILL after SIGTERM"
    # the group's other members (uvicorn, the job runner, Chromium's helpers) may outlive the leader
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    log(f"stopped {what} (pid {proc.pid}, {how})")


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


@contextlib.contextmanager
def mlflow_server(
    store_uri: str, artifacts: Path, port: int, logfile: Path
) -> Iterator[tuple[str, Callable[[], None]]]:
    """Start the server; yields its base URL and a function that waits until it is healthy
    (so the caller can do other work while the server boots). Always stops it on exit."""
    cmd = [
        str(REPO / ".venv" / "bin" / "mlflow"),
        "server",
        "--backend-store-uri",
        store_uri,
        "--default-artifact-root",
        str(artifacts),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    with open(logfile, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    spawned = time.monotonic()
    base = f"http://127.0.0.1:{port}"
    log(f"mlflow server pid {proc.pid} on {base}")

    def wait_healthy(limit_s: float = 120.0) -> None:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {proc.returncode}:\n{tail(logfile)}")
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() - spawned > limit_s:
                raise RuntimeError(
                    f"mlflow server not healthy after {limit_s:.0f} s:\n{tail(logfile)}"
                )
            time.sleep(0.5)
        log(f"mlflow server healthy after {time.monotonic() - spawned:.1f} s")

    try:
        yield base, wait_healthy
    finally:
        stop(proc, "mlflow server")


@contextlib.contextmanager
def chromium(profile: Path) -> Iterator[int]:
    """Headless Chromium with the DevTools protocol on a free port; yields that port."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise RuntimeError("chromium not found on PATH (make browser installs it)")
    cmd = [
        exe,
        "--headless",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-dev-shm-usage",
        f"--window-size={WIDTH},{HEIGHT}",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "about:blank",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("chromium did not open its DevTools port in 30 s")
            time.sleep(0.1)
        yield int(port_file.read_text().splitlines()[0])
    finally:
        stop(proc, "chromium")


class Page:
    """A minimal DevTools-protocol client for one tab."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, **params: object) -> dict:
        self.next_id += 1
        msg_id = self.next_id
        await self.ws.send_str(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = await self.ws.receive(timeout=60)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"DevTools connection closed ({msg.type})")
            data = json.loads(msg.data)
            if data.get("id") == msg_id:
                if "error" in data:
                    raise RuntimeError(f"{method}: {data['error']}")
                return dict(data.get("result", {}))

    async def evaluate(self, expression: str) -> object:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")


async def take(page: Page, shot: Shot, out: Path, timeout_s: float) -> bool:
    await page.call(
        "Emulation.setDeviceMetricsOverride",
        width=WIDTH,
        height=shot.height,
        deviceScaleFactor=1,
        mobile=False,
    )
    await page.call("Page.navigate", url=shot.url)
    started = time.monotonic()
    check = " && ".join(
        ["document.readyState === 'complete'"]
        + [f"document.body.innerText.includes({json.dumps(t)})" for t in shot.wait_for]
    )
    # rendered = the texts are there and no loading spinner/skeleton is left
    busy = (
        'document.querySelectorAll(\'[class*="spinner" i], [class*="skeleton" i],'
        ' [role="progressbar"]\').length'
    )
    expression = (
        f"(() => {{ try {{ return ({check}) && {busy} === 0; }} catch (e) {{ return false; }} }})()"
    )
    ok = False
    while time.monotonic() - started < timeout_s:
        if await page.evaluate(expression):
            ok = True
            break
        await asyncio.sleep(0.25)
    if not ok:
        missing = [
            t
            for t in shot.wait_for
            if not await page.evaluate(f"document.body.innerText.includes({json.dumps(t)})")
        ]
        log(
            f"WARNING {shot.name}: not fully rendered after {timeout_s:.0f} s"
            f" (missing text {missing}, busy {await page.evaluate(busy)}); saving it anyway"
        )
    if shot.click:
        clicked = await page.evaluate(
            "(() => { const el = [...document.querySelectorAll('button, a, [role=button]')]"
            f".find(e => e.innerText.trim() === {json.dumps(shot.click)});"
            " if (el) { el.click(); return true; } return false; })()"
        )
        if not clicked:
            log(f"note {shot.name}: no {shot.click!r} button to click")
    await asyncio.sleep(shot.settle_s)
    png = await page.call("Page.captureScreenshot", format="png")
    path = out / f"{shot.name}.png"
    path.write_bytes(base64.b64decode(str(png["data"])))
    shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    log(f"{shown} ({time.monotonic() - started:.1f} s)")
    return ok


async def view_opened_by_itself(page: Page, url: str, timeout_s: float) -> str:
    """Which view the UI opens at the bare experiment address, with nothing chosen for it."""
    await page.call("Page.navigate", url=url)
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        text = str(await page.evaluate("document.body ? document.body.innerText : ''"))
        if "matching run" in text:
            return "its training runs"
        if "Detect Issues" in text or "Token Usage" in text:
            return "its GenAI overview (traces), whatever mlflow.experimentKind says"
        await asyncio.sleep(0.25)
    return f"no recognisable view within {timeout_s:.0f} s"


async def shoot_all(
    devtools_port: int,
    base: str,
    shots: list[Shot],
    out: Path,
    timeout_s: float,
    bare_experiment_url: str,
) -> int:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{devtools_port}/json/list") as resp:
            targets = await resp.json()
        tab = next(t for t in targets if t.get("type") == "page")
        async with session.ws_connect(tab["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            page = Page(ws)
            await page.call("Page.enable")
            await page.call("Runtime.enable")
            seed = "".join(
                f"localStorage.setItem({json.dumps(k)}, {json.dumps(json.dumps(v))});"
                for k, v in UI_STORAGE.items()
            )
            origin = json.dumps(base)
            await page.call(
                "Page.addScriptToEvaluateOnNewDocument",
                source=f"if (location.origin === {origin}) {{ try {{ {seed} }} catch (e) {{}} }}",
            )
            view = await view_opened_by_itself(page, bare_experiment_url, timeout_s)
            log(f"the bare experiment address opens {view}")
            failed = 0
            for shot in shots:
                if not await take(page, shot, out, timeout_s):
                    failed += 1
            return failed


def plan(base: str, store_uri: str, report: Path) -> tuple[list[Shot], str]:
    """The pages to capture, with ids looked up in the store, and the bare experiment address."""
    # imported here, while the server boots: importing MLflow takes seconds
    from mlflow import MlflowClient

    from alliance_dropout.tracking import ui_runs_url

    client = MlflowClient(tracking_uri=store_uri, registry_uri=store_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        raise RuntimeError(f"no experiment {EXPERIMENT!r} in {store_uri}; run `make run` first")
    exp_id = experiment.experiment_id
    runs = client.search_runs(
        [exp_id],
        filter_string="attributes.run_name LIKE 'pipeline-%'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        raise RuntimeError(f"no pipeline-... run in experiment {EXPERIMENT!r}; run `make run`")
    run = runs[0]
    run_name = run.info.run_name
    log(f"experiment {exp_id}, latest run {run_name} ({run.info.run_id})")
    metric_names = sorted(run.data.metrics)
    first_metric = metric_names[0] if metric_names else "Metrics"
    run_url = f"{base}/#/experiments/{exp_id}/runs/{run.info.run_id}"
    shots = [
        # the link `make run` prints: the MLflow 3.17 UI opens the bare experiment address in
        # its GenAI view on a fresh browser (view_opened_by_itself logs what it opens)
        Shot("1_experiment_runs", ui_runs_url(base, exp_id), [run_name, "matching run"]),
        Shot(
            "2_run_overview",
            run_url,
            [run_name, "Description", first_metric],
            height=1800,
            click="Show more",  # the description is collapsed to a few lines
        ),
        Shot(
            "4_run_model_metrics",
            f"{run_url}/model-metrics",
            [run_name, first_metric.split("/")[0]],
            settle_s=3.0,
            height=1800,
        ),
    ]
    registered = client.search_registered_models(filter_string=f"name = '{MODEL}'")
    if registered:
        shots.insert(2, Shot("3_registered_model", f"{base}/#/models/{MODEL}", [MODEL, "Version"]))
        versions = client.search_model_versions(f"name = '{MODEL}'")
        if versions:
            latest = max(versions, key=lambda v: int(v.version))
            shots.insert(
                3,
                Shot(
                    "3b_model_version",
                    f"{base}/#/models/{MODEL}/versions/{latest.version}",
                    [MODEL, f"Version {latest.version}"],
                ),
            )
    else:
        log(f"WARNING no registered model {MODEL!r}; skipping its page")
    if report.exists():
        # tall enough for the summary cards and the first clients with their reasons and charts
        shots.append(
            Shot(
                "5_caseload_report",
                report.resolve().as_uri(),
                ["Find client", "percentage point"],
                settle_s=2.0,
                height=2600,
            )
        )
    else:
        log(f"WARNING {report} is missing (run `make score`); skipping the report")
    return shots, f"{base}/#/experiments/{exp_id}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "screenshots"))
    parser.add_argument("--mlruns", default=str(REPO / "mlruns"))
    parser.add_argument("--report", default=str(REPO / "outputs" / "scores" / "caseload.html"))
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument("--timeout", type=float, default=45.0, help="seconds to wait per page")
    args = parser.parse_args()

    started = time.monotonic()
    mlruns = Path(args.mlruns).resolve()
    db = mlruns / "mlflow.db"
    if not db.exists():
        log(f"{db} not found; run `make run` first")
        return 2
    store_uri = f"sqlite:///{db}"
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    port = args.port or free_port()

    with tempfile.TemporaryDirectory(prefix="screenshots-") as tmp:
        tmpdir = Path(tmp)
        server = mlflow_server(store_uri, mlruns / "artifacts", port, tmpdir / "server.log")
        with server as (base, wait_healthy):
            shots, bare = plan(base, store_uri, Path(args.report))  # while the server boots
            wait_healthy()
            profile = tmpdir / "profile"
            profile.mkdir()
            with chromium(profile) as devtools_port:
                failed = asyncio.run(shoot_all(devtools_port, base, shots, out, args.timeout, bare))
    log(
        f"{len(shots)} screenshots in {out} ({failed} not fully rendered)"
        f" in {time.monotonic() - started:.0f} s"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as exc:  # our own one-line failures (the server/browser are stopped)
        log(f"failed: {exc}")
        sys.exit(1)
