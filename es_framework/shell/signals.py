"""SIGINT for the scheduler process, set before pymesos is imported.

Importing pymesos replaces the SIGINT handler with its own (``pymesos/process.py``), which calls the
one it replaced or re-raises what killed its I/O thread. Started with SIGINT ignored (a script's
background job), that was ``SIG_IGN``, not callable: each SIGINT raised ``TypeError``.
:func:`interrupt_on_sigint` installs Python's handler first, so a SIGINT stops the scheduler as
Ctrl-C does. This module imports no pymesos, so calling it cannot be too late by itself.
"""

from __future__ import annotations

import signal
import sys
import threading


def interrupt_on_sigint() -> None:
    """Make SIGINT raise ``KeyboardInterrupt`` in the main thread, also when the process started
    with SIGINT ignored; call it before pymesos is first imported. Nothing happens off the main
    thread (only it may set handlers) or once pymesos is imported (its handler holds the one it
    replaced)."""
    if threading.current_thread() is not threading.main_thread() or "pymesos.process" in sys.modules:
        return
    if not callable(signal.getsignal(signal.SIGINT)):
        signal.signal(signal.SIGINT, signal.default_int_handler)
