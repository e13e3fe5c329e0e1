"""Darknet .cfg reading: a lark grammar and Darknet's option semantics."""
from .parser import Section, parse_cfg_text, read_cfg

__all__ = ["Section", "parse_cfg_text", "read_cfg"]
