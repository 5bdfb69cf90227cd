"""vlmkit: understand, audit and adapt vision-language models without (or with little) training.

The library is layered: :mod:`vlmkit.models` is the only code that knows model internals,
:mod:`vlmkit.data` reads datasets, and method packages build on both. Importing ``vlmkit`` is
cheap; nothing heavy is imported until it is used.
"""

__version__ = "0.1.0"
