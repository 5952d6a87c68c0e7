"""The server's start: what the first visitor would otherwise wait for is done before anyone connects.

`streamlit run app.py` serves app.py's `st.App`, whose lifespan is `lifespan` below. Without it, a fresh server's
first page run imports torch, pandas and plotly (~2.5 s on two cores) and loads the data, the shipped model and its
evaluation: Evaluate's first look took ~5 s, a warm server's 2.4 s (BENCHMARKS.md). The imports run before the
server accepts a connection, so no session's thread ever imports a module while this one does; the data and the
model then load in a background thread into the same shared caches the pages use (a page that asks meanwhile waits
for that one computation instead of starting its own), so a slow source (a JPEG tree decoded once: minutes) never
delays the server's start.
"""
from __future__ import annotations

import ast
import asyncio
import gc
import importlib
import logging
import threading
from contextlib import asynccontextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger(__name__)


def page_imports() -> list[str]:
    """The modules every page imports at its top, in the order they name them (read from the files, so a page's new
    import is warmed too). app.py's own top imports only os and streamlit, which the server already has."""
    from dashboard.pages import scripts

    names = []
    for script in scripts():
        for node in ast.parse((ROOT / script).read_text()).body:
            if isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.append(node.module)
    return list(dict.fromkeys(n for n in names if n != "__future__"))


def import_pages() -> None:
    for name in page_imports():
        importlib.import_module(name)


def freeze_imports() -> None:
    """Leave everything that exists now out of every later garbage collection. Streamlit collects after each page
    run (`gc.collect(2)`, its runner.postScriptGC) and holds the GIL while it walks every tracked object: after torch,
    pandas, plotly and the pages are imported that is ~300,000 objects and 130-200 ms on two cores, during which no
    other session's thread runs and the finished run's last messages wait to be sent (a What if slider answered in
    ~300 ms instead of ~100). What exists now is the modules' own and lives as long as the server, so the collection
    after a run walks only what runs made; nothing later is frozen, so a session's garbage is still collected."""
    gc.collect()
    gc.freeze()


def preload() -> None:
    # Streamlit warns of every cached call made outside a page run: here that is the point
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").setLevel(logging.ERROR)
    try:
        from dashboard.common import load_shared

        load_shared()
    except Exception:  # the page that needs it computes it again and shows what went wrong, in words
        log.warning("Loading the data and the shipped model at start failed; the pages will load them when asked",
                    exc_info=True)


@asynccontextmanager
async def lifespan(app):
    await asyncio.to_thread(import_pages)
    freeze_imports()
    threading.Thread(target=preload, name="preload", daemon=True).start()
    yield
