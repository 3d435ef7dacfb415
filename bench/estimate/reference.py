"""Claude's token counts for the estimator corpus, from ctok (an offline reconstruction
of Claude's tokenizer), written to reference.json so the Rust tests need no Python.

Counts are content tokens: ctok counts a one-message request, so the frame (the count of
an empty message) is subtracted. The Claude 5 models use ctok's "4.8" family.
"""

import json
import sys
from importlib.metadata import version
from pathlib import Path

from ctok import token_count

FAMILY = "4.8"
HERE = Path(__file__).resolve().parent


def main() -> None:
    frame = token_count("", FAMILY)
    counts = {}
    for path in sorted(p for p in (HERE / "corpus").iterdir() if p.is_file()):
        # The bytes as they are (no newline translation): the text Rust's read_to_string sees.
        text = path.read_bytes().decode("utf-8")
        counts[path.name] = token_count(text, FAMILY) - frame
    reference = {"ctok_version": version("ctok"), "family": FAMILY, "frame_tokens": frame, "content_tokens": counts}
    (HERE / "reference.json").write_text(json.dumps(reference, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(counts)} samples, {sum(counts.values())} content tokens, frame {frame}", file=sys.stderr)


if __name__ == "__main__":
    main()
