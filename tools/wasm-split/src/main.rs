//! `dealdesk-wasm-split <input.wasm> <pkg dir> <output name>`: splits the wasm that cargo
//! built at its split points (`split_view!` functions, app/src/pages/split.rs) before
//! wasm-bindgen runs.
//!
//! Writes into the pkg dir: the chunks and their JS loader (`__wasm_split.…js`, the name
//! Leptos' `HydrationScripts` links when files are not hashed), the manifest of which
//! chunks each split point needs (`__wasm_split_manifest.json`, read by the server to
//! preload a page's chunks), and the main module `<output name>_split.wasm`, for
//! wasm-bindgen. The chunks import from `./<output name>.js`, wasm-bindgen's output.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, pkg, name] = args.as_slice() else {
        eprintln!("usage: dealdesk-wasm-split <input.wasm> <pkg dir> <output name>");
        return ExitCode::from(2);
    };
    match split(input.into(), pkg.into(), name) {
        Ok(chunks) => {
            println!("wasm split: main module and {chunks} chunk(s) in {pkg}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("wasm split failed: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn split(input: PathBuf, pkg: PathBuf, name: &str) -> Result<usize, Box<dyn std::error::Error>> {
    let wasm = std::fs::read(&input).map_err(|e| format!("reading {}: {e}", input.display()))?;
    std::fs::create_dir_all(&pkg)?;
    let main_out = pkg.join(format!("{name}_split.wasm"));
    let main_module = format!("./{name}.js");
    let split = wasm_split_cli_support::transform({
        let mut opts = wasm_split_cli_support::Options::new(&wasm);
        opts.output_dir = &pkg;
        opts.main_out_path = &main_out;
        opts.main_module = &main_module;
        opts.link_name = "./__wasm_split.______________________.js";
        opts
    })
    .map_err(|e| format!("{e:#}"))?;
    let manifest = serde_json::to_string_pretty(&split.prefetch_map)?;
    std::fs::write(pkg.join("__wasm_split_manifest.json"), manifest)?;
    Ok(split.split_modules.len())
}
