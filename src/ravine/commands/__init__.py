"""Typer command bodies, one module per command; registered in ``ravine.cli``."""
