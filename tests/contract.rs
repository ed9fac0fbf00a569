//! The API contract seen from outside: `/openapi.json` fetched from the real server over a
//! socket is a valid OpenAPI 3.1 document (checked by `openapi-spec-validator` from the test
//! venv, an implementation independent of utoipa) and names every route. Schemathesis runs
//! against the same server from tests/run.sh (tests/tools/contract.sh).

use std::path::PathBuf;
use std::process::Command;

use crate::common::http_request;
use crate::server::Server;

/// The venv tests/run.sh sets up.
fn venv_python() -> Option<PathBuf> {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-env/venv/bin/python");
    let ok = Command::new(&python).args(["-c", "import openapi_spec_validator"]).output().is_ok_and(|o| o.status.success());
    if ok {
        Some(python)
    } else {
        assert!(
            std::env::var_os("SNAPEMBED_REQUIRE_SCHEMATHESIS").is_none(),
            "SNAPEMBED_REQUIRE_SCHEMATHESIS is set but {} has no openapi_spec_validator (tests/run.sh installs it)",
            python.display()
        );
        None
    }
}

#[test]
fn the_served_document_is_valid_openapi_3_1_and_names_every_route() {
    let server = Server::start(&[]);
    let (status, document) = http_request(&server.addr, "GET", "/openapi.json", None);
    assert_eq!(status, 200, "{document}");
    let doc: serde_json::Value = serde_json::from_str(&document).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for route in ["/embed", "/v1/embeddings", "/similarity", "/search", "/score", "/rank", "/webhook/tally", "/health", "/model-status", "/memory-status", "/metrics", "/openapi.json"] {
        assert!(paths.contains_key(route), "{route} is not in /openapi.json");
    }
    // A wrong type gets a status the document lists, in the documented error shape.
    let (status, body) = http_request(&server.addr, "POST", "/embed", Some(r#"{"inputs": 3}"#));
    assert_eq!(status, 422, "{body}");
    assert!(paths["/embed"]["post"]["responses"].as_object().unwrap().contains_key("422"));
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(error["error"].is_string() && error["error_type"] == "validation", "{error}");

    let Some(python) = venv_python() else {
        eprintln!("skipped the OpenAPI 3.1 validation: no openapi-spec-validator in target/test-env/venv (tests/run.sh installs it)");
        return;
    };
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &document).unwrap();
    let script = "import json, sys\n\
                  from openapi_spec_validator import validate\n\
                  from openapi_spec_validator.validation import OpenAPIV31SpecValidator\n\
                  validate(json.load(open(sys.argv[1])), cls=OpenAPIV31SpecValidator)\n\
                  print('valid')";
    let out = Command::new(python).args(["-c", script]).arg(file.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.trim() == "valid", "{stdout}{}", String::from_utf8_lossy(&out.stderr));
}
