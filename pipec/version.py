"""pipec's version, in a module of its own: the layers below the language
(frontend, runner, backends) read it without importing the package's
`__init__`, which imports the language."""

__version__ = "0.1.0"
