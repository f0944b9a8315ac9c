"""Charts that render with no network: the vega, vega-lite and vega-embed JavaScript is
inlined into each chart's HTML. The bundle (about 0.9 MB: vega 6.2, vega-lite 6.4 and
vega-embed 7.0, the versions Altair 6 draws with) ships in the package as
``_js/vega-embed.js`` with its licences in ``_js/LICENSE.txt``.

Altair's own default renderer loads these scripts from a CDN, so a notebook without
internet shows "Error loading script". ``use_offline_charts()`` registers an Altair
renderer named ``postback_lab`` that inlines them, and enables it unless the user already
chose a renderer of their own.
"""

from __future__ import annotations

import json
import uuid
from functools import cache
from importlib.resources import files
from typing import Any

RENDERER = "postback_lab"


@cache
def bundle() -> str:
    """vega + vega-lite + vega-embed as one script that sets ``window.vegaEmbed``."""
    text = files(__package__).joinpath("_js", "vega-embed.js").read_text(encoding="utf-8")
    return text.replace("</script", "<\\/script")


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
