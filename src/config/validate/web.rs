//! The `web:` section: the listener address, flags, session lengths, trusted proxies, HTTPS (the
//! PEM files are read and checked here, so `validate` and the editor catch a wrong file before
//! the server meets it), connection limits and the live view's limits.

use std::path::Path;
use std::time::Duration;

use super::super::raw::{Field, RawTls, RawWeb, Spanned};
use super::super::{WebConfig, WebTls, MAX_WEB_LIVE_FPS, MAX_WEB_LIVE_MAX_CAMERAS, MAX_WEB_LIVE_SECONDS};
use super::{check_host_port, Check};
use crate::tls::{self, Part};

/// Far above what one small server should hold, and below what a file-descriptor limit allows.
const MAX_CONNECTIONS_LIMIT: i64 = 1_000_000;

impl Check<'_> {
    pub(super) fn web(&mut self, raw: &RawWeb, base_dir: &Path) -> WebConfig {
        let mut web = WebConfig::default();
        if let Field::Given(listen) = &raw.listen {
            match check_host_port(&listen.value, true) {
                Ok(()) => web.listen = listen.value.trim().to_string(),
                Err(why) => self.push(listen.line, "web.listen", why),
            }
        }
        if let Field::Given(flag) = &raw.metrics_public {
            web.metrics_public = flag.value;
        }
        if let Field::Given(flag) = &raw.public_status {
            web.public_status = flag.value;
        }
        if let Field::Given(flag) = &raw.public_pictures {
            web.public_pictures = flag.value;
        }
        if let Field::Given(flag) = &raw.behind_tls {
            web.behind_tls = flag.value;
        }
        if let Field::Given(minutes) = &raw.session_idle_minutes {
            if let Some(idle) = self.positive_scaled(minutes, "web.session_idle_minutes", 60.0) {
                web.session_idle = idle;
            }
        }
        if let Field::Given(hours) = &raw.session_max_hours {
            if let Some(max) = self.positive_scaled(hours, "web.session_max_hours", 3600.0) {
                web.session_max = max;
            }
        }
        if let Field::Given(proxies) = &raw.trusted_proxies {
            for (index, proxy) in proxies.value.iter().enumerate() {
                match proxy.value.trim().parse::<std::net::IpAddr>() {
                    Ok(address) => web.trusted_proxies.push(address),
                    Err(_) => self.push(
                        proxy.line,
                        &format!("web.trusted_proxies[{index}]"),
                        format!(
                            "{:?} is not an IP address (such as 127.0.0.1 or ::1; host names and ranges are not accepted)",
                            proxy.value
                        ),
                    ),
                }
            }
        }
        if let Field::Given(tls) = &raw.tls {
            web.tls = self.tls(tls, base_dir);
        }
        if let Field::Given(count) = &raw.max_connections {
            if let Some(count) = self.connections(count, "web.max_connections") {
                web.max_connections = count;
            }
        }
        if let Field::Given(count) = &raw.max_connections_per_client {
            if let Some(count) = self.connections(count, "web.max_connections_per_client") {
                web.max_connections_per_client = count;
            }
        }
        if let Field::Given(seconds) = &raw.header_timeout_seconds {
            if let Some(timeout) = self.positive_seconds(seconds, "web.header_timeout_seconds") {
                web.header_timeout = timeout;
            }
        }
        if let Some(seconds) = self.bounded(&raw.live_seconds, "web.live_seconds", 1, MAX_WEB_LIVE_SECONDS) {
            web.live_duration = Duration::from_secs(seconds);
        }
        if let Some(cameras) = self.bounded(
            &raw.live_max_cameras,
            "web.live_max_cameras",
            0,
            MAX_WEB_LIVE_MAX_CAMERAS,
        ) {
            web.live_max_cameras = usize::try_from(cameras).unwrap_or(web.live_max_cameras);
        }
        if let Some(fps) = self.bounded(&raw.live_fps, "web.live_fps", 1, MAX_WEB_LIVE_FPS) {
            web.live_fps = u32::try_from(fps).unwrap_or(web.live_fps);
        }
        web
    }

    /// A whole number given in `min..=max`; out of range is a problem on its line.
    fn bounded(&mut self, field: &Field<i64>, name: &str, min: i64, max: i64) -> Option<u64> {
        let Field::Given(value) = field else {
            return None;
        };
        if !(min..=max).contains(&value.value) {
            self.push(value.line, name, format!("must be between {min} and {max}"));
            return None;
        }
        u64::try_from(value.value).ok()
    }

    fn connections(&mut self, count: &Spanned<i64>, field: &str) -> Option<usize> {
        if !(1..=MAX_CONNECTIONS_LIMIT).contains(&count.value) {
            self.push(
                count.line,
                field,
                format!("must be between 1 and {MAX_CONNECTIONS_LIMIT}"),
            );
            return None;
        }
        usize::try_from(count.value).ok()
    }

    /// The TLS mode; for files, both must be given, readable, and a matching PEM pair.
    fn tls(&mut self, tls: &Spanned<RawTls>, base_dir: &Path) -> WebTls {
        let RawTls::Files { cert, key } = &tls.value else {
            return WebTls::SelfSigned;
        };
        let mut file = |field: &Field<String>, name: &str| match field {
            Field::Given(path) if !path.value.trim().is_empty() => {
                Some((base_dir.join(&path.value), path.line))
            }
            Field::Given(path) => {
                self.push(
                    path.line,
                    &format!("web.tls.{name}"),
                    "is empty; give a PEM file".to_string(),
                );
                None
            }
            Field::Missing => {
                self.push(
                    tls.line,
                    "web.tls",
                    format!(
                        "needs `{name}:`, the PEM {}",
                        if name == "cert" {
                            "certificate"
                        } else {
                            "private key"
                        }
                    ),
                );
                None
            }
            Field::Invalid => None,
        };
        let cert = file(cert, "cert");
        let key = file(key, "key");
        let (Some((cert, cert_line)), Some((key, key_line))) = (cert, key) else {
            return WebTls::Off;
        };
        if let Err(error) = tls::load_pair(&cert, &key) {
            let (line, field) = match error.part() {
                Part::Cert => (cert_line, "web.tls.cert"),
                Part::Key => (key_line, "web.tls.key"),
            };
            self.push(line, field, error.to_string());
        }
        WebTls::Files { cert, key }
    }
}
