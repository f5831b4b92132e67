//! The `web:` section: listener, metrics access, TLS, sessions, trusted proxies.

use super::super::tree::Node;
use super::values::Shape;
use super::{join, Field, Spanned, WEB_KEYS};

#[derive(Debug, Default)]
pub(crate) struct RawWeb {
    pub listen: Field<String>,
    pub metrics_public: Field<bool>,
    pub behind_tls: Field<bool>,
    pub session_idle_minutes: Field<f64>,
    pub session_max_hours: Field<f64>,
    /// Each address as written, with its line.
    pub trusted_proxies: Field<Vec<Spanned<String>>>,
}

impl Shape<'_> {
    pub(super) fn web(&mut self, node: &Node, line: usize) -> RawWeb {
        let mut web = RawWeb::default();
        if !self.is_mapping(node, line, "web", "a mapping of web settings (listen:, ...)") {
            return web;
        }
        for (key, entry) in self.known_entries(node, "web", WEB_KEYS) {
            let line = entry.key.line;
            let value = &entry.value;
            let field = join("web", &key);
            match key.as_str() {
                "listen" => web.listen = self.text(value, line, &field, "an address such as 127.0.0.1:8000"),
                "metrics_public" => web.metrics_public = self.boolean(value, line, &field),
                "behind_tls" => web.behind_tls = self.boolean(value, line, &field),
                "session_idle_minutes" => {
                    web.session_idle_minutes = self.number(value, line, &field, "a number of minutes")
                }
                "session_max_hours" => {
                    web.session_max_hours = self.number(value, line, &field, "a number of hours")
                }
                "trusted_proxies" => web.trusted_proxies = self.text_list(value, line, &field),
                _ => {}
            }
        }
        web
    }
}
