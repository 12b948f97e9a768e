"""Lazy package attributes: a name is imported from its home module on first
use, so importing a package (and `prectr --help`) does not load TensorFlow."""

import importlib


def lazy_getattr(package, exports, subpackages=()):
    """A module-level `__getattr__` for `package`.

    Args:
        package: str, the package's name (`"prectr_tf.layers"`).
        exports: `{name: home}`; `home` is a module name, absolute
            (`"prectr_tf.models.config"`) or relative to `package` (`"config"`).
        subpackages: names of subpackages to import on access.
    """
    def __getattr__(name):
        if name in subpackages:
            return importlib.import_module(f"{package}.{name}")
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        home = exports[name]
        module = home if home.startswith("prectr_tf.") else f"{package}.{home}"
        return getattr(importlib.import_module(module), name)

    return __getattr__
