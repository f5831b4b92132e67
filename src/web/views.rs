//! Handlebars templates and static assets.
//!
//! Both are built into the binary from `web/templates` and `web/static`, so an installed
//! `streampulse` needs no files beside it. `streampulse web --assets DIR` (or
//! `STREAMPULSE_WEB_ASSETS`) reads them from `DIR/templates` and `DIR/static` on every request
//! instead, for working on the pages without rebuilding. Handlebars' HTML escaping stays on.

use std::path::PathBuf;

use handlebars::Handlebars;
use serde::Serialize;

use super::WebError;

/// Templates by name; names under `partials/` are used as `{{> name}}`.
const TEMPLATES: &[(&str, &str)] = &[
    ("layout", include_str!("../../web/templates/layout.hbs")),
    ("login", include_str!("../../web/templates/login.hbs")),
    ("setup", include_str!("../../web/templates/setup.hbs")),
    ("dashboard", include_str!("../../web/templates/dashboard.hbs")),
    ("stream", include_str!("../../web/templates/stream.hbs")),
    ("config", include_str!("../../web/templates/config.hbs")),
    ("error", include_str!("../../web/templates/error.hbs")),
    ("sparkline", include_str!("../../web/templates/sparkline.hbs")),
    (
        "latency_chart",
        include_str!("../../web/templates/latency_chart.hbs"),
    ),
    ("timeline", include_str!("../../web/templates/timeline.hbs")),
];

/// Static files: name, content type, bytes.
const STATIC: &[(&str, &str, &[u8])] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../web/static/style.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/static/app.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../web/static/favicon.svg"),
    ),
];

pub struct Views {
    built_in: Handlebars<'static>,
    /// The dev override folder.
    dir: Option<PathBuf>,
}

impl std::fmt::Debug for Views {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Views")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn registry(sources: &[(&str, String)]) -> Result<Handlebars<'static>, WebError> {
    let mut handlebars = Handlebars::new();
    // Not strict: absent optional values (no codec yet, no reason while up) render as nothing.
    handlebars.set_strict_mode(false);
    for (name, source) in sources {
        handlebars
            .register_template_string(name, source)
            .map_err(|e| WebError::Template(Box::new(e)))?;
    }
    Ok(handlebars)
}

impl Views {
    pub fn new(dir: Option<PathBuf>) -> Result<Views, WebError> {
        let sources: Vec<(&str, String)> = TEMPLATES.iter().map(|(n, s)| (*n, s.to_string())).collect();
        Ok(Views {
            built_in: registry(&sources)?,
            dir,
        })
    }

    pub fn render<T: Serialize>(&self, name: &str, data: &T) -> Result<String, WebError> {
        match &self.dir {
            None => Ok(self.built_in.render(name, data)?),
            Some(dir) => {
                let mut sources = Vec::new();
                for (template, _) in TEMPLATES {
                    let path = dir.join("templates").join(format!("{template}.hbs"));
                    let text = std::fs::read_to_string(&path).map_err(|source| WebError::Io {
                        context: format!("cannot read {}", path.display()),
                        source,
                    })?;
                    sources.push((*template, text));
                }
                Ok(registry(&sources)?.render(name, data)?)
            }
        }
    }

    /// A static file's bytes and content type; only the files listed in the binary exist, so no
    /// request path can reach outside the assets folder.
    pub fn static_file(&self, name: &str) -> Option<(Vec<u8>, &'static str)> {
        let (file, content_type, bytes) = STATIC.iter().find(|(file, _, _)| *file == name)?;
        if let Some(dir) = &self.dir {
            if let Ok(bytes) = std::fs::read(dir.join("static").join(file)) {
                return Some((bytes, content_type));
            }
        }
        Some((bytes.to_vec(), content_type))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_templates_parse_and_escape() {
        let views = Views::new(None).expect("templates parse");
        let html = views
            .render(
                "error",
                &serde_json::json!({"layout": {"title": "x"}, "status": 404, "reason": "Not Found",
                                    "message": "<script>alert(1)</script>"}),
            )
            .expect("render");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
        assert!(!html.contains("<script>alert"));
        assert!(views.static_file("style.css").is_some());
        assert!(views.static_file("../Cargo.toml").is_none());
    }
}
