"""Charts that render with no network: the vega, vega-lite and vega-embed JavaScript is
inlined into each chart's HTML. vl-convert bundles it (about 0.9 MB); the bundle is built
once per machine (~10 s) and kept in a cache folder, then read from there.

Altair's own default renderer loads these scripts from a CDN, so a notebook without
internet shows "Error loading script". ``use_offline_charts()`` registers an Altair
renderer named ``postback_lab`` that inlines them, and enables it unless the user already
chose a renderer of their own.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import uuid
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

RENDERER = "postback_lab"
_lock = threading.Lock()


def cache_dir() -> Path:
    """Where the JavaScript bundle is kept: ``$POSTBACK_LAB_CACHE``, else the user's cache
    folder (``$XDG_CACHE_HOME`` or ``~/.cache``) under ``postback_lab``."""
    given = os.environ.get("POSTBACK_LAB_CACHE")
    if given:
        return Path(given)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "postback_lab"


def _vl_version() -> str:
    """The Vega-Lite version of the installed Altair, spelt as vl-convert wants it."""
    from altair.utils._importers import vl_version_for_vl_convert

    return str(vl_version_for_vl_convert())


@cache
def bundle() -> str:
    """vega + vega-lite + vega-embed as one script that sets ``window.vegaEmbed``."""
    import importlib.metadata

    import vl_convert

    vl = _vl_version()
    name = f"vega-embed-{importlib.metadata.version('vl-convert-python')}-{vl}.js"
    path = cache_dir() / name
    with _lock:
        try:
            return path.read_text(encoding="utf-8")
        except OSError:
            pass
        build: Callable[..., str] = vl_convert.javascript_bundle  # its stub wants a snippet
        text = build(vl_version=vl).replace("</script", "<\\/script")
        try:  # write then rename: a reader never sees half a bundle
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only home: build it again next time
        return text


def _json(value: Any) -> str:
    """JSON that is safe inside a ``<script>`` element."""
    return json.dumps(value, default=str).replace("</", "<\\/")


# the bundle defines window.__pblVegaEmbed once per page, then draws the charts queued
# before it arrived (those whose HTML left the bundle out, see ``loader_html``)
_LOADER = """\
<script type="text/javascript">
(function () {{
  if (!window.__pblVegaEmbed) {{
{bundle}
    window.__pblVegaEmbed = window.vegaEmbed;
  }}
  var queued = window.__pblVegaQueue || [];
  window.__pblVegaQueue = [];
  queued.forEach(function (draw) {{ draw(); }});
}})();
</script>
"""

_SNIPPET = """\
<div id="{id}" class="pbl-chart"></div>
{loader}<script type="text/javascript">
(function () {{
  var el = document.getElementById("{id}");
  function draw() {{
    window.__pblVegaEmbed(el, {spec}, {options}).catch(function (err) {{
      el.textContent = "chart error: " + err;
    }});
  }}
  if (window.__pblVegaEmbed) {{ draw(); }}
  else {{ (window.__pblVegaQueue = window.__pblVegaQueue || []).push(draw); }}
}})();
</script>
"""

_PAGE = """\
<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>{title}</title></head>
<body>
{snippet}</body>
</html>
"""


def loader_html() -> str:
    """A ``<script>`` with the bundle alone: shown once before charts drawn with
    ``chart_html(..., bundled=False)`` (the explorer redraws its chart on every filter
    change and sends the ~1 MB bundle only once)."""
    return _LOADER.format(bundle=bundle())


def chart_html(
    spec: dict[str, Any], *, full_page: bool = False, title: str = "chart", bundled: bool = True
) -> str:
    """HTML that draws a Vega-Lite ``spec`` with every script inline (no network): a
    snippet for a notebook output, or a whole page for a file. ``bundled=False`` leaves the
    scripts out: the chart waits for a ``loader_html()`` shown on the same page."""
    snippet = _SNIPPET.format(
        id=f"pbl-chart-{uuid.uuid4().hex[:12]}",
        loader=loader_html() if bundled or full_page else "",
        spec=_json(spec),
        options=_json({"mode": "vega-lite", "renderer": "svg", "actions": False}),
    )
    if not full_page:
        return snippet
    return _PAGE.format(title=title.replace("<", "&lt;"), snippet=snippet)


def _render(spec: dict[str, Any], **_: Any) -> dict[str, str]:
    """The Altair renderer: a text/html bundle with the scripts inline."""
    return {"text/html": chart_html(spec)}


def use_offline_charts(*, force: bool = False) -> bool:
    """Make Altair draw charts with inline scripts (see the module docstring); leaves a
    renderer the user enabled alone unless ``force``. True when ours is active."""
    import altair as alt

    if RENDERER not in alt.renderers.names():
        alt.renderers.register(RENDERER, _render)
    if force or alt.renderers.active in ("default", RENDERER):
        if alt.renderers.active != RENDERER:
            alt.renderers.enable(RENDERER)
        return True
    return False
