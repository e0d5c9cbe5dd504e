"""The version of lmu, in one place (below every other module, so that any of them may read it)."""

__all__ = ["__version__"]

__version__ = "0.5.0.dev0"
