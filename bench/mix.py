#!/usr/bin/env python3
"""A deterministic, realistic mix of texts for tests and benchmarks: search queries, sentences,
job-post and resume snippets, and paragraphs (some past 256 word pieces).
Usage: python bench/mix.py N [SEED] > texts.txt   (one text per line)"""
import random, sys

SUBJECTS = ["the team", "our customer", "a senior engineer", "the new model", "this service", "the patient",
            "the city council", "my landlord", "the support agent", "a small startup", "the research group",
            "the database", "your application", "the hiring manager", "the quarterly report"]
VERBS = ["improved", "reduced", "deployed", "reviewed", "explained", "rejected", "migrated", "measured",
         "optimized", "scheduled", "documented", "replaced", "monitored", "approved", "questioned"]
OBJECTS = ["the latency of the search endpoint", "memory usage on small instances", "the onboarding flow",
           "a Kubernetes cluster with PostgreSQL", "the cost of cold starts", "an embedding service in Rust",
           "the results of the clinical trial", "the budget for next year", "customer churn in Europe",
           "the accuracy of int8 quantization", "a webhook for form submissions", "the resume screening process",
           "invoices that were paid late", "the broken password reset email", "a vegan lasagna recipe"]
TAILS = ["last week", "without any downtime", "after several complaints", "by almost forty percent",
         "before the deadline", "using Python and Rust", "for the second time", "in under ten seconds",
         "despite the holiday", "with help from the community", "on a 512 MB instance", ""]
QUERIES = ["how to reset password", "best pizza near me", "rust embedding server", "cheap flights to lisbon",
           "what is mean pooling", "symptoms of vitamin d deficiency", "python fastapi cold start",
           "remote backend jobs kubernetes", "convert onnx to int8", "weather tomorrow berlin",
           "how long do cats live", "tally form webhook example", "résumé tips for engineers",
           "是什么 embedding", "¿dónde está la estación?", "ios 18 battery drain fix"]
SKILLS = ["Rust", "Go", "Python", "TypeScript", "PostgreSQL", "Kafka", "Kubernetes", "AWS Lambda", "gRPC",
          "React", "machine learning", "ONNX Runtime", "Terraform", "Redis", "Linux", "distributed systems"]


def sentence(rng):
    s = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(TAILS)}".strip()
    return s[0].upper() + s[1:] + rng.choice([".", ".", ".", "!", "?"])


def job(rng):
    skills = ", ".join(rng.sample(SKILLS, rng.randint(2, 6)))
    return (f"We are hiring a {rng.choice(['senior', 'staff', 'junior', 'lead'])} "
            f"{rng.choice(['backend', 'platform', 'data', 'ML', 'full-stack'])} engineer with "
            f"{rng.randint(1, 12)}+ years of experience in {skills}. " + sentence(rng))


def resume(rng):
    return (f"{rng.choice(['Engineer', 'Developer', 'Analyst', 'Researcher'])} with {rng.randint(1, 15)} "
            f"years of experience; skills: {', '.join(rng.sample(SKILLS, rng.randint(3, 8)))}. "
            + " ".join(sentence(rng) for _ in range(rng.randint(1, 4))))


def text(rng):
    r = rng.random()
    if r < 0.30:
        return rng.choice(QUERIES)
    if r < 0.60:
        return sentence(rng)
    if r < 0.72:
        return job(rng)
    if r < 0.82:
        return resume(rng)
    return " ".join(sentence(rng) for _ in range(rng.randint(3, 22)))


def mix(n, seed=1680):
    rng = random.Random(seed)
    return [text(rng) for _ in range(n)]


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1680
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1680
    for t in mix(n, seed):
        print(t)
