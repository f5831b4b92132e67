//! Handlebars templates and static assets.
//!
//! Both are built into the binary from `web/templates` and `web/static`, so an installed
//! `streampulse` needs no files beside it. `streampulse web --assets DIR` (or
//! `STREAMPULSE_WEB_ASSETS`) reads them from `DIR/templates` and `DIR/static` on every request
//! instead, for working on the pages without rebuilding. Handlebars' HTML escaping stays on.

use std::path::PathBuf;

use handlebars::{Context, Handlebars};
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
    ("confirm", include_str!("../../web/templates/confirm.hbs")),
    (
        "notifications",
        include_str!("../../web/templates/notifications.hbs"),
    ),
    ("error", include_str!("../../web/templates/error.hbs")),
    ("account", include_str!("../../web/templates/account.hbs")),
    ("users", include_str!("../../web/templates/users.hbs")),
    ("status", include_str!("../../web/templates/status.hbs")),
    (
        "latency_chart",
        include_str!("../../web/templates/latency_chart.hbs"),
    ),
    ("timeline", include_str!("../../web/templates/timeline.hbs")),
    ("mute_form", include_str!("../../web/templates/mute_form.hbs")),
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

fn render_page<T: Serialize>(
    handlebars: &Handlebars<'static>,
    name: &str,
    data: &T,
) -> Result<String, WebError> {
    // One conversion to JSON, owned by the context (`render` would convert a second time).
    let data = serde_json::to_value(data).map_err(|e| WebError::Internal(format!("page data: {e}")))?;
    let layout = data.get("layout").cloned().unwrap_or(serde_json::Value::Null);
    let content = handlebars.render_with_context(name, &Context::from(data))?;
    let frame = serde_json::json!({ "layout": layout, "content": content });
    Ok(handlebars.render_with_context("layout", &Context::from(frame))?)
}

impl Views {
    pub fn new(dir: Option<PathBuf>) -> Result<Views, WebError> {
        let sources: Vec<(&str, String)> = TEMPLATES.iter().map(|(n, s)| (*n, s.to_string())).collect();
        Ok(Views {
            built_in: registry(&sources)?,
            dir,
        })
    }

    /// Renders page template `name` inside the `layout` template. `data` carries the layout's
    /// fields under `layout`.
    ///
    /// The page is rendered first and handed to the layout as finished (already escaped) HTML,
    /// rather than as a handlebars partial block: a partial block copies the page's whole data,
    /// which for a 1,000-camera dashboard cost more than rendering it.
    pub fn render<T: Serialize>(&self, name: &str, data: &T) -> Result<String, WebError> {
        match &self.dir {
            None => render_page(&self.built_in, name, data),
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
                render_page(&registry(&sources)?, name, data)
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
