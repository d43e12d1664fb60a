"""Rebuild examples/corpus from SQuAD v1.1 dev (Wikipedia text, CC BY-SA 4.0) in ../shared/data.

The bundled corpus is small on purpose (a demo and the test fixture): a few articles, each written in
a different format (markdown, HTML, plain text, PDF, DOCX) so every loader is exercised.
Run: python examples/build_corpus.py [path/to/dev-v1.1.json]
"""

from __future__ import annotations

import html
import json
import sys
import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "corpus"
DEFAULT_SQUAD = HERE.parent.parent / "shared" / "data" / "squad_v1.1_dev" / "dev-v1.1.json"
ARTICLES = {  # title -> (file, paragraphs taken)
    "Normans": ("history/normans.md", 8),
    "Black_Death": ("history/black_death.pdf", 6),
    "Oxygen": ("science/oxygen.html", 8),
    "Steam_engine": ("science/steam_engine.txt", 6),
    "Amazon_rainforest": ("geography/amazon_rainforest.docx", 6),
    "Packet_switching": ("technology/packet_switching.md", 6),
}


def latin1(text: str) -> str:
    text = text.replace("\u2013", "-").replace("\u2014", "-").replace("\u2018", "'").replace("\u2019", "'")
    text = text.replace("\u201c", '"').replace("\u201d", '"')
    return unicodedata.normalize("NFKD", text).encode("latin-1", "ignore").decode("latin-1")


def write(title: str, relative: str, paragraphs: list[str]) -> None:
    name = title.replace("_", " ")
    path = OUT / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".md":
        body = [f"# {name}", ""]
        for i, paragraph in enumerate(paragraphs):
            if i and i % 3 == 0:
                body += [f"## {name} (part {i // 3 + 1})", ""]
            body += [paragraph, ""]
        path.write_text("\n".join(body), encoding="utf-8")
    elif path.suffix == ".html":
        items = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
        path.write_text(
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{name}</title>"
            f"<style>p {{margin: 1em}}</style><script>var x = 1;</script></head><body>"
            f"<nav><a href='/'>Home</a> | <a href='/about'>About</a></nav><main><article><h1>{name}</h1>\n{items}\n"
            f"</article></main><footer>Text from Wikipedia, CC BY-SA 4.0</footer></body></html>\n",
            encoding="utf-8",
        )
    elif path.suffix == ".txt":
        path.write_text(name + "\n\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8")
    elif path.suffix == ".pdf":
        from fpdf import FPDF

        pdf = FPDF()
        pdf.set_title(name)
        pdf.set_font("Helvetica", size=11)
        for start in range(0, len(paragraphs), 2):  # two paragraphs a page: page numbers mean something
            pdf.add_page()
            for paragraph in paragraphs[start : start + 2]:
                pdf.multi_cell(0, 6, latin1(paragraph))
                pdf.ln(4)
        pdf.output(str(path))
    elif path.suffix == ".docx":
        import docx

        document = docx.Document()
        document.core_properties.title = name
        document.add_heading(name, level=1)
        for paragraph in paragraphs:
            document.add_paragraph(paragraph)
        document.save(str(path))


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SQUAD
    data = {a["title"]: a for a in json.loads(source.read_text())["data"]}
    for title, (relative, count) in ARTICLES.items():
        write(title, relative, [p["context"] for p in data[title]["paragraphs"][:count]])
    print(f"wrote {len(ARTICLES)} files under {OUT}")


if __name__ == "__main__":
    main()
