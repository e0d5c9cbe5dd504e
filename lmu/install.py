"""Install hints that work where the user is.

Design rule: a hint is a command the user can paste. The package index's ``lmu`` is another, older project, so
``pip install "lmu[torch]"`` would install the wrong thing for anyone not in a checkout: a hint names the packages
an extra requires, read from this installation's own metadata (or, run from a source tree, from its
pyproject.toml), and, when lmu is installed from a checkout (editable) or run from one, also the checkout's
``pip install -e`` form. Nothing here imports anything beyond the standard library.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import re
import shlex
import urllib.parse
import urllib.request

__all__ = ["install_command", "extra_requirements", "checkout"]

_DISTRIBUTION = "lmu"
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


@functools.lru_cache(maxsize=1)
def _metadata():
    """Our distribution's metadata, if this lmu is the installed one (not another project of the same name)."""
    try:
        dist = importlib.metadata.distribution(_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    files = dist.files or []
    if any(str(f).replace("\\", "/").startswith("lmu_torch/") for f in files) or _editable_path(dist):
        return dist
    return None


def _editable_path(dist) -> str | None:
    try:
        text = dist.read_text("direct_url.json")
        info = json.loads(text) if text else {}
    except (OSError, ValueError):
        return None
    if not info.get("dir_info", {}).get("editable"):
        return None
    url = info.get("url", "")
    if not url.startswith("file:"):
        return None
    return urllib.request.url2pathname(urllib.parse.urlparse(url).path)


def checkout() -> str | None:
    """The source checkout this lmu runs from (an editable install, or a tree with pyproject.toml), else None."""
    dist = _metadata()
    if dist is not None:
        return _editable_path(dist)
    if os.path.exists(os.path.join(_ROOT, "pyproject.toml")) and os.path.isdir(os.path.join(_ROOT, "plugins")):
        return _ROOT
    return None


@functools.lru_cache(maxsize=None)
def extra_requirements(extra: str) -> tuple[str, ...]:
    """The requirements of one of lmu's extras (``("torch>=2.1",)`` for ``"torch"``), () if it has none here.

    Examples
    --------
    >>> "torch>=2.1" in extra_requirements("torch")
    True
    >>> extra_requirements("no-such-extra")
    ()
    """
    dist = _metadata()
    if dist is not None:
        out = []
        for line in dist.requires or []:
            requirement, _, marker = line.partition(";")
            if extra in _EXTRA.findall(marker):
                out.append(requirement.strip().replace(" ", ""))
        return tuple(out)
    root = checkout()
    if root is None:
        return ()
    import tomllib

    try:
        with open(os.path.join(root, "pyproject.toml"), "rb") as f:
            table = tomllib.load(f)
    except (OSError, ValueError):
        return ()
    extras = table.get("project", {}).get("optional-dependencies", {})
    return tuple(str(r).replace(" ", "") for r in extras.get(extra, ()))


def install_command(extra: str | None, modules=()) -> str:
    """The command that installs what a backend with this ``extra`` needs (``modules``: the modules it imports,
    named when the extra is not one of lmu's).

    Examples
    --------
    >>> install_command("torch").startswith('pip install "torch>=2.1"')
    True
    >>> install_command(None)
    'nothing to install: the core has what it needs'
    """
    if not extra:
        return "nothing to install: the core has what it needs"
    requirements = extra_requirements(extra)
    if not requirements:
        named = " ".join(shlex.quote(m) for m in modules) or shlex.quote(extra)
        return f"pip install {named} (the packages that provide them; {extra!r} is not an extra of lmu)"
    command = "pip install " + " ".join(f'"{r}"' for r in requirements)
    root = checkout()
    if root is not None:
        command += f'; or, from the checkout: pip install -e "{root}[{extra}]"'
    return command
