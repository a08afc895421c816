"""`buildtool generate`: write generated/ and refresh the README's images table, both or neither."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from ...config.model import Config
from ...errors import Location, UserError
from ...render.generate import Generated
from ...render.outputs import splice_readme
from ...render.writer import PreparedFile, check_output_folder, write_tree_atomically
from ..common import EXIT_OK, Inputs, add_inputs

NAME = "generate"
HELP = "write generated/ and the README images table (atomic; no network)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_inputs(p)
    p.add_argument("--out", type=Path, default=None,
                   help="output folder, replaced as a whole (default: generated/ beside --config); refused when it holds anything buildtool did not write")
    p.add_argument("--readme", type=Path, default=None, help="README whose images section is refreshed (default: README.md beside --config)")


@dataclass(frozen=True)
class OutputPaths:
    """Where generated/ and the README are (beside --config unless given: not the current folder)."""

    out: Path
    readme: Path

    @classmethod
    def from_args(cls, args: argparse.Namespace, inputs: Inputs) -> OutputPaths:
        return cls(getattr(args, "out", None) or inputs.root / "generated", getattr(args, "readme", None) or inputs.root / "README.md")


def readme_text(readme: Path, generated: Generated) -> tuple[str, str] | None:
    """(current, refreshed) README text, or None when there is no README to refresh."""
    if not readme.exists():
        return None
    if not readme.is_file():
        raise UserError("--readme is not a file", where=Location(str(readme)), key="--readme", expected="a Markdown file with the images section markers")
    try:
        current = readme.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the README: {getattr(exc, 'strerror', None) or exc}", where=Location(str(readme)), key="--readme",
                        expected="a readable UTF-8 Markdown file") from None
    refreshed = splice_readme(current, generated.table)
    if refreshed is None:
        raise UserError("README has no images section markers", where=Location(str(readme)), key="README images section",
                        expected="the lines <!-- buildtool:images:begin ... --> and <!-- buildtool:images:end -->")
    return current, refreshed


def write_outputs(inputs: Inputs, paths: OutputPaths) -> int:
    """Render and write generated/ (replaced as a whole) and the README's images section."""
    check_output_folder(paths.out, keep=(inputs.config, paths.readme, inputs.lock))
    config: Config
    config, g = inputs.generated()
    readme = readme_text(paths.readme, g)
    # The README's new text is written beside it first: a README that cannot be written fails before generated/ changes.
    prepared = PreparedFile(paths.readme, readme[1]) if readme is not None and readme[0] != readme[1] else None
    try:
        write_tree_atomically(paths.out, g.tree)
    except BaseException:
        if prepared is not None:
            prepared.discard()
        raise
    if prepared is not None:
        prepared.commit()
    print(f"wrote {paths.out}/: {len(g.rendered)} nodes, {len(g.expansion.variants)} images, {len(g.tree)} files"
          + (f"; refreshed {paths.readme}" if readme is not None else ""))
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    inputs = Inputs.from_args(args)
    return write_outputs(inputs, OutputPaths.from_args(args, inputs))
