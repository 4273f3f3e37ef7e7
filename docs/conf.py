"""Sphinx configuration for ibdata's documentation.

Built in CI with warnings as errors and nitpicky references:
``sphinx-build -W -n --keep-going -b html docs docs/_build/html``.
"""

from __future__ import annotations

from typing import Any

from sphinx.util.nodes import make_refnode

import ibdata

project = "ibdata"
author = "ibdata contributors"
copyright = "2026, ibdata contributors"
release = ibdata.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "README.md"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"ibdata {release}"
html_static_path = ["_static"]

# The API reference: signatures as written, types in the description, members in source order.
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_member_order = "bysource"
autodoc_class_signature = "mixed"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

# Nitpicky references: every cross-reference must resolve. The build machine has no
# internet, so intersphinx cannot fetch the inventories of the standard library and of the
# third-party packages; the names below are those outside ibdata that signatures mention.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(dt|datetime|collections|collections\.abc|typing|os|pathlib|enum|threading)\..*"),
    (r"py:.*", r"(pandas|numpy|fastapi|starlette|uvicorn|tqdm|attrs|attr|ibapi)(\..*)?"),
    (r"py:class", r"(int|float|str|bytes|bool|object|None|type|dict|list|tuple|set|frozenset)"),
    (r"py:class", r"(Path|PathLike|Callable|Iterator|Iterable|Mapping|Sequence|Any|Self)"),
    (r"py:class", r"(timedelta|datetime|date|time|tzinfo|ZoneInfo|Enum|StrEnum|Exception)"),
    (r"py:class", r"(ValueError|TypeError|LookupError|TimeoutError|KeyError|OSError)"),
    (r"py:exc", r"(ValueError|TypeError|LookupError|TimeoutError|KeyError|OSError)"),
    (r"py:exc", r"(RuntimeError|ConnectionError|sqlite3\.Error|KeyboardInterrupt)"),
    (r"py:class", r"(T|sqlite3\.Connection|socket\.socket|Final|array|array\.array)"),
    (r"py:func", r"warnings\.warn"),
]


def _resolve_alias(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve ``ibdata.Bars`` or ``ibdata.sim._server.Simulator`` to where it is documented.

    Users import most names from ``ibdata`` itself and the simulator's from ``ibdata.sim``,
    while the reference documents each once, at its public module. A reference that names a
    re-export or a private module resolves to the one documented object of the same
    qualified tail; anything else stays unresolved (and fails the nitpicky build).
    """
    if node.get("refdomain") != "py":
        return None
    target: str = node["reftarget"]
    if not target.startswith("ibdata."):
        return None
    domain = env.get_domain("py")
    documented = [name for name in domain.objects if name.startswith("ibdata.")]
    parts = target.split(".")
    for k in range(1, len(parts)):
        tail = "." + ".".join(parts[k:])
        matches = {name for name in documented if name.endswith(tail)}
        public = {m for m in matches if not any(p.startswith("_") for p in m.split("."))}
        if len(public) == 1:
            (name,) = public
            obj = domain.objects[name]
            return make_refnode(
                app.builder, node["refdoc"], obj.docname, obj.node_id, contnode, name
            )
    return None


def setup(app: Any) -> None:
    """Connect the alias resolver."""
    app.connect("missing-reference", _resolve_alias)
