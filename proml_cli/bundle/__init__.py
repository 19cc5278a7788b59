"""Evidence that travels: one file proving a version's provenance offline.

:mod:`proml_cli.bundle.create` reads the chain (through the ledger backends) and the content
store and writes a bundle; :mod:`proml_cli.bundle.verify` checks one with no chain, no content
store and no project directory, against one block the verifier trusts. The file format is in
:mod:`proml_cli.bundle.format`; what a bundle proves, and what it does not, in ``docs/bundle.md``.
"""
