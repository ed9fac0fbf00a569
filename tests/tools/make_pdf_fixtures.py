"""Writes the PDF fixtures that tests/pdf.rs reads, into the directory given (target/pdf-fixtures).

Real PDFs from the two generators most resume tools use (fpdf2, reportlab), each built to
exercise one thing the extractor must get right or refuse clearly. Needs fpdf2 and reportlab
(tests/run.sh installs them in its venv and runs this). Deterministic content;
not committed (the generators' output is not byte-stable across versions).
"""

import io
import os
import re
import sys
import zlib

from fpdf import FPDF
from reportlab.lib.pagesizes import letter
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas
from reportlab.lib import pdfencrypt
import reportlab

OUT = sys.argv[1] if len(sys.argv) > 1 else "target/pdf-fixtures"

SKILLS = ["Rust", "Python", "PostgreSQL", "Kubernetes", "Terraform", "Kafka", "React", "TypeScript"]


def resume_paragraphs():
    """About 1,000 words: a summary, jobs with bullets, education."""
    paras = [("h", "Jane Example"), ("p", "jane@example.com | +1 555 0100 | Springfield")]
    paras.append(("h", "Summary"))
    paras.append(("p", "Backend engineer with eight years of experience building reliable distributed "
                       "systems, data pipelines and developer tooling for teams of every size."))
    for job in range(6):
        paras.append(("h", f"Experience {job + 1}: Senior Engineer at Company {chr(65 + job)}"))
        for b in range(5):
            skill = SKILLS[(job + b) % len(SKILLS)]
            paras.append(("b", f"- Led the migration of service {job}{b} to {skill}, cutting p99 latency by "
                               f"{10 + b * 7} percent while keeping the on-call load flat for the whole team."))
    paras.append(("h", "Education"))
    paras.append(("p", "BSc in Computer Science, State University."))
    return paras


def two_page_resume(path):
    pdf = FPDF(format="letter")
    pdf.set_auto_page_break(True, margin=20)
    pdf.add_page()
    for kind, text in resume_paragraphs():
        if kind == "h":
            pdf.set_font("Helvetica", "B", 13)
            pdf.multi_cell(0, 8, text, new_x="LMARGIN", new_y="NEXT")
        else:
            pdf.set_font("Helvetica", "", 11)
            pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
    # A word hyphenated across a line end, as justified text leaves it.
    pdf.set_font("Helvetica", "", 11)
    pdf.cell(0, 6, "Closing note: an experi-", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 6, "enced mentor of new engineers.", new_x="LMARGIN", new_y="NEXT")
    assert pdf.pages_count >= 2, pdf.pages_count
    pdf.output(path)
    return pdf.pages_count


LEFT = ["Left column starts here.", "Alpha worked on Rust services.", "Beta tuned PostgreSQL queries.",
        "Gamma ran Kubernetes clusters.", "Left column ends here."]
RIGHT = ["Right column starts here.", "Delta built React dashboards.", "Epsilon wrote Terraform modules.",
         "Zeta streamed events with Kafka.", "Right column ends here."]


def two_columns(path, row_by_row):
    """Two columns side by side. Drawn column by column (as layout engines and word processors
    write them) or row by row (as some table-like generators do)."""
    c = canvas.Canvas(path, pagesize=letter)
    c.setFont("Helvetica", 11)
    top = 700
    if row_by_row:
        for i, (l, r) in enumerate(zip(LEFT, RIGHT)):
            c.drawString(72, top - 16 * i, l)
            c.drawString(320, top - 16 * i, r)
    else:
        for i, l in enumerate(LEFT):
            c.drawString(72, top - 16 * i, l)
        for i, r in enumerate(RIGHT):
            c.drawString(320, top - 16 * i, r)
    c.showPage()
    c.save()


def no_tounicode(path):
    """An embedded TrueType subset (reportlab's bundled Vera) with its ToUnicode map removed.
    reportlab's first subset keeps ASCII codes for ASCII characters, so the text is still
    readable through the standard encoding."""
    fonts = os.path.join(os.path.dirname(reportlab.__file__), "fonts")
    pdfmetrics.registerFont(TTFont("Vera", os.path.join(fonts, "Vera.ttf")))
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=letter, pageCompression=0)
    c.setFont("Vera", 12)
    c.drawString(72, 700, "Kubernetes and PostgreSQL engineer")
    c.showPage()
    c.save()
    data = buf.getvalue()
    # Blanked to spaces of the same length, so the xref offsets stay right.
    stripped, n = re.subn(rb"/ToUnicode \d+ 0 R", lambda m: b" " * len(m.group(0)), data)
    assert n >= 1, "reportlab wrote no ToUnicode to strip"
    open(path, "wb").write(stripped)


def identity_h_without_tounicode(path):
    """fpdf2 embeds TrueType as a Type0 font with Identity-H: the codes in the content are glyph
    ids. Its ToUnicode map blanked, nothing in the file says which letters those glyphs are."""
    fonts = os.path.join(os.path.dirname(reportlab.__file__), "fonts")
    pdf = FPDF(format="letter")
    pdf.set_compression(False)
    pdf.add_font("Vera", "", os.path.join(fonts, "Vera.ttf"))
    pdf.add_page()
    pdf.set_font("Vera", "", 12)
    pdf.cell(0, 8, "Kubernetes and PostgreSQL engineer")
    data = bytes(pdf.output())
    stripped, n = re.subn(rb"/ToUnicode \d+ 0 R", lambda m: b" " * len(m.group(0)), data)
    assert n >= 1, "fpdf2 wrote no ToUnicode to strip"
    open(path, "wb").write(stripped)


def with_tounicode(path):
    """The same page, its ToUnicode map kept: the control for no_tounicode."""
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=letter)
    c.setFont("Vera", 12)
    c.drawString(72, 700, "Kubernetes and PostgreSQL engineer")
    c.showPage()
    c.save()
    open(path, "wb").write(buf.getvalue())


def scanned(path):
    """An image-only page, as a scanner makes: a grey bitmap with dark 'lines of text'."""
    from PIL import Image, ImageDraw
    img = Image.new("L", (850, 1100), 245)
    d = ImageDraw.Draw(img)
    for row in range(30):
        y = 80 + row * 32
        d.rectangle([80, y, 80 + (row * 37) % 600 + 100, y + 12], fill=40)
    pdf = FPDF(format="letter")
    pdf.add_page()
    pdf.image(img, x=0, y=0, w=pdf.w)
    pdf.output(path)


def encrypted(path, user_password):
    enc = pdfencrypt.StandardEncryption(user_password, ownerPassword="owner-secret", canPrint=1)
    c = canvas.Canvas(path, pagesize=letter, encrypt=enc)
    c.setFont("Helvetica", 11)
    c.drawString(72, 700, "Confidential resume of an encrypted engineer.")
    c.showPage()
    c.save()


def many_pages(path, pages):
    pdf = FPDF(format="letter")
    pdf.set_font("Helvetica", "", 11)
    for i in range(pages):
        pdf.add_page()
        pdf.cell(0, 6, f"Page {i + 1} of a long portfolio.")
    pdf.output(path)


def main():
    os.makedirs(OUT, exist_ok=True)
    p = lambda name: os.path.join(OUT, name)
    pages = two_page_resume(p("resume_2page.pdf"))
    two_columns(p("two_column.pdf"), row_by_row=False)
    two_columns(p("two_column_rows.pdf"), row_by_row=True)
    no_tounicode(p("no_tounicode.pdf"))
    with_tounicode(p("with_tounicode.pdf"))
    identity_h_without_tounicode(p("identity_h_no_tounicode.pdf"))
    scanned(p("scanned.pdf"))
    encrypted(p("encrypted.pdf"), user_password="user-secret")
    encrypted(p("owner_only.pdf"), user_password="")
    many_pages(p("many_pages.pdf"), 60)
    whole = open(p("resume_2page.pdf"), "rb").read()
    open(p("truncated.pdf"), "wb").write(whole[: len(whole) // 2])
    print(f"wrote PDF fixtures to {OUT} (resume: {pages} pages)")


if __name__ == "__main__":
    main()
