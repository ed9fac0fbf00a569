#!/usr/bin/env python3
"""Validate the resume-scorer evaluation set (tests/data/scorer_eval/). Stdlib only.

Checks that every job description in jobs/ has exactly 10 resumes under resumes/<job-id>/,
that grades.json grades every resume (and nothing else) with an integer 0-3, and that the
skills data in src/scorer/data/ is consistent (every alias's canonical is a line of
skills.txt). Prints per-job grade counts and word counts. Exits non-zero on any error;
word counts outside the intended ranges (jobs 200-400, resumes 150-1,000) are warnings.

Usage: python3 tests/tools/check_scorer_eval.py [--root REPO_ROOT]
"""
import argparse
import json
import os
import sys

RESUMES_PER_JOB = 10


def words(path):
    with open(path, encoding="utf-8") as f:
        return len(f.read().split())


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=os.path.normpath(os.path.join(here, "..", "..")))
    args = ap.parse_args()
    base = os.path.join(args.root, "tests", "data", "scorer_eval")
    errors, warnings = [], []

    with open(os.path.join(base, "grades.json"), encoding="utf-8") as f:
        grades = json.load(f)
    jobs = sorted(n[:-3] for n in os.listdir(os.path.join(base, "jobs")) if n.endswith(".md"))
    if len(jobs) < 8:
        errors.append(f"{len(jobs)} job descriptions, expected at least 8")
    for extra in sorted(set(grades) - set(jobs)):
        errors.append(f"grades.json has job {extra!r} with no jobs/{extra}.md")

    totals = [0, 0, 0, 0]
    print(f"{'job':<14} {'jd words':>8}  {'g0':>3} {'g1':>3} {'g2':>3} {'g3':>3}  resume words min/median/max")
    for job in jobs:
        jd_words = words(os.path.join(base, "jobs", job + ".md"))
        if not 200 <= jd_words <= 400:
            warnings.append(f"jobs/{job}.md has {jd_words} words (intended 200-400)")
        rdir = os.path.join(base, "resumes", job)
        resumes = sorted(n[:-4] for n in os.listdir(rdir) if n.endswith(".txt")) if os.path.isdir(rdir) else []
        if len(resumes) != RESUMES_PER_JOB:
            errors.append(f"{job}: {len(resumes)} resumes, expected {RESUMES_PER_JOB}")
        g = grades.get(job, {})
        if not g:
            errors.append(f"{job}: no grades in grades.json")
        for r in resumes:
            if r not in g:
                errors.append(f"{job}/{r}: no grade")
            elif not (isinstance(g[r], int) and not isinstance(g[r], bool) and 0 <= g[r] <= 3):
                errors.append(f"{job}/{r}: grade {g[r]!r} is not an integer 0-3")
        for r in sorted(set(g) - set(resumes)):
            errors.append(f"{job}/{r}: graded but no resumes/{job}/{r}.txt")
        counts = [0, 0, 0, 0]
        for r in resumes:
            if isinstance(g.get(r), int) and 0 <= g[r] <= 3:
                counts[g[r]] += 1
        totals = [a + b for a, b in zip(totals, counts)]
        wc = sorted(words(os.path.join(rdir, r + ".txt")) for r in resumes)
        for r in resumes:
            n = words(os.path.join(rdir, r + ".txt"))
            if not 150 <= n <= 1000:
                warnings.append(f"resumes/{job}/{r}.txt has {n} words (intended 150-1,000)")
        if any(c == 0 for c in counts):
            warnings.append(f"{job}: some grade has no resume ({counts})")
        med = wc[len(wc) // 2] if wc else 0
        print(f"{job:<14} {jd_words:>8}  {counts[0]:>3} {counts[1]:>3} {counts[2]:>3} {counts[3]:>3}  "
              f"{wc[0] if wc else 0}/{med}/{wc[-1] if wc else 0}")
    print(f"{'total':<14} {'':>8}  {totals[0]:>3} {totals[1]:>3} {totals[2]:>3} {totals[3]:>3}  "
          f"({sum(totals)} resumes, {len(jobs)} jobs)")

    # Skills data: every alias points at a line of skills.txt.
    data = os.path.join(args.root, "src", "scorer", "data")
    skills_path, aliases_path = os.path.join(data, "skills.txt"), os.path.join(data, "aliases.tsv")
    if os.path.exists(skills_path) and os.path.exists(aliases_path):
        with open(skills_path, encoding="utf-8") as f:
            skills = f.read().splitlines()
        if len({s.lower() for s in skills}) != len(skills):
            errors.append("skills.txt has case-insensitive duplicates")
        if skills != sorted(skills, key=lambda s: (s.lower(), s)):
            errors.append("skills.txt is not sorted")
        size = os.path.getsize(skills_path)
        if size >= 300 * 1024:
            errors.append(f"skills.txt is {size} bytes, limit 300 KB")
        known, n_alias = set(skills), 0
        with open(aliases_path, encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if not line or line.startswith("#"):
                    continue
                parts = line.split("\t")
                if len(parts) != 2:
                    errors.append(f"aliases.tsv:{i}: expected alias<TAB>canonical")
                    continue
                n_alias += 1
                if parts[1] not in known:
                    errors.append(f"aliases.tsv:{i}: canonical {parts[1]!r} is not in skills.txt")
        print(f"skills.txt: {len(skills)} lines, {size} bytes; aliases.tsv: {n_alias} aliases")

    for w in warnings:
        print("warning:", w)
    for e in errors:
        print("error:", e, file=sys.stderr)
    print("ok" if not errors else f"{len(errors)} error(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
