"""The proml node: one local process per project that keeps the chain libraries loaded.

A chain command (``run``, ``log``, ``transition``, ...) costs about two seconds of imports
(web3, py-evm, eth-account) before it does anything. The node pays them once: the ``proml``
command becomes a small client that sends its arguments, working directory, environment and
terminal facts over a Unix socket under ``.proml/``; the node runs the very same command
in-process and returns its output and exit code. ``proml run`` keeps the user's command in
the client's process (see :mod:`proml_cli.node.client`). See ``docs/node.md``.

Importing this package loads nothing beyond the standard library.
"""
