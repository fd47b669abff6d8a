"""Sphinx configuration for the hyper documentation.

Build with::

    sphinx-build -W -b html docs docs/_build/html
"""

import os
import sys

# autodoc imports hyper from this checkout, not from an installed copy.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import hyper  # noqa: E402

project = "hyper"
author = "the hyper authors"
copyright = "hyper authors"  # noqa: A001 - the name Sphinx expects
release = hyper.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
]

# No remote inventories: the build must work offline.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}

exclude_patterns = ["_build"]
root_doc = "index"
language = "en"
pygments_style = "sphinx"

# -- autodoc ----------------------------------------------------------------

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# Show the long unions by name; api.rst says what each name accepts.
autodoc_type_aliases = {
    "BodyType": "hyper.common.body.BodyType",
    "HeadersType": "hyper.common.request.HeadersType",
    "TimeoutType": "hyper.common.request.TimeoutType",
}
python_use_unqualified_type_names = True
autodoc_preserve_defaults = True
autodoc_default_options = {
    "undoc-members": False,
}

# -- HTML -------------------------------------------------------------------

html_theme = "alabaster"
html_title = f"hyper {release}"
html_theme_options = {
    "description": "A synchronous, thread-safe HTTP/2 client for Python",
    "fixed_sidebar": True,
    "show_relbars": True,
}
html_sidebars = {
    "**": [
        "about.html",
        "navigation.html",
        "relations.html",
        "searchbox.html",
    ]
}
