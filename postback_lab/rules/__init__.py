"""Rules: ``postbacks.yaml`` parsing and validation, URL/header templates and bodies."""

from ._model import Rule, RuleSet
from ._read import parse_rule, read_rules
from ._template import BODY_ENV, Macro, Template, env_names, parse_template, resolve_env

__all__ = [
    "BODY_ENV",
    "Macro",
    "Rule",
    "RuleSet",
    "Template",
    "env_names",
    "parse_rule",
    "parse_template",
    "read_rules",
    "resolve_env",
]
