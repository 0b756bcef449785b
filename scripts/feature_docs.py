"""Regenerate the feature table of docs/features.md from ri2fl.profile.feature_dictionary.

Usage: python scripts/feature_docs.py  (rewrites the part between the two markers)
"""

from __future__ import annotations

from pathlib import Path

from ri2fl.profile import feature_dictionary

DOC = Path(__file__).resolve().parents[1] / "docs" / "features.md"
BEGIN, END = "<!-- feature-table:begin -->", "<!-- feature-table:end -->"


def table_markdown() -> str:
    d = feature_dictionary(channels=("<channel>",))
    lines = ["| column | family | unit | meaning |", "|---|---|---|---|"]
    for _, r in d.iterrows():
        desc = r["description"].replace("<channel>", "the channel's").replace("|", "/")
        lines.append(f"| `{r['name']}` | {r['family']} | {r['unit']} | {desc} |")
    return "\n".join(lines)


def main() -> None:
    text = DOC.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{BEGIN}\n{table_markdown()}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    main()
