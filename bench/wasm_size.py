#!/usr/bin/env python3
"""Sizes of the browser bundle in a pkg dir (`target/site/pkg`), gzipped at level 9.

The pages are lazy routes, so the bundle is the main module (`dealdesk_bg.wasm`: the
framework, the router, the frame) and chunks; the splitter's manifest
(`__wasm_split_manifest.json`) lists the chunks each split point needs (a group of pages,
`app/src/pages/routes.rs`, or a tab of the deal page). What a browser loads to show a
page is the main module plus its split point's chunks, and for a tab the deal page's
too. Prints, as `name<TAB>KB` lines for bench/last-run.tsv: the main module, the heaviest
load, and every file together; and, on stderr, each load and its file count."""

import gzip
import json
import pathlib
import sys

# Split points that are opened on a page of another: their load includes that page's.
OPENED_ON = {"report_tab": "deal_page", "comps_tab": "deal_page"}


def main() -> None:
    pkg = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/site/pkg")
    sizes = {p.stem: len(gzip.compress(p.read_bytes(), 9)) for p in pkg.glob("*.wasm")}
    main_size = sizes.pop("dealdesk_bg")
    manifest = json.loads((pkg / "__wasm_split_manifest.json").read_text())
    # Keyed by split point: the name of its function (`split_view!`, app/src/pages/split.rs).
    chunks = {split: set(files) for split, files in manifest.items()}
    for split, files in chunks.items():
        missing = sorted(files - sizes.keys())
        if missing:
            sys.exit(f"{pkg}: the manifest's {split} names chunks that are not there: {missing[:3]}")
    loads = {}
    for split, files in chunks.items():
        files = files | chunks.get(OPENED_ON.get(split, ""), set())
        loads[split] = ((main_size + sum(sizes[f] for f in files)) / 1024, len(files) + 1)
    for split, (kb, count) in sorted(loads.items(), key=lambda item: -item[1][0]):
        where = f" (on {OPENED_ON[split]})" if split in OPENED_ON else ""
        print(f"  {split + where:<26} {kb:7.0f} KB in {count:3} files", file=sys.stderr)
    print(f"wasm.main_gzipped_kb\t{main_size / 1024:.0f}")
    print(f"wasm.page_max_gzipped_kb\t{max(kb for kb, _ in loads.values()):.0f}")
    print(f"wasm.all_gzipped_kb\t{(main_size + sum(sizes.values())) / 1024:.0f}")


if __name__ == "__main__":
    main()
