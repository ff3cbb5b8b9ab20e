# Put this folder first on sys.path / PYTHONPATH to make pipec unimportable:
# compiled output must run without pipec.
raise ImportError("pipec must not be imported by compiled output")
