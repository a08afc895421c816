"""The system layer every image shares: certificates, fuse, locale, the non-root user."""

from __future__ import annotations

from .base import Check, Column, Flavor

# Package names that differ by release (the 64-bit time_t transition renamed libfuse2).
_LIBFUSE2 = {"trixie": "libfuse2t64", "noble": "libfuse2t64"}
_LIBFUSE3 = {"trixie": "libfuse3-4"}


class SystemFlavor(Flavor):
    name = "system"
    axis = "system"
    template = "system.Dockerfile.j2"
    executables = frozenset({"with-build-secrets", "register-libs", "install-debs"})
    columns = (Column("OS", lambda f: f"{f['os.family']} {f['os.version']}"),)

    def apt_packages(self, component, base):
        return (
            "ca-certificates",
            "fuse3",
            _LIBFUSE3.get(base.codename, "libfuse3-3"),
            _LIBFUSE2.get(base.codename, "libfuse2"),
        )

    def facts(self, component, base, apt_pins):
        return {"version": base.version}

    def labels(self, component, facts):
        out = {"io.buildtool.os": f"{facts['os.family']}{facts['os.version']}"}
        if facts.get("os.apt_refreshed"):  # pins an automatic refresh moved: visible on the image until a deliberate lock
            out["io.buildtool.apt.refreshed"] = facts["os.apt_refreshed"]
        return out

    def context_files(self, component, facts):
        from .support_files import read_support_file

        return {name: read_support_file(name) for name in sorted(self.executables)}

    def checks(self, component, facts):
        return (
            Check("os", "os-release", {"id": facts["os.family"], "version_id": facts["os.version"]}),
            Check("system", "non-root-user", {"user": facts["system.user"]}),
            Check("fuse", "fuse-present", {}),
        )
