//! The `web:` section: the listener address, flags, session lengths and trusted proxies.

use super::super::raw::{Field, RawWeb};
use super::super::WebConfig;
use super::{check_host_port, Check};

impl Check<'_> {
    pub(super) fn web(&mut self, raw: &RawWeb) -> WebConfig {
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
        web
    }
}
