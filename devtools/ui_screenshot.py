"""The Dagster UI of a mesh, driven from code: start the webserver on loopback, ask its GraphQL API,
open pages in Debian's chromium through Playwright, and write the README's lineage screenshot.

    python -m devtools.ui_screenshot                 # seed a small temporary mesh, run it, write docs/lineage.png
    python -m devtools.ui_screenshot --use-mesh-home # screenshot the mesh already in MESH_HOME

No browser is ever downloaded: Playwright drives the system chromium (`/usr/bin/chromium`, or
`MESH_CHROMIUM`). The end-to-end UI tests use the same helpers (tests/test_ui.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devtools.process_groups import stop_process_group

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

LOOPBACK = "127.0.0.1"
CHROMIUM = os.environ.get("MESH_CHROMIUM", "/usr/bin/chromium")
# root in a container, and a closed network: no sandbox, no GPU, nothing that phones home
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# the asset facets shown on lineage nodes: who owns it, its checks, its status and kinds
LINEAGE_FACETS = ("Owner", "Asset checks", "Status", "Kind tag")

LOCATIONS_QUERY = """{ workspaceOrError { __typename ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on PythonError { message causes { message } } } } } } }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def graphql(port: int, query: str, variables: Mapping[str, Any] | None = None, timeout: float = 60) -> dict[str, Any]:
    """POST a query to the webserver's GraphQL endpoint; errors raise with the server's message."""
    request = urllib.request.Request(
        f"http://{LOOPBACK}:{port}/graphql",
        data=json.dumps({"query": query, "variables": dict(variables or {})}).encode(),
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:  # the server's own message says why (500: an error it raised)
        raise RuntimeError(f"GraphQL HTTP {exc.code}: {exc.read().decode(errors='replace')[:2000]}") from None
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {json.dumps(body['errors'])[:2000]}")
    return body["data"]


def location_entries(port: int) -> list[dict[str, Any]]:
    return graphql(port, LOCATIONS_QUERY)["workspaceOrError"]["locationEntries"]


@dataclass
class Webserver:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return graphql(self.port, query, variables)


def dagster_dev_command(port: int, host: str = LOOPBACK) -> list[str]:
    """What `make ui` runs, with the virtualenv's dagster."""
    dagster = str(Path(sys.executable).with_name("dagster"))
    return [dagster, "dev", "-w", "workspace.yaml", "-h", host, "-p", str(port)]


@contextlib.contextmanager
def webserver(
    root: Path,
    env: Mapping[str, str],
    log: Path,
    command: Sequence[str] | None = None,
    port: int | None = None,
    timeout: float = 300,
) -> Iterator[Webserver]:
    """`dagster dev` over `root`'s workspace, until every code location has finished loading
    (loaded or failed); stopped with its whole process group on exit."""
    port = port or free_port()
    argv = list(command or dagster_dev_command(port))
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, cwd=root, env=dict(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Webserver(port, proc, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"dagster dev exited {proc.returncode}; see {log}:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(OSError, RuntimeError, KeyError, TypeError):
                entries = location_entries(port)
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the webserver did not load every code location in {timeout:.0f} s; see {log}")
            time.sleep(2)
        yield server
    finally:
        stop_process_group(proc, 20)  # dagster dev's graceful shutdown can take minutes on a busy machine


def launch_chromium(playwright: Playwright) -> Browser:
    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def new_page(browser: Browser, width: int = 1600, height: int = 1000) -> Page:
    """A page without Dagster's "Join the community" prompt. The UI opens it a second after a page
    loads unless the browser has dismissed it (what its Skip button stores): opened while a menu was
    open, it closed the menu under the next click. So the page starts with it dismissed, and if a
    Dagster upgrade renames that key, the prompt is skipped whenever it shows."""
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    context.add_init_script(f"window.localStorage.setItem('communityNux', {json.dumps(json.dumps('1'))})")
    page = context.new_page()
    page.add_locator_handler(
        page.get_by_text("Join the Dagster community"),
        lambda: page.get_by_role("button", name="Skip").click(),
    )
    return page


def open_global_lineage(page: Page, base_url: str, facets: Sequence[str] = LINEAGE_FACETS) -> None:
    """The global asset lineage graph (`/asset-groups`) with every group expanded and `facets` on nodes."""
    page.goto(f"{base_url}/asset-groups")
    page.get_by_text("Global asset lineage").first.wait_for()
    page.get_by_role("button", name="settings", exact=True).click()
    page.get_by_role("menuitem").first.wait_for()  # the menu renders after the click: count() does not wait
    expand = page.get_by_role("menuitem", name="Expand all groups")
    if expand.count():
        expand.click()
    else:
        page.keyboard.press("Escape")
    page.get_by_role("button", name="config", exact=True).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Choose Asset Facets").wait_for()
    for label in dialog.locator("label").all():
        wanted = label.inner_text().strip() in facets
        if label.locator("input").is_checked() != wanted:
            label.click()
    dialog.get_by_role("button", name="Save").click()
    dialog.wait_for(state="detached")
    wait_until_loaded(page)


def wait_until_loaded(page: Page, timeout: float = 60) -> None:
    """Until no asset node says "Loading..." any more."""
    deadline = time.monotonic() + timeout
    page.wait_for_timeout(1000)
    while page.get_by_text("Loading...").count():
        if time.monotonic() > deadline:
            raise TimeoutError("asset nodes still loading")
        page.wait_for_timeout(500)


def lineage_png(page: Page, output: Path) -> Path:
    """The whole global lineage graph as a PNG: Dagster's own SVG export of the graph (the download
    button on the graph), rendered by chromium at its full size."""
    with page.expect_download() as download:
        page.locator("button:has([aria-label=download_for_offline])").click()
    output.parent.mkdir(parents=True, exist_ok=True)
    svg = output.with_suffix(".svg")
    download.value.save_as(svg)
    root = svg.read_text()[:4000]
    width, height = (float(_attr(root, name)) for name in ("width", "height"))
    render = page.context.browser.new_page(viewport={"width": int(width) + 1, "height": int(height) + 1})  # type: ignore[union-attr]
    try:
        render.goto(svg.resolve().as_uri())
        render.screenshot(path=str(output))
    finally:
        render.close()
        svg.unlink()
    return output


def _attr(svg_head: str, name: str) -> str:
    tag = svg_head[: svg_head.index(">")]
    start = tag.index(f' {name}="') + len(name) + 3
    return tag[start : tag.index('"', start)]


def screenshot_lineage(base_url: str, output: Path, viewport_png: Path | None = None) -> Path:
    """Open the global lineage graph in chromium and write the whole graph to `output`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = new_page(browser, 1920, 3200)  # tall enough that every node is on screen and loads
            open_global_lineage(page, base_url)
            if viewport_png is not None:
                page.screenshot(path=str(viewport_png))
            return lineage_png(page, output)
        finally:
            browser.close()


def _mesh_env(root: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MESH_", "DAGSTER_"))}
    return {**env, "MESH_PROJECT_DIR": str(root), "MESH_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}


def _mesh(*args: str, env: Mapping[str, str], cwd: Path) -> None:
    mesh = str(Path(sys.executable).with_name("mesh"))
    proc = subprocess.run([mesh, *args], env=dict(env), cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(
            f"mesh {' '.join(args)} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root_default = Path(os.environ.get("MESH_PROJECT_DIR") or Path.cwd())
    parser.add_argument("--project", type=Path, default=root_default, help="the mesh project (default: here)")
    parser.add_argument("-o", "--output", type=Path, default=None, help="default: <project>/docs/lineage.png")
    parser.add_argument("--scale", default="0.02", help="seed scale of the temporary mesh (default 0.02)")
    parser.add_argument(
        "--use-mesh-home", action="store_true", help="use the mesh already materialized in MESH_HOME (no seed/run)"
    )
    args = parser.parse_args(argv)
    root = args.project.resolve()
    output = (args.output or root / "docs" / "lineage.png").resolve()
    with contextlib.ExitStack() as stack:
        if args.use_mesh_home:
            home = Path(os.environ.get("MESH_HOME") or root / ".mesh").resolve()
        else:
            home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mesh-ui-"))) / "home"
        env = _mesh_env(root, home)
        if not args.use_mesh_home:
            print(f"seeding and materializing a scale-{args.scale} mesh in {home} ...", file=sys.stderr)
            _mesh("seed", "--scale", args.scale, env=env, cwd=root)
            _mesh("run", env=env, cwd=root)
        (home / "dagster").mkdir(parents=True, exist_ok=True)
        print("starting the Dagster webserver on 127.0.0.1 ...", file=sys.stderr)
        server = stack.enter_context(webserver(root, env, home / "ui-screenshot-webserver.log"))
        failed = [
            e["name"]
            for e in location_entries(server.port)
            if e["locationOrLoadError"]["__typename"] != "RepositoryLocation"
        ]
        if failed:
            raise SystemExit(f"code locations failed to load: {', '.join(failed)}; see {server.log}")
        screenshot_lineage(server.url, output)
        if not args.use_mesh_home:
            shutil.rmtree(home, ignore_errors=True)
    print(output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
