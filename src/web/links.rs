//! Links to a stream, and the stream name in a path segment. Stream names may hold spaces, `/`,
//! `?`, `%` or any Unicode letter, so they are percent-encoded (by the `percent-encoding` crate)
//! as one path segment or one query value.

use std::borrow::Cow;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but RFC 3986 unreserved characters is escaped: safe as one path segment or one
/// query value.
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes `text` as one path segment or query value.
pub fn encode(text: &str) -> String {
    utf8_percent_encode(text, NOT_UNRESERVED).to_string()
}

/// Decodes a path segment as warp hands it over (raw); `None` when the bytes are not UTF-8.
/// A `%` not followed by two hex digits stays as it is.
pub fn decode(segment: &str) -> Option<String> {
    percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .map(Cow::into_owned)
}

/// The page of one stream.
pub fn stream_href(name: &str) -> String {
    format!("/streams/{}", encode(name))
}

/// The API path of one stream.
pub fn stream_api_href(name: &str) -> String {
    format!("/api/v1/streams/{}", encode(name))
}

/// An export of the API (`heartbeats.csv`, `heartbeats.jsonl`, `outages.csv`), of one stream or
/// (`None`) of all.
pub fn export_href(file: &str, stream: Option<&str>) -> String {
    match stream {
        Some(name) => format!("/api/v1/{file}?stream={}", encode(name)),
        None => format!("/api/v1/{file}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_awkward_names() {
        for name in [
            "Gate Camera",
            "a/b?c#d",
            "Caméra 1",
            "100%",
            "<script>",
            "a+b&c=d",
        ] {
            let encoded = encode(name);
            assert!(
                !encoded.contains(['/', ' ', '?', '#', '<', '+', '&']),
                "{encoded}"
            );
            assert_eq!(decode(&encoded).as_deref(), Some(name));
        }
        assert_eq!(decode("%zz").as_deref(), Some("%zz"));
        assert_eq!(decode("%FF"), None);
        assert_eq!(stream_href("Gate Camera"), "/streams/Gate%20Camera");
        assert_eq!(stream_api_href("a-b.c_d~e"), "/api/v1/streams/a-b.c_d~e");
        assert_eq!(
            export_href("outages.csv", Some("a,b c")),
            "/api/v1/outages.csv?stream=a%2Cb%20c"
        );
    }
}
