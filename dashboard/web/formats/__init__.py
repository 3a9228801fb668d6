"""Formats that differ from Django's own for a language (FORMAT_MODULE_PATH); anything not set
here is Django's."""
