"""Notebook layer: the ipywidgets explorer of the attempt log. Nothing else in the package
imports it; ``postback_lab.explore`` loads it when called, and widgets load only when an
explorer is built."""

from ._explore import Explorer, explore

__all__ = ["Explorer", "explore"]
