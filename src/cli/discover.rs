//! `streampulse discover`: finds ONVIF cameras with a WS-Discovery probe, asks each for its
//! identity (GetDeviceInformation) and, with credentials, its stream URIs (GetProfiles +
//! GetStreamUri), and prints them as a `streams:` list ready to paste into config.yaml. URLs
//! carry no credentials unless `--embed-password` asks for them; passwords never appear in errors.

use crate::onvif::discovery::{self, ProbeMatch};
use crate::onvif::soap::DeviceInformation;
use crate::onvif::{Credentials, Device, OnvifError};
use anyhow::{anyhow, Context};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::BufRead;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct DiscoverArgs {
    /// User name for the cameras (needed for their stream URIs)
    #[arg(long)]
    pub user: Option<String>,
    /// Password for --user. Prefer STREAMPULSE_ONVIF_PASSWORD or --password-stdin: a password on
    /// the command line ends up in the shell history
    #[arg(long, env = "STREAMPULSE_ONVIF_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Read the password from the first line of standard input
    #[arg(long, conflicts_with = "password")]
    pub password_stdin: bool,
    /// Send the probe to this address (HOST:PORT) instead of the WS-Discovery multicast group
    /// 239.255.255.250:3702: unicast discovery of one device, or a simulator in tests
    #[arg(long, value_name = "HOST:PORT")]
    pub probe_to: Option<String>,
    /// How long to collect answers to the probe
    #[arg(long, default_value_t = 3.0)]
    pub wait_seconds: f64,
    /// Deadline of each call to a camera
    #[arg(long, default_value_t = 5.0)]
    pub timeout_seconds: f64,
    /// Put the user name and password into the printed URLs (they are then in the output)
    #[arg(long, requires = "user")]
    pub embed_password: bool,
}

pub fn run(args: DiscoverArgs) -> anyhow::Result<i32> {
    let password = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        Some(line.trim_end_matches(['\r', '\n']).to_string())
    } else {
        args.password.clone()
    };
    let credentials = match (&args.user, password) {
        (Some(user), password) => Some(Credentials {
            user: user.clone(),
            password: password.unwrap_or_default(),
        }),
        (None, Some(_)) => return Err(anyhow!("a password was given without --user")),
        (None, None) => None,
    };
    let target = probe_target(args.probe_to.as_deref())?;
    let wait = seconds(args.wait_seconds, "--wait-seconds")?;
    let timeout = seconds(args.timeout_seconds, "--timeout-seconds")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let devices = discovery::probe(target, wait).await?;
        if devices.is_empty() {
            eprintln!(
                "streampulse: no ONVIF device answered a probe to {target} within {} s",
                wait.as_secs_f64()
            );
            return Ok(1);
        }
        let mut out = format!(
            "# {} ONVIF device(s) found by streampulse discover\nstreams:\n",
            devices.len()
        );
        let mut names = HashSet::new();
        let mut failed = false;
        for found in &devices {
            if let Err(error) = describe(
                found,
                credentials.as_ref(),
                timeout,
                args.embed_password,
                &mut names,
                &mut out,
            )
            .await
            {
                failed = true;
                let address = found.xaddrs.first().map(String::as_str).unwrap_or_default();
                let text = crate::url::redact_text(&format!("{error}"));
                let _ = writeln!(out, "  # {address}: {text}");
                eprintln!("streampulse: {address}: {text}");
            }
        }
        print!("{out}");
        Ok(if failed { 1 } else { 0 })
    })
}

fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    if !(value.is_finite() && value > 0.0 && value <= 600.0) {
        return Err(anyhow!("{flag} must be between 0 and 600"));
    }
    Ok(Duration::from_secs_f64(value))
}

fn probe_target(given: Option<&str>) -> anyhow::Result<SocketAddr> {
    let text = given.unwrap_or(discovery::MULTICAST);
    text.to_socket_addrs()
        .with_context(|| format!("--probe-to {text:?} is not HOST:PORT"))?
        .next()
        .ok_or_else(|| anyhow!("--probe-to {text:?} names no address"))
}

/// Appends the device's streams (or a comment saying why there are none) to `out`.
async fn describe(
    found: &ProbeMatch,
    credentials: Option<&Credentials>,
    timeout: Duration,
    embed_password: bool,
    names: &mut HashSet<String>,
    out: &mut String,
) -> Result<(), OnvifError> {
    let xaddr = found
        .xaddrs
        .iter()
        .find(|x| x.starts_with("http://"))
        .ok_or_else(|| OnvifError::Url(found.xaddrs.join(" ")))?;
    let mut device = Device::new(xaddr, credentials.cloned(), timeout)?;
    // Sign in the camera's time: cameras refuse tokens far from their own clock.
    if let Ok(reading) = device.clock(crate::clock::system_now_ms).await {
        device.set_created_offset_ms(reading.offset_ms());
    }
    let info = device.device_information().await?;
    let _ = writeln!(
        out,
        "  # {} {}, firmware {}, serial {}, at {}",
        one_line(&info.manufacturer),
        one_line(&info.model),
        one_line(&info.firmware_version),
        one_line(&info.serial_number),
        device.address().url()
    );
    let onvif = onvif_setting(&device);
    if credentials.is_none() {
        let _ = writeln!(out, "  # its stream URIs need --user and a password");
        return Ok(());
    }
    let media = device.media_service().await?;
    let profiles = media.profiles().await?;
    if profiles.is_empty() {
        let _ = writeln!(out, "  # no media profiles");
    }
    for profile in profiles {
        let uri = media.stream_uri(&profile.token).await?;
        let name = unique_name(&info, &profile.name, &profile.token, names);
        let url = match (embed_password, credentials) {
            (true, Some(credentials)) => with_credentials(&uri, credentials),
            _ => uri.clone(),
        };
        let detail = match (&profile.encoding, profile.width, profile.height) {
            (Some(encoding), Some(w), Some(h)) => format!("  # {encoding} {w}x{h}"),
            _ => String::new(),
        };
        let _ = writeln!(out, "  - name: {}{detail}", yaml_text(&name));
        let _ = writeln!(out, "    url: {}", yaml_text(&url));
        let _ = writeln!(out, "    onvif: {onvif}");
    }
    Ok(())
}

fn one_line(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if cleaned.trim().is_empty() {
        "?".to_string()
    } else {
        cleaned.trim().to_string()
    }
}

/// `true` when the device service is on port 80 (the default), else its host and port.
fn onvif_setting(device: &Device) -> String {
    let authority = &device.address().authority;
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host.trim_start_matches('[').trim_end_matches(']'), port),
        None => (authority.as_str(), "80"),
    };
    if port == "80" {
        "true".to_string()
    } else {
        format!("{{host: {}, port: {port}}}", yaml_text(host))
    }
}

/// `model-profile` in lower case, letters, digits and dashes; `-2`, `-3` when taken.
fn unique_name(info: &DeviceInformation, profile: &str, token: &str, names: &mut HashSet<String>) -> String {
    let profile = if profile.trim().is_empty() { token } else { profile };
    let raw = format!("{} {}", info.model, profile);
    let mut slug = String::new();
    for c in raw.chars() {
        if c.is_alphanumeric() {
            slug.extend(c.to_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let base: String = slug.trim_end_matches('-').chars().take(48).collect();
    let base = if base.is_empty() {
        "camera".to_string()
    } else {
        base
    };
    let mut name = base.clone();
    let mut n = 2;
    while !names.insert(name.clone()) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

/// `rtsp://user:password@host/...`, both percent-encoded.
fn with_credentials(uri: &str, credentials: &Credentials) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_string();
    };
    format!(
        "{scheme}://{}:{}@{rest}",
        utf8_percent_encode(&credentials.user, NON_ALPHANUMERIC),
        utf8_percent_encode(&credentials.password, NON_ALPHANUMERIC)
    )
}

/// A YAML scalar: plain when safe, else double-quoted.
fn yaml_text(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:?=&@%+".contains(c))
        && !text.starts_with(['-', '?', ':', '@', '%', '&']);
    if plain {
        text.to_string()
    } else {
        serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_slugs_and_unique() {
        let info = DeviceInformation {
            model: "IPC-HDW 2431".into(),
            ..Default::default()
        };
        let mut names = HashSet::new();
        assert_eq!(
            unique_name(&info, "Main Stream", "t", &mut names),
            "ipc-hdw-2431-main-stream"
        );
        assert_eq!(
            unique_name(&info, "Main Stream", "t", &mut names),
            "ipc-hdw-2431-main-stream-2"
        );
    }

    #[test]
    fn yaml_quotes_what_needs_it() {
        assert_eq!(yaml_text("rtsp://h:554/a?b=1"), "rtsp://h:554/a?b=1");
        assert_eq!(yaml_text("a b: c"), "\"a b: c\"");
        assert_eq!(yaml_text("#x"), "\"#x\"");
    }

    #[test]
    fn credentials_are_encoded() {
        let c = Credentials {
            user: "ad min".into(),
            password: "p@ss".into(),
        };
        assert_eq!(with_credentials("rtsp://h/x", &c), "rtsp://ad%20min:p%40ss@h/x");
    }
}
