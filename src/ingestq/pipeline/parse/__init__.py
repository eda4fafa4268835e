"""Parsers: bytes of one media type in, a `ParsedDocument` of typed blocks out."""

from ingestq.pipeline.parse.base import Parser, parse_document, parser_for, register_parser

__all__ = ["Parser", "parse_document", "parser_for", "register_parser"]
