"""The ``vlmkit`` command line: verbs parse arguments and call the library."""
