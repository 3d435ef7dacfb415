#!/usr/bin/env bash
# Builds DealDesk without cargo-leptos: the browser bundle (frontend crate → wasm →
# wasm-bindgen, wasm-opt in release), the stylesheet and static assets into target/site,
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
mkdir -p "$pkg"
wasm-bindgen --target web --no-typescript --out-dir "$pkg" --out-name dealdesk \
  "target/wasm32-unknown-unknown/$wasm_profile/frontend.wasm"
if [ "$mode" = release ]; then
  wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
    -o "$pkg/dealdesk_bg.wasm" "$pkg/dealdesk_bg.wasm"
fi
cp style/main.css "$pkg/dealdesk.css"
cp -R public/. "$site/"
cargo build -p server --bin server "${server_flags[@]}"
echo "built $mode: target/$([ "$mode" = release ] && echo release || echo debug)/server and $site/"
