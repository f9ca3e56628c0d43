"""Helpers for the `reirrad check` tests: test constraint sets."""

from __future__ import annotations


def constraint_set_header(name: str, title: str, alpha_beta_gy: float) -> str:
    """TOML head of a test constraint set: one source "t", one alpha/beta for every organ, no
    recovery. Append ``[[constraints]]`` entries that cite ``source = "t"``."""
    return f"""
name = "{name}"
version = "1"
title = "{title}"
[sources.t]
citation = "test"
[defaults]
recovery_model = "none"
[[defaults.alpha_beta]]
organs = ["*"]
gy = {alpha_beta_gy}
source = "t"
"""
