//! A small element tree read with `quick-xml`: local names only (ONVIF devices spell their
//! namespace prefixes every which way), text and attributes, nesting and size capped so a hostile
//! answer cannot exhaust memory or the stack.

use quick_xml::events::Event;
use quick_xml::Reader;

/// Deepest nesting read; SOAP answers of real devices stay under 15.
const MAX_DEPTH: usize = 64;
/// Largest document read (a GetProfiles answer of a 16-channel recorder is ~200 KB).
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XmlError {
    #[error("not well-formed XML: {0}")]
    Syntax(String),
    #[error("XML nested deeper than {MAX_DEPTH} elements")]
    TooDeep,
    #[error("XML document larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    #[error("no XML element in the answer")]
    Empty,
}

/// One element: its local name (prefix dropped), attributes by local name, text and children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The first direct child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Direct children named `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The first element named `name` at any depth below (or this one), depth first.
    pub fn find(&self, name: &str) -> Option<&Element> {
        if self.name == name {
            return Some(self);
        }
        let mut stack: Vec<&Element> = self.children.iter().rev().collect();
        while let Some(element) = stack.pop() {
            if element.name == name {
                return Some(element);
            }
            stack.extend(element.children.iter().rev());
        }
        None
    }

    /// Every element named `name` below this one, in document order.
    pub fn find_all<'a>(&'a self, name: &str) -> Vec<&'a Element> {
        let mut found = Vec::new();
        let mut stack: Vec<&Element> = self.children.iter().rev().collect();
        while let Some(element) = stack.pop() {
            if element.name == name {
                found.push(element);
            }
            stack.extend(element.children.iter().rev());
        }
        found
    }

    /// The trimmed text of the first descendant named `name`.
    pub fn text_of(&self, name: &str) -> Option<String> {
        self.find(name).map(|e| e.text.trim().to_string())
    }

    /// An attribute by local name.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

fn local(name: &[u8]) -> String {
    let local = match name.iter().rposition(|&b| b == b':') {
        Some(colon) => &name[colon + 1..],
        None => name,
    };
    String::from_utf8_lossy(local).into_owned()
}

fn syntax(error: impl std::fmt::Display) -> XmlError {
    XmlError::Syntax(error.to_string())
}

fn open(start: &quick_xml::events::BytesStart) -> Result<Element, XmlError> {
    let mut element = Element {
        name: local(start.name().as_ref()),
        ..Element::default()
    };
    for attribute in start.attributes() {
        let attribute = attribute.map_err(syntax)?;
        let value = attribute.unescape_value().map_err(syntax)?;
        element
            .attributes
            .push((local(attribute.key.as_ref()), value.into_owned()));
    }
    Ok(element)
}

/// Parses a whole document into its root element.
pub fn parse(text: &str) -> Result<Element, XmlError> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(XmlError::TooLarge);
    }
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let event = reader.read_event().map_err(syntax)?;
        match event {
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                stack.push(open(&start)?);
            }
            Event::Empty(start) => {
                let element = open(&start)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = root.or(Some(element)),
                }
            }
            Event::End(_) => {
                let Some(element) = stack.pop() else {
                    return Err(XmlError::Syntax("closing tag without an opening one".into()));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = root.or(Some(element)),
                }
            }
            Event::Text(text) => {
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&text.decode().map_err(syntax)?);
                }
            }
            Event::CData(data) => {
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&data.decode().map_err(syntax)?);
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(current) = stack.last_mut() {
                    match reference.resolve_char_ref().map_err(syntax)? {
                        Some(c) => current.text.push(c),
                        None => {
                            let name = reference.decode().map_err(syntax)?;
                            let reference = format!("&{name};");
                            let resolved = quick_xml::escape::unescape(&reference).map_err(syntax)?;
                            current.text.push_str(&resolved);
                        }
                    }
                }
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Syntax("the document ends inside an element".into()));
    }
    root.ok_or(XmlError::Empty)
}

/// Escapes text for an element's content or an attribute value.
pub fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_local_names_text_and_entities() {
        let root = parse(
            r#"<?xml version="1.0"?><s:Envelope xmlns:s="x"><s:Body><tds:Model a:k="v">A&amp;B&#x41;</tds:Model><e/></s:Body></s:Envelope>"#,
        )
        .unwrap();
        assert_eq!(root.name, "Envelope");
        let model = root.find("Model").unwrap();
        assert_eq!(model.text, "A&BA");
        assert_eq!(model.attribute("k"), Some("v"));
        assert!(root.find("e").is_some());
    }

    #[test]
    fn refuses_broken_and_deep_documents() {
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("<a>").is_err());
        assert_eq!(parse(""), Err(XmlError::Empty));
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert_eq!(parse(&deep), Err(XmlError::TooDeep));
    }

    proptest! {
        #[test]
        fn never_panics(text in ".{0,400}") {
            let _ = parse(&text);
        }

        #[test]
        fn never_panics_on_tag_soup(parts in proptest::collection::vec(
            prop_oneof![Just("<a>"), Just("</a>"), Just("<b x='1'/>"), Just("&amp;"), Just("&#0;"),
                Just("&bogus;"), Just("<![CDATA[x]]>"), Just("text"), Just("<"), Just(">"), Just("<!--"),
                Just("<?xml?>"), Just("<p:q>"), Just("</p:q>")], 0..40)) {
            let _ = parse(&parts.concat());
        }
    }
}
