#!/usr/bin/env bash
# Makes the PDF fixtures tests/pdf.rs reads: a venv with fpdf2 and reportlab under target/, then
# tests/tools/make_pdf_fixtures.py writes target/pdf-fixtures/. Idempotent; tests/run.sh calls it
# (until that script lands on main, run this before `cargo test`). The Rust tests skip with a
# printed reason when the fixtures are absent, unless SNAPEMBED_REQUIRE_PDF_FIXTURES=1.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=target/pdf-venv
if ! "$venv/bin/python" -c 'import fpdf, reportlab' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'fpdf2>=2.7,<3' 'reportlab>=4,<6'
fi
stamp=target/pdf-fixtures/.made-by
want="$(sha256sum tests/tools/make_pdf_fixtures.py | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    rm -rf target/pdf-fixtures.tmp
    "$venv/bin/python" tests/tools/make_pdf_fixtures.py target/pdf-fixtures.tmp
    echo "$want" > target/pdf-fixtures.tmp/.made-by
    rm -rf target/pdf-fixtures
    mv target/pdf-fixtures.tmp target/pdf-fixtures
fi
