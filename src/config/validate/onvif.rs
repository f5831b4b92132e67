//! The camera clock check: a stream's `onvif:` resolved against its URL (host, and the URL's
//! credentials unless `onvif:` gives its own), and `max_clock_skew` (the stream's, else the
//! top level's, else 60 s).

use super::super::raw::{Field, RawOnvif, RawStream, Spanned};
use super::Check;
use crate::onvif::skew::{ClockCheck, DEFAULT_MAX_CLOCK_SKEW};
use crate::onvif::Credentials;
use crate::url::CameraUrl;
use std::time::Duration;

/// ONVIF's default HTTP port.
const ONVIF_DEFAULT_PORT: u16 = 80;

impl Check<'_> {
    /// `max_clock_skew` at `field`, or `base` when not given.
    pub(super) fn max_clock_skew(&mut self, raw: &Field<f64>, field: &str, base: Duration) -> Duration {
        match raw {
            Field::Given(seconds) => self.positive_seconds(seconds, field).unwrap_or(base),
            _ => base,
        }
    }

    /// The top-level `max_clock_skew`.
    pub(super) fn global_clock_skew(&mut self, raw: &Field<f64>) -> Duration {
        self.max_clock_skew(raw, "max_clock_skew", DEFAULT_MAX_CLOCK_SKEW)
    }

    /// The stream's clock check, `None` when `onvif:` is off (or wrong, reported).
    pub(super) fn onvif(
        &mut self,
        raw: &RawStream,
        url: Option<&CameraUrl>,
        global_skew: Duration,
    ) -> Option<ClockCheck> {
        let max_skew = self.max_clock_skew(&raw.max_clock_skew, &raw.path("max_clock_skew"), global_skew);
        let from_url = url.and_then(|u| u.host_port()).map(|(host, _)| host);
        let url_credentials = url.and_then(|u| u.credentials());
        let field = raw.path("onvif");
        match &raw.onvif {
            RawOnvif::Off => None,
            RawOnvif::FromUrl { line } => {
                let Some(host) = from_url else {
                    self.push(
                        *line,
                        &field,
                        "`onvif: true` takes the camera's host from its url, and this stream has no \
                         rtsp:// or http:// url; write `onvif: {host: ..., port: 80}`"
                            .to_string(),
                    );
                    return None;
                };
                let credentials = url_credentials.map(|(user, password)| Credentials {
                    user,
                    password: password.unwrap_or_default(),
                });
                Some(ClockCheck {
                    host,
                    port: ONVIF_DEFAULT_PORT,
                    credentials,
                    max_skew,
                })
            }
            RawOnvif::Explicit {
                line,
                host,
                port,
                user,
                password,
            } => {
                let host = match host {
                    Field::Given(Spanned { value, line }) if value.trim().is_empty() => {
                        self.push(
                            *line,
                            &format!("{field}.host"),
                            "is empty; give the camera's address".to_string(),
                        );
                        None
                    }
                    Field::Given(given) => Some(given.value.trim().to_string()),
                    Field::Invalid => None,
                    Field::Missing => {
                        if from_url.is_none() {
                            self.push(
                                *line,
                                &format!("{field}.host"),
                                "missing: the stream's url names no host to take it from".to_string(),
                            );
                        }
                        from_url
                    }
                };
                let port = match port {
                    Field::Given(given) => match u16::try_from(given.value) {
                        Ok(port) if port > 0 => Some(port),
                        _ => {
                            self.push(
                                given.line,
                                &format!("{field}.port"),
                                "must be between 1 and 65535".to_string(),
                            );
                            None
                        }
                    },
                    Field::Invalid => None,
                    Field::Missing => Some(ONVIF_DEFAULT_PORT),
                };
                let (url_user, url_password) = match url_credentials {
                    Some((user, password)) => (Some(user), password),
                    None => (None, None),
                };
                let user = user.given().map(|u| u.value.clone()).or(url_user);
                let password = password.given().map(|p| p.value.clone()).or(url_password);
                let credentials = user.map(|user| Credentials {
                    user,
                    password: password.unwrap_or_default(),
                });
                Some(ClockCheck {
                    host: host?,
                    port: port?,
                    credentials,
                    max_skew,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{parse, Config};
    use std::path::Path;
    use std::time::Duration;

    fn load(text: &str) -> Result<Config, String> {
        parse(text, Path::new("/tmp/c.yaml")).map_err(|e| e.to_string())
    }

    #[test]
    fn onvif_true_takes_the_url_host_and_credentials() {
        let config = load("max_clock_skew: 4m\nstreams:\n  - name: a\n    url: rtsp://admin:pw@192.0.2.7:554/s\n    onvif: true\n  - name: b\n    url: rtsp://192.0.2.8/s\n    onvif: {host: 192.0.2.9, port: 8080, user: op, password: x}\n    max_clock_skew: 90\n  - name: c\n    url: rtsp://192.0.2.8/s\n").unwrap();
        let a = config.streams[0].onvif.as_ref().unwrap();
        assert_eq!(
            (a.host.as_str(), a.port, a.max_skew),
            ("192.0.2.7", 80, Duration::from_secs(240))
        );
        let credentials = a.credentials.as_ref().unwrap();
        assert_eq!(
            (credentials.user.as_str(), credentials.password.as_str()),
            ("admin", "pw")
        );
        let b = config.streams[1].onvif.as_ref().unwrap();
        assert_eq!(
            (b.host.as_str(), b.port, b.max_skew),
            ("192.0.2.9", 8080, Duration::from_secs(90))
        );
        assert_eq!(b.credentials.as_ref().unwrap().user, "op");
        assert!(config.streams[2].onvif.is_none());
    }

    #[test]
    fn wrong_values_name_line_and_field() {
        let error = load("streams:\n  - name: a\n    url: rtsp://h/s\n    onvif: {port: 0, hots: x}\n    max_clock_skew: soon\n").unwrap_err();
        assert!(
            error.contains("c.yaml:4: streams[0].onvif.hots: unknown key"),
            "{error}"
        );
        assert!(
            error.contains("c.yaml:4: streams[0].onvif.port: must be between 1 and 65535"),
            "{error}"
        );
        assert!(
            error.contains("c.yaml:5: streams[0].max_clock_skew: expected a duration"),
            "{error}"
        );
        let error = load("max_clock_skew: -5\nstreams:\n  - name: a\n    url: rtsp://h/s\n    onvif: yes\n")
            .unwrap_err();
        assert!(
            error.contains("c.yaml:1: max_clock_skew: must be more than 0"),
            "{error}"
        );
        assert!(
            error.contains("c.yaml:5: streams[0].onvif: expected true, or a mapping"),
            "{error}"
        );
        assert!(!error.contains("pw"), "{error}");
    }
}
