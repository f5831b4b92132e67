//! Percent-encoding of stream names in links, and decoding of the path segments warp hands over
//! as raw text. Stream names may hold spaces, `/`, `?` or any Unicode letter.

/// Encodes everything but RFC 3986 unreserved characters, so the result is safe as one path
/// segment or one query value.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes; `None` when an escape is malformed or the bytes are not UTF-8.
pub fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text.get(index + 1..index + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The page of one stream.
pub fn stream_href(name: &str) -> String {
    format!("/streams/{}", encode(name))
}

/// The API path of one stream.
pub fn stream_api_href(name: &str) -> String {
    format!("/api/v1/streams/{}", encode(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_awkward_names() {
        for name in ["Gate Camera", "a/b?c#d", "Caméra 1", "100%", "<script>"] {
            let encoded = encode(name);
            assert!(!encoded.contains(['/', ' ', '?', '#', '<']), "{encoded}");
            assert_eq!(decode(&encoded).as_deref(), Some(name));
        }
        assert_eq!(decode("%zz"), None);
        assert_eq!(decode("%4"), None);
        assert_eq!(stream_href("Gate Camera"), "/streams/Gate%20Camera");
    }
}
