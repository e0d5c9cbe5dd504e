"""Sphinx configuration for the lmu documentation.

Build (from the repository root)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

and check the examples in these pages with the doctest builder::

    python -m sphinx -b doctest docs docs/_build/doctest
"""

import importlib.metadata
import importlib.util
import os
import sys

# Build from a source checkout even when lmu is not installed (lmu_torch lives in plugins/).
sys.path.insert(0, os.path.abspath(".."))
sys.path.insert(1, os.path.abspath(os.path.join("..", "plugins")))

project = "lmu"
author = "The lmu developers"
copyright = "2026, The lmu developers"
try:
    release = importlib.metadata.version("lmu")
except importlib.metadata.PackageNotFoundError:  # not installed: read it from the package itself
    import lmu

    release = lmu.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
]

# matplotlib (in the "docs" extra) draws the figures of the concepts page at build time. Without it the pages
# still build: setup() below swaps the plot directive for one that shows the plotting code.
try:
    import matplotlib  # noqa: F401

    HAVE_MATPLOTLIB = True
except ImportError:
    HAVE_MATPLOTLIB = False
if HAVE_MATPLOTLIB:
    extensions.append("matplotlib.sphinxext.plot_directive")
    plot_include_source = True
    plot_html_show_source_link = False
    plot_html_show_formats = False
    plot_formats = [("png", 100)]
    plot_rcparams = {"figure.figsize": (7.0, 3.2), "figure.autolayout": True}

root_doc = "index"
source_suffix = {".rst": "restructuredtext"}
exclude_patterns = ["_build", "generated", "Thumbs.db", ".DS_Store"]
templates_path = []

# -- autodoc / napoleon --------------------------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = False

# lmu_torch.module imports torch at import time. Without torch installed (the "docs" extra does not install it),
# autodoc imports it against a mock of torch; where even that fails, the API page goes without lmu_torch.module
# rather than failing the build (install torch to document it).
if importlib.util.find_spec("torch") is None:
    autodoc_mock_imports = ["torch"]
    suppress_warnings = ["autodoc.import_object"]

# -- doctest -------------------------------------------------------------------------------------------------
# Only the explicit ``.. doctest::`` / ``.. testcode::`` blocks of these pages: the examples in the docstrings
# that autodoc pulls in run under pytest (--doctest-modules on lmu/ and plugins/, each plugin's skipped where its
# framework is not installed; see conftest.py), in their own module's namespace.
doctest_test_doctest_blocks = ""
# The examples that need PyTorch carry ``:skipif: torch is None``, and those that need keras-lmu
# ``:skipif: keras_lmu is None``, so that the pages also check without them.
doctest_global_setup = """
import numpy as np
import lmu
try:
    import torch
except ImportError:
    torch = None
if torch is not None and not any(b.name == "torch" and b.available for b in lmu.backends()):
    torch = None  # torch is there, but not lmu's torch backend (a checkout that was not pip-installed)
# The Keras examples carry ``:skipif: keras_lmu is None``: TensorFlow is imported only where keras-lmu and lmu's
# keras backend are both installed.
import importlib.util, os
keras_lmu = None
if importlib.util.find_spec("keras_lmu") is not None and any(
        b.name == "keras" and b.available for b in lmu.backends()):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras_lmu
# The Nengo, Loihi and NengoDL examples carry ``:skipif: nengo is None`` (``nengo_loihi``, ``nengo_dl``).
nengo = nengo_loihi = nengo_dl = None
if any(b.name == "nengo_dl" and b.available for b in lmu.backends()):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import nengo_dl
if any(b.name == "nengo" and b.available for b in lmu.backends()):
    import nengo
    nengo.rc["progress"]["progress_bar"] = "False"
if any(b.name == "loihi" and b.available for b in lmu.backends()):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import nengo_loihi
"""

# -- HTML ----------------------------------------------------------------------------------------------------
html_theme = "alabaster"
html_title = f"lmu {release}"
html_theme_options = {
    "description": "The Legendre Memory Unit, described once, built in any framework",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "230px",
}
html_static_path = ["_static"] if os.path.isdir(os.path.join(os.path.dirname(__file__), "_static")) else []


def _field_table_directive():
    """``.. lmu-field-table:: LMUSpec`` (or ``Hidden``): the spec's field table, generated from the table that
    validates the fields (lmu.spec.SPEC_FIELDS / HIDDEN_FIELDS), so that the docs cannot drift from the code."""
    from docutils import nodes
    from docutils.parsers.rst import Directive
    from docutils.statemachine import StringList

    class FieldTable(Directive):
        required_arguments = 1

        def run(self):
            from lmu.spec import HIDDEN_FIELDS, SPEC_FIELDS, field_rows

            table = {"LMUSpec": SPEC_FIELDS, "Hidden": HIDDEN_FIELDS}[self.arguments[0]]
            lines = [".. list-table::", "   :header-rows: 1", "   :widths: 18 26 14 42", "",
                     "   * - Field", "     - Accepts", "     - Default", "     - Meaning"]
            def text(value):  # plain text, with rst's markup characters escaped
                for char in "\\`*_|":
                    value = value.replace(char, "\\" + char)
                return value

            for name, accepts, default, meaning in field_rows(table):
                lines += [f"   * - ``{name}``", f"     - {text(accepts)}", f"     - ``{default}``",
                          f"     - {text(meaning[0].upper() + meaning[1:])}."]
            container = nodes.container()
            self.state.nested_parse(StringList(lines, source="lmu.spec"), self.content_offset, container)
            return container.children

    return FieldTable


def _extras_table_directive():
    """``.. lmu-extras-table::``: the extras of pyproject.toml with what each installs, read from the file at build
    time, so that the table cannot go stale."""
    import tomllib

    from docutils import nodes
    from docutils.parsers.rst import Directive
    from docutils.statemachine import StringList

    class ExtrasTable(Directive):
        def run(self):
            root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            with open(os.path.join(root, "pyproject.toml"), "rb") as f:
                extras = tomllib.load(f)["project"]["optional-dependencies"]
            lines = [".. list-table::", "   :header-rows: 1", "   :widths: 30 70", "",
                     "   * - Command (from a checkout)", "     - Installs"]
            for name, requirements in extras.items():
                lines += [f'   * - ``pip install -e ".[{name}]"``',
                          "     - " + ", ".join(f"``{r}``" for r in requirements)]
            container = nodes.container()
            self.state.nested_parse(StringList(lines, source="pyproject.toml"), self.content_offset, container)
            return container.children

    return ExtrasTable


def setup(app):
    app.add_directive("lmu-field-table", _field_table_directive())
    app.add_directive("lmu-extras-table", _extras_table_directive())
    if not HAVE_MATPLOTLIB:
        from docutils import nodes
        from docutils.parsers.rst import Directive, directives

        class PlotSource(Directive):
            """Stand-in for matplotlib's plot directive: the code, no figure."""

            has_content = True
            optional_arguments = 1
            option_spec = {"caption": directives.unchanged, "alt": directives.unchanged}

            def run(self):
                code = "\n".join(self.content)
                block = nodes.literal_block(code, code)
                block["language"] = "python"
                return [block]

        app.add_directive("plot", PlotSource)
