"""Sphinx configuration for ibdata's documentation.

Built in CI with warnings as errors and nitpicky references:
``sphinx-build -W -n --keep-going -b html docs docs/_build/html``.
"""

from __future__ import annotations

import ibdata

project = "ibdata"
author = "ibdata contributors"
copyright = "2026, ibdata contributors"  # noqa: A001 - Sphinx's own name
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
    (r"py:.*", r"(datetime|collections|collections\.abc|typing|os|pathlib|enum|threading)\..*"),
    (r"py:.*", r"(pandas|numpy|fastapi|starlette|uvicorn|tqdm|attrs|attr|ibapi)(\..*)?"),
    (r"py:class", r"(int|float|str|bytes|bool|object|None|type|dict|list|tuple|set|frozenset)"),
    (r"py:class", r"(Path|PathLike|Callable|Iterator|Iterable|Mapping|Sequence|Any|Self)"),
    (r"py:class", r"(timedelta|datetime|date|time|tzinfo|ZoneInfo|Enum|StrEnum|Exception)"),
    (r"py:class", r"(ValueError|TypeError|LookupError|TimeoutError|KeyError|OSError)"),
    (r"py:exc", r"(ValueError|TypeError|LookupError|TimeoutError|KeyError|OSError)"),
    (r"py:exc", r"(RuntimeError|ConnectionError|sqlite3\.Error|KeyboardInterrupt)"),
    (r"py:class", r"(T|sqlite3\.Connection|socket\.socket|Final)"),
]
