#!/usr/bin/env bash
# Builds DealDesk without cargo-leptos: the browser bundle (frontend crate → wasm → split
# and bindings, wasm-opt in release), the stylesheet and static assets into target/site,
# and the server binary. `scripts/build.sh debug` (default) or `scripts/build.sh release`.
#
# Both modes erase Leptos' view types (`--cfg erase_components` from .cargo/config.toml;
# cargo-leptos does so for debug builds only): the release wasm is 28% smaller gzipped and
# the release runs the code the tests run.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-debug}
site=target/site
pkg=$site/pkg

case "$mode" in
  debug)
    wasm_profile=debug; wasm_flags=(); server_flags=()
    ;;
  release)
    wasm_profile=wasm-release; wasm_flags=(--profile wasm-release); server_flags=(--release)
    ;;
  *) echo "usage: $0 [debug|release]" >&2; exit 2 ;;
esac

cargo build -p frontend --lib --target wasm32-unknown-unknown "${wasm_flags[@]}"
# A fresh pkg dir: chunks of an earlier build must not linger beside this one's.
rm -rf "$pkg"
mkdir -p "$pkg"
# The pages are lazy routes (app/src/pages/routes.rs): the wasm step (tools/wasm-bundle)
# cuts the wasm into the main module (the framework, the router, the frame) and chunks,
# one for each set of split points that shares code, which the browser loads when a page
# needs them; then it generates the main module's JS bindings, as wasm-bindgen's CLI does,
# keeping the exports the chunks import.
dealdesk-wasm-bundle "target/wasm32-unknown-unknown/$wasm_profile/frontend.wasm" "$pkg" dealdesk
if [ "$mode" = release ]; then
  # One wasm-opt per file (it takes one), as many at once as there are cores; its warning
  # about the name section's local names (which it drops) is noise, once per file.
  find "$pkg" -name '*.wasm' -print0 | xargs -0 -P "$(nproc)" -I{} \
    wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int -o {} {} \
    2> >(grep -v 'unknown name subsection' >&2)
fi
cp style/main.css "$pkg/dealdesk.css"
cp -R public/. "$site/"
cargo build -p server --bin server "${server_flags[@]}"
echo "built $mode: target/$([ "$mode" = release ] && echo release || echo debug)/server and $site/"
