//! Request bodies, read only by the filters here and never past a limit, whether the client
//! declares the length (`Content-Length`) or streams it (`Transfer-Encoding: chunked`).
//!
//! warp's `content_length_limit` refuses every chunked body (411) and reads no further than the
//! header; its `form` then reads a body of any size into memory. Here a declared length over the
//! limit is refused before a byte is read, and a streamed one as soon as it passes the limit.

use bytes::{Buf, Bytes};
use futures::{Stream, StreamExt};
use serde::de::value::{Error as ValueError, MapDeserializer, StringDeserializer};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use warp::http::{HeaderMap, Method, StatusCode};
use warp::reject::Reject;
use warp::{Filter, Rejection};

/// What the client is told when its body is over the limit.
pub const TOO_LARGE: &str = "the request is too large";

/// The body is over the limit (declared or counted while it streamed in).
#[derive(Debug)]
struct TooLarge;

impl Reject for TooLarge {}

/// A body with a `Content-Type` other than a URL-encoded form.
#[derive(Debug)]
struct NotForm;

impl Reject for NotForm {}

/// The body is a form, but not one with the fields the route expects.
#[derive(Debug)]
struct BadForm;

impl Reject for BadForm {}

/// The body could not be read to its end (the client went away, or broke the chunked framing).
#[derive(Debug)]
struct Unreadable;

impl Reject for Unreadable {}

/// The status and message of a rejection made here, if it is one.
pub fn known(rejection: &Rejection) -> Option<(StatusCode, String)> {
    if rejection.find::<TooLarge>().is_some() {
        Some((StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE.into()))
    } else if rejection.find::<NotForm>().is_some() {
        Some((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the form URL-encoded".into(),
        ))
    } else if rejection.find::<BadForm>().is_some() {
        Some((StatusCode::BAD_REQUEST, "the form could not be read".into()))
    } else if rejection.find::<Unreadable>().is_some() {
        Some((
            StatusCode::BAD_REQUEST,
            "the request body could not be read".into(),
        ))
    } else {
        None
    }
}

/// The declared `Content-Length`, if there is a readable one.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get("content-length")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse().ok())
}

/// Passes requests that declare a body over `limit` (other than `GET` and `HEAD`, whose bodies
/// no route reads); rejects every other request as not found, which any route's answer outranks.
pub fn declared_over(limit: u64) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::method()
        .and(warp::header::headers_cloned())
        .and_then(move |method: Method, headers: HeaderMap| async move {
            let reads_body = method != Method::GET && method != Method::HEAD;
            match declared_length(&headers) {
                Some(length) if reads_body && length > limit => Ok(()),
                _ => Err(warp::reject::not_found()),
            }
        })
        .untuple_one()
}

/// A URL-encoded form body as `T`, at most `limit` bytes. No `Content-Type` is taken as a form,
/// as warp does.
pub fn form<T: DeserializeOwned + Send + 'static>(
    limit: u64,
) -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    warp::header::headers_cloned()
        .and_then(move |headers: HeaderMap| async move {
            let is_form = headers.get("content-type").is_none_or(|value| {
                value.to_str().is_ok_and(|value| {
                    value.split(';').next().is_some_and(|mime| {
                        mime.trim()
                            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                    })
                })
            });
            if !is_form {
                return Err(warp::reject::custom(NotForm));
            }
            // Refused before a byte is read.
            if declared_length(&headers).is_some_and(|length| length > limit) {
                return Err(warp::reject::custom(TooLarge));
            }
            Ok(())
        })
        .untuple_one()
        .and(warp::body::stream())
        .and_then(move |stream| read_bounded(stream, limit))
        .and_then(|bytes: Bytes| async move {
            decode_form::<T>(&bytes).map_err(|_| warp::reject::custom(BadForm))
        })
}

/// The whole body, or [`TooLarge`] as soon as it passes `limit`.
async fn read_bounded<S, B>(stream: S, limit: u64) -> Result<Bytes, Rejection>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut stream = std::pin::pin!(stream);
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|_| warp::reject::custom(Unreadable))?;
        if (body.len() + chunk.remaining()) as u64 > limit {
            return Err(warp::reject::custom(TooLarge));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            body.extend_from_slice(part);
            let read = part.len();
            chunk.advance(read);
        }
    }
    Ok(Bytes::from(body))
}

/// `application/x-www-form-urlencoded` as `T`: `+` is a space, `%XX` a byte; bytes that are not
/// UTF-8 become U+FFFD (the editor refuses text holding one it did not have).
pub fn decode_form<T: DeserializeOwned>(body: &[u8]) -> Result<T, ValueError> {
    let pairs = body
        .split(|&byte| byte == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = match pair.iter().position(|&byte| byte == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &[][..]),
            };
            (Part(form_text(key)), Part(form_text(value)))
        });
    T::deserialize(MapDeserializer::new(pairs))
}

fn form_text(raw: &[u8]) -> String {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|&byte| if byte == b'+' { b' ' } else { byte })
        .collect();
    percent_encoding::percent_decode(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// One decoded key or value: text, read as whatever the form's field is (a string, an optional
/// one, a number, a flag, a unit enum).
struct Part(String);

impl<'de> IntoDeserializer<'de, ValueError> for Part {
    type Deserializer = Part;

    fn into_deserializer(self) -> Part {
        self
    }
}

macro_rules! parse_as {
    ($($method:ident => $visit:ident,)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
                let value = self.0.trim().parse().map_err(de::Error::custom)?;
                visitor.$visit(value)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for Part {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_string(self.0)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_some(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        let text: StringDeserializer<ValueError> = self.0.into_deserializer();
        visitor.visit_enum(text)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_newtype_struct(self)
    }

    parse_as! {
        deserialize_bool => visit_bool,
        deserialize_i8 => visit_i8,
        deserialize_i16 => visit_i16,
        deserialize_i32 => visit_i32,
        deserialize_i64 => visit_i64,
        deserialize_u8 => visit_u8,
        deserialize_u16 => visit_u16,
        deserialize_u32 => visit_u32,
        deserialize_u64 => visit_u64,
        deserialize_f32 => visit_f32,
        deserialize_f64 => visit_f64,
    }

    serde::forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Login {
        #[serde(default)]
        user: String,
        next: Option<String>,
        csrf: Option<String>,
        remember: Option<bool>,
        days: Option<u32>,
    }

    #[test]
    fn forms_decode_like_a_browser_sends_them() {
        let login: Login =
            decode_form(b"user=b%C3%B6b+x&next=%2F%3Fa%3D1&&csrf=&remember=true&days=7").expect("decodes");
        assert_eq!(
            login,
            Login {
                user: "böb x".into(),
                next: Some("/?a=1".into()),
                csrf: Some(String::new()),
                remember: Some(true),
                days: Some(7),
            }
        );
        let empty: Login = decode_form(b"").expect("no fields");
        assert_eq!(empty.user, "");
        assert_eq!(empty.next, None);
        // Bytes that are not UTF-8 are marked, not dropped.
        let odd: Login = decode_form(b"user=%FFx").expect("decodes");
        assert_eq!(odd.user, "\u{FFFD}x");
        assert!(decode_form::<Login>(b"days=many").is_err());
        assert!(
            decode_form::<Login>(b"user=a&user=b").is_err(),
            "a field twice is refused"
        );
    }
}
