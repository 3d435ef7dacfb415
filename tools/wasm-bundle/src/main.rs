//! `dealdesk-wasm-bundle <input.wasm> <pkg dir> <output name>`: turns the wasm that cargo
//! built into the browser bundle, in two steps.
//!
//! 1. Split at the split points (`split_view!` functions, app/src/pages/split.rs). Writes
//!    into the pkg dir the chunks and their JS loader (`__wasm_split.…js`, the name Leptos'
//!    `HydrationScripts` links when files are not hashed) and the manifest of which chunks
//!    each split point needs (`__wasm_split_manifest.json`, read by the server to preload
//!    a page's chunks). The chunks import from `./<output name>.js`.
//! 2. Generate the bindings for the main module: `<output name>.js` and
//!    `<output name>_bg.wasm`, with the options of
//!    `wasm-bindgen --target web --no-typescript --keep-lld-exports --no-demangle`
//!    (the exports the chunks import are kept).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

type Error = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, pkg, name] = args.as_slice() else {
        eprintln!("usage: dealdesk-wasm-bundle <input.wasm> <pkg dir> <output name>");
        return ExitCode::from(2);
    };
    let pkg = PathBuf::from(pkg);
    match bundle(input.into(), &pkg, name) {
        Ok(chunks) => {
            println!("wasm bundle: main module and {chunks} chunk(s) in {}", pkg.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("wasm bundle failed: {error}");
            ExitCode::FAILURE
        }
    }
}

fn bundle(input: PathBuf, pkg: &Path, name: &str) -> Result<usize, Error> {
    let wasm = std::fs::read(&input).map_err(|e| format!("reading {}: {e}", input.display()))?;
    std::fs::create_dir_all(pkg)?;
    let main_module = pkg.join(format!("{name}_split.wasm"));
    let chunks = split(&wasm, pkg, &main_module, name).map_err(|e| format!("split: {e}"))?;
    bind(&main_module, pkg, name).map_err(|e| format!("wasm-bindgen: {e}"))?;
    std::fs::remove_file(&main_module)?;
    Ok(chunks)
}

fn split(wasm: &[u8], pkg: &Path, main_out: &Path, name: &str) -> Result<usize, Error> {
    let bindings = format!("./{name}.js");
    let split = wasm_split_cli_support::transform({
        let mut opts = wasm_split_cli_support::Options::new(wasm);
        opts.output_dir = pkg;
        opts.main_out_path = main_out;
        opts.main_module = &bindings;
        opts.link_name = "./__wasm_split.______________________.js";
        opts
    })
    .map_err(|e| format!("{e:#}"))?;
    // In name order, so that two builds of the same code write the same manifest.
    let manifest: BTreeMap<_, _> = split.prefetch_map.iter().collect();
    let manifest = serde_json::to_string_pretty(&manifest)?;
    std::fs::write(pkg.join("__wasm_split_manifest.json"), manifest)?;
    Ok(split.split_modules.len())
}

/// The CLI's settings for these flags, every other one at the CLI's default (one of which
/// differs from the library's: the default module path). Reference types are read off the
/// module's `target_features` section, as the CLI does.
fn bind(main_module: &Path, pkg: &Path, name: &str) -> Result<(), Error> {
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(main_module)
        .web(true)?
        .out_name(name)
        .typescript(false)
        .keep_lld_exports(true)
        .demangle(false)
        .omit_default_module_path(false)
        .generate(pkg)
        .map_err(|e| format!("{e:#}"))?;
    Ok(())
}
