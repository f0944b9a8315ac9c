"""Notebook layer: the ipywidgets explorer of the attempt log, and the short display of
postback_lab's own errors in IPython. Nothing else in the package imports it;
``postback_lab.explore`` loads it when called, and widgets load only when an explorer is
built."""

from ._explore import Explorer, explore
from ._ipython import install as install_ipython

__all__ = ["Explorer", "explore", "install_ipython"]
