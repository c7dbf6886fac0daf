//! Build script: with the `server` feature, turns `openapi.yaml` (the one source of the HTTP
//! contract's OpenAPI document) into the JSON that `GET /openapi.json` serves. A YAML error is a
//! build error, so a broken document never ships.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "server")]
    openapi::generate();
}

#[cfg(feature = "server")]
mod openapi {
    use serde_json::{Map, Value as Json};
    use serde_norway::Value as Yaml;
    use std::path::PathBuf;

    pub fn generate() {
        println!("cargo:rerun-if-changed=openapi.yaml");
        let text = std::fs::read_to_string("openapi.yaml").expect("read openapi.yaml");
        let yaml: Yaml = serde_norway::from_str(&text)
            .unwrap_or_else(|e| panic!("openapi.yaml is not valid YAML: {e}"));
        let json = to_json(yaml);
        let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("openapi.json");
        std::fs::write(out, serde_json::to_vec(&json).expect("serialize"))
            .expect("write openapi.json");
    }

    /// YAML to JSON; mapping keys become strings (OpenAPI writes status codes as bare `200:`).
    fn to_json(v: Yaml) -> Json {
        match v {
            Yaml::Null => Json::Null,
            Yaml::Bool(b) => Json::Bool(b),
            Yaml::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Json::from(i)
                } else if let Some(u) = n.as_u64() {
                    Json::from(u)
                } else {
                    Json::from(n.as_f64().expect("a finite number"))
                }
            }
            Yaml::String(s) => Json::String(s),
            Yaml::Sequence(items) => Json::Array(items.into_iter().map(to_json).collect()),
            Yaml::Mapping(m) => {
                let mut out = Map::new();
                for (k, v) in m {
                    let key = match k {
                        Yaml::String(s) => s,
                        Yaml::Number(n) => n.to_string(),
                        Yaml::Bool(b) => b.to_string(),
                        other => panic!("openapi.yaml: unsupported mapping key {other:?}"),
                    };
                    out.insert(key, to_json(v));
                }
                Json::Object(out)
            }
            Yaml::Tagged(t) => to_json(t.value),
        }
    }
}
