"""Rules: ``postbacks.yaml`` parsing, validation and URL templates (DESIGN contract 2)."""

from ._model import Rule, RuleSet
from ._read import read_rules

__all__ = ["Rule", "RuleSet", "read_rules"]
