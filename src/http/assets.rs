//! Files compiled into the server: the demo web page (`web/`) and the OpenAPI document
//! (generated from `openapi.yaml` at build time). To serve another file from `web/`, add a line
//! to [`ASSETS`] (and its path to openapi.yaml).

/// A static file served at a fixed path.
#[derive(Debug)]
pub struct Asset {
    /// Where it is served.
    pub path: &'static str,
    /// Its Content-Type.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

macro_rules! web {
    ($path:literal, $file:literal, $type:literal) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!("../../web/", $file)),
        }
    };
}

/// The files of the demo web page.
pub static ASSETS: &[Asset] = &[
    web!("/", "index.html", "text/html; charset=utf-8"),
    web!("/app.js", "app.js", "text/javascript; charset=utf-8"),
    web!("/app.css", "app.css", "text/css; charset=utf-8"),
];

/// The OpenAPI 3 document as JSON (converted from `openapi.yaml` by `build.rs`).
pub static OPENAPI_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

/// The asset served at `path`, if any.
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}
