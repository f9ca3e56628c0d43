"""The `reirrad demo` sample case, installed as ``reirrad.builtin_sample``.

No code: this file only makes the folder a package so that ``importlib.resources`` finds it in
editable and regular installs alike (see ``reirrad/data.py``).
"""
