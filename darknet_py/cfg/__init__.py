"""Darknet .cfg and .data reading: a lark grammar and Darknet's option semantics."""
from .parser import Section, head_classes, parse_cfg_text, parse_options_text, read_cfg, read_options

__all__ = ["Section", "head_classes", "parse_cfg_text", "parse_options_text", "read_cfg", "read_options"]
