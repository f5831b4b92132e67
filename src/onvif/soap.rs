//! SOAP 1.2 envelopes of the few ONVIF calls StreamPulse makes, and readers of their answers.
//! Readers work on local names, so any namespace prefix a device chooses is fine, and return
//! typed errors (a SOAP fault with its subcode, a missing field), never panic on what a device
//! sends.

use super::xml::{self, Element, XmlError};
use time::OffsetDateTime;

const SOAP_NS: &str = "http://www.w3.org/2003/05/soap-envelope";
const DEVICE_NS: &str = "http://www.onvif.org/ver10/device/wsdl";
const MEDIA_NS: &str = "http://www.onvif.org/ver10/media/wsdl";
const SCHEMA_NS: &str = "http://www.onvif.org/ver10/schema";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SoapError {
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error("not a SOAP envelope (root element {0:?})")]
    NotEnvelope(String),
    /// The device refused the call; `subcode` is e.g. `ter:NotAuthorized`.
    #[error("the device answered with a SOAP fault: {reason} ({subcode})")]
    Fault { subcode: String, reason: String },
    #[error("the answer has no {0}")]
    Missing(&'static str),
    #[error("the answer's {field} is not valid: {value:?}")]
    Invalid { field: &'static str, value: String },
}

impl SoapError {
    /// The device said the credentials are wrong (or missing).
    pub fn is_not_authorized(&self) -> bool {
        matches!(self, SoapError::Fault { subcode, .. }
            if subcode.rsplit(':').next().is_some_and(|s| s == "NotAuthorized" || s == "FailedAuthentication"))
    }
}

/// The calls StreamPulse makes; each knows its body and its SOAP action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    GetDeviceInformation,
    GetSystemDateAndTime,
    GetCapabilities,
    GetProfiles,
    GetStreamUri { profile_token: String },
}

impl Call {
    pub fn action(&self) -> &'static str {
        match self {
            Call::GetDeviceInformation => "http://www.onvif.org/ver10/device/wsdl/GetDeviceInformation",
            Call::GetSystemDateAndTime => "http://www.onvif.org/ver10/device/wsdl/GetSystemDateAndTime",
            Call::GetCapabilities => "http://www.onvif.org/ver10/device/wsdl/GetCapabilities",
            Call::GetProfiles => "http://www.onvif.org/ver10/media/wsdl/GetProfiles",
            Call::GetStreamUri { .. } => "http://www.onvif.org/ver10/media/wsdl/GetStreamUri",
        }
    }

    pub fn body(&self) -> String {
        match self {
            Call::GetDeviceInformation => "<tds:GetDeviceInformation/>".to_string(),
            Call::GetSystemDateAndTime => "<tds:GetSystemDateAndTime/>".to_string(),
            Call::GetCapabilities => {
                "<tds:GetCapabilities><tds:Category>All</tds:Category></tds:GetCapabilities>".to_string()
            }
            Call::GetProfiles => "<trt:GetProfiles/>".to_string(),
            Call::GetStreamUri { profile_token } => format!(
                concat!(
                    "<trt:GetStreamUri><trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream>",
                    "<tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport></trt:StreamSetup>",
                    "<trt:ProfileToken>{}</trt:ProfileToken></trt:GetStreamUri>"
                ),
                xml::escape(profile_token)
            ),
        }
    }
}

/// A SOAP 1.2 envelope with the ONVIF namespaces, `security` being a `<wsse:Security>` header.
pub fn envelope(body: &str, security: Option<&str>) -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<s:Envelope xmlns:s="{soap}" xmlns:tds="{device}" xmlns:trt="{media}" xmlns:tt="{schema}">"#,
            "<s:Header>{security}</s:Header><s:Body>{body}</s:Body></s:Envelope>"
        ),
        soap = SOAP_NS,
        device = DEVICE_NS,
        media = MEDIA_NS,
        schema = SCHEMA_NS,
        security = security.unwrap_or(""),
        body = body,
    )
}

/// A SOAP fault envelope (the device's side).
pub fn fault(subcode: &str, reason: &str) -> String {
    envelope(
        &format!(
            concat!(
                "<s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>{}</s:Value>",
                r#"</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en">{}</s:Text></s:Reason></s:Fault>"#
            ),
            xml::escape(subcode),
            xml::escape(reason)
        ),
        None,
    )
}

/// The Body of an envelope, with any fault turned into [`SoapError::Fault`].
pub fn body(text: &str) -> Result<Element, SoapError> {
    let root = xml::parse(text)?;
    if root.name != "Envelope" {
        return Err(SoapError::NotEnvelope(root.name));
    }
    let body = root.child("Body").ok_or(SoapError::Missing("SOAP Body"))?;
    if let Some(fault) = body.child("Fault") {
        let subcode = fault
            .find("Subcode")
            .and_then(|s| s.text_of("Value"))
            .or_else(|| fault.text_of("Value"))
            .or_else(|| fault.text_of("faultcode"))
            .unwrap_or_default();
        let reason = fault
            .find("Reason")
            .and_then(|r| r.text_of("Text"))
            .or_else(|| fault.text_of("faultstring"))
            .unwrap_or_default();
        return Err(SoapError::Fault { subcode, reason });
    }
    Ok(body.clone())
}

/// What GetDeviceInformation tells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceInformation {
    pub manufacturer: String,
    pub model: String,
    pub firmware_version: String,
    pub serial_number: String,
    pub hardware_id: String,
}

pub fn device_information(text: &str) -> Result<DeviceInformation, SoapError> {
    let body = body(text)?;
    let answer = body
        .find("GetDeviceInformationResponse")
        .ok_or(SoapError::Missing("GetDeviceInformationResponse"))?;
    let field = |name: &str| answer.text_of(name).unwrap_or_default();
    Ok(DeviceInformation {
        manufacturer: field("Manufacturer"),
        model: field("Model"),
        firmware_version: field("FirmwareVersion"),
        serial_number: field("SerialNumber"),
        hardware_id: field("HardwareId"),
    })
}

/// The device's UTC clock from GetSystemDateAndTime (`UTCDateTime`; seconds resolution).
pub fn system_date_and_time(text: &str) -> Result<OffsetDateTime, SoapError> {
    let body = body(text)?;
    let utc = body
        .find("UTCDateTime")
        .ok_or(SoapError::Missing("UTCDateTime"))?;
    let number = |parent: &str, field: &'static str| -> Result<i64, SoapError> {
        let text = utc
            .find(parent)
            .and_then(|p| p.text_of(field))
            .ok_or(SoapError::Missing(field))?;
        text.parse::<i64>()
            .map_err(|_| SoapError::Invalid { field, value: text })
    };
    let invalid = |field: &'static str, value: i64| SoapError::Invalid {
        field,
        value: value.to_string(),
    };
    let year = number("Date", "Year")?;
    let month = number("Date", "Month")?;
    let day = number("Date", "Day")?;
    let hour = number("Time", "Hour")?;
    let minute = number("Time", "Minute")?;
    let second = number("Time", "Second")?;
    let month_value = u8::try_from(month)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .ok_or_else(|| invalid("Month", month))?;
    let date = i32::try_from(year)
        .ok()
        .zip(u8::try_from(day).ok())
        .and_then(|(y, d)| time::Date::from_calendar_date(y, month_value, d).ok())
        .ok_or_else(|| invalid("Date", day))?;
    // A leap second (60) is read as 59: the offset is reported in whole seconds anyway.
    let time = u8::try_from(hour)
        .ok()
        .zip(u8::try_from(minute).ok())
        .zip(u8::try_from(second.min(59)).ok())
        .and_then(|((h, m), s)| time::Time::from_hms(h, m, s).ok())
        .ok_or_else(|| invalid("Time", hour))?;
    Ok(date.with_time(time).assume_utc())
}

/// The Media service's address from GetCapabilities, if the device names one.
pub fn media_xaddr(text: &str) -> Result<Option<String>, SoapError> {
    let body = body(text)?;
    Ok(body
        .find("Capabilities")
        .and_then(|c| c.child("Media"))
        .and_then(|m| m.text_of("XAddr"))
        .filter(|x| !x.is_empty()))
}

/// One media profile from GetProfiles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub token: String,
    pub name: String,
    pub encoding: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

pub fn profiles(text: &str) -> Result<Vec<Profile>, SoapError> {
    let body = body(text)?;
    let answer = body
        .find("GetProfilesResponse")
        .ok_or(SoapError::Missing("GetProfilesResponse"))?;
    let mut found = Vec::new();
    for profile in answer.children_named("Profiles") {
        let Some(token) = profile.attribute("token").filter(|t| !t.is_empty()) else {
            continue;
        };
        let video = profile.child("VideoEncoderConfiguration");
        let resolution = video.and_then(|v| v.child("Resolution"));
        let dimension = |name: &str| {
            resolution
                .and_then(|r| r.text_of(name))
                .and_then(|t| t.parse::<u32>().ok())
        };
        found.push(Profile {
            token: token.to_string(),
            name: profile
                .child("Name")
                .map(|n| n.text.trim().to_string())
                .unwrap_or_default(),
            encoding: video
                .and_then(|v| v.text_of("Encoding"))
                .filter(|e| !e.is_empty()),
            width: dimension("Width"),
            height: dimension("Height"),
        });
    }
    Ok(found)
}

pub fn stream_uri(text: &str) -> Result<String, SoapError> {
    let body = body(text)?;
    body.find("GetStreamUriResponse")
        .and_then(|a| a.find("MediaUri"))
        .and_then(|m| m.text_of("Uri"))
        .filter(|u| !u.is_empty())
        .ok_or(SoapError::Missing("MediaUri/Uri"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn answer(body: &str) -> String {
        envelope(body, None)
    }

    #[test]
    fn reads_device_information_and_clock() {
        let info = device_information(&answer(
            "<tds:GetDeviceInformationResponse><tds:Manufacturer>Acme</tds:Manufacturer><tds:Model>Cam 9</tds:Model><tds:FirmwareVersion>1.2.3</tds:FirmwareVersion><tds:SerialNumber>S1</tds:SerialNumber><tds:HardwareId>H</tds:HardwareId></tds:GetDeviceInformationResponse>",
        ))
        .unwrap();
        assert_eq!(
            (
                info.manufacturer.as_str(),
                info.model.as_str(),
                info.firmware_version.as_str()
            ),
            ("Acme", "Cam 9", "1.2.3")
        );
        let clock = system_date_and_time(&answer(
            "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:UTCDateTime><tt:Time><tt:Hour>7</tt:Hour><tt:Minute>5</tt:Minute><tt:Second>9</tt:Second></tt:Time><tt:Date><tt:Year>2026</tt:Year><tt:Month>12</tt:Month><tt:Day>1</tt:Day></tt:Date></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>",
        ))
        .unwrap();
        assert_eq!(clock, time::macros::datetime!(2026-12-01 07:05:09 UTC));
        let bad = system_date_and_time(&answer("<tt:UTCDateTime><tt:Time><tt:Hour>25</tt:Hour><tt:Minute>0</tt:Minute><tt:Second>0</tt:Second></tt:Time><tt:Date><tt:Year>2026</tt:Year><tt:Month>1</tt:Month><tt:Day>1</tt:Day></tt:Date></tt:UTCDateTime>"));
        assert!(matches!(bad, Err(SoapError::Invalid { .. })), "{bad:?}");
    }

    #[test]
    fn faults_carry_their_subcode() {
        let error = device_information(&fault("ter:NotAuthorized", "Sender not authorized")).unwrap_err();
        assert!(error.is_not_authorized(), "{error:?}");
        assert_eq!(
            error.to_string(),
            "the device answered with a SOAP fault: Sender not authorized (ter:NotAuthorized)"
        );
    }

    #[test]
    fn reads_profiles_and_stream_uri() {
        let list = profiles(&answer(r#"<trt:GetProfilesResponse><trt:Profiles token="main" fixed="true"><tt:Name>Main</tt:Name><tt:VideoEncoderConfiguration><tt:Encoding>H264</tt:Encoding><tt:Resolution><tt:Width>1920</tt:Width><tt:Height>1080</tt:Height></tt:Resolution></tt:VideoEncoderConfiguration></trt:Profiles><trt:Profiles><tt:Name>no token</tt:Name></trt:Profiles></trt:GetProfilesResponse>"#)).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(
            (list[0].token.as_str(), list[0].name.as_str(), list[0].width),
            ("main", "Main", Some(1920))
        );
        let uri = stream_uri(&answer("<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>rtsp://h/a?x=1&amp;y=2</tt:Uri></trt:MediaUri></trt:GetStreamUriResponse>")).unwrap();
        assert_eq!(uri, "rtsp://h/a?x=1&y=2");
        assert_eq!(stream_uri(&answer("")), Err(SoapError::Missing("MediaUri/Uri")));
    }

    proptest! {
        #[test]
        fn readers_never_panic(text in ".{0,300}") {
            let _ = device_information(&text);
            let _ = system_date_and_time(&text);
            let _ = profiles(&text);
            let _ = stream_uri(&text);
            let _ = media_xaddr(&text);
        }

        #[test]
        fn clock_reader_never_panics_on_any_numbers(y in any::<i64>(), mo in any::<i64>(), d in any::<i64>(), h in any::<i64>(), mi in any::<i64>(), s in any::<i64>()) {
            let text = answer(&format!("<tt:UTCDateTime><tt:Time><tt:Hour>{h}</tt:Hour><tt:Minute>{mi}</tt:Minute><tt:Second>{s}</tt:Second></tt:Time><tt:Date><tt:Year>{y}</tt:Year><tt:Month>{mo}</tt:Month><tt:Day>{d}</tt:Day></tt:Date></tt:UTCDateTime>"));
            let _ = system_date_and_time(&text);
        }

        #[test]
        fn readers_never_panic_inside_a_valid_envelope(inner in "[<>/a-zA-Z:=\" &;#0-9]{0,200}") {
            let text = answer(&inner);
            let _ = device_information(&text);
            let _ = system_date_and_time(&text);
            let _ = profiles(&text);
            let _ = stream_uri(&text);
        }
    }
}
