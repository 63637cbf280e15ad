"""The `nlprec` command line, installed as the import package `nlprec_cli`.

Thin by design: each command parses options, calls nlprec's public API and prints.
"""
