"""What the Python providers share: the axis, the table column, uv's requirements file and the checks."""

from __future__ import annotations

from .base import Check, Column, Flavor, uv_requirements


class PythonFlavor(Flavor):
    axis = "python"
    venv = False  # the `python.venv` property: a virtual environment of a system interpreter
    columns = (Column("Python", lambda f: f"{f['python.version']} ({f['python.provider']})"),)

    def properties(self):
        return {**super().properties(), "venv": "true" if self.venv else "false"}

    def context_files(self, component, facts):
        return uv_requirements(facts)

    def checks(self, component, facts):
        return (Check("python", "python-version", {"version": facts["python.version"]}),
                Check("python", "pip-check", {}))
