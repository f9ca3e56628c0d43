"""Built-in constraint sets and data tables, installed as ``reirrad.builtin_constraints``.

No code: this file only makes the folder a package so that ``importlib.resources`` finds it in
editable and regular installs alike (see ``reirrad/data.py``).
"""
