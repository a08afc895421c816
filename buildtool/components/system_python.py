"""The distribution's python3 in a virtual environment placed first on PATH."""

from __future__ import annotations

from ..config.schema import AbsPath, Version
from ._python import PythonFlavor

VENV = "/opt/venv"


class SystemPythonFlavor(PythonFlavor):
    name = "system-python"
    venv = True
    fields = {"pip": Version(), "venv": AbsPath()}
    required = ("pip",)
    template = "system-python.Dockerfile.j2"

    def apt_packages(self, component, base):
        return ("python3", "python3-venv")

    def pip_requirements(self, component, facts):
        return (f"pip=={component.fields['pip']}",)

    def facts(self, component, base, apt_pins):
        prefix = component.fields.get("venv", VENV)
        return {"version": base.python, "prefix": prefix, "bin": f"{prefix}/bin", "provider": "system"}

    def env(self, component, facts):
        return {"VIRTUAL_ENV": facts["python.prefix"], "PATH": f"{facts['python.bin']}:$PATH"}
