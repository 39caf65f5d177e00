//! The HTML of a mail, made safe to show (issue 15): ammonia keeps the
//! elements and attributes mail layout uses and drops everything that
//! runs or reaches out — scripts, event handlers, `javascript:` and other
//! schemes, forms, frames, `<base>`, `<meta>`, SVG and MathML, style
//! sheets, and in `style` attributes anything but plain layout properties
//! (no `url()`, no `expression()`). Remote images stay out unless the user
//! allows them; `cid:` images become `data:` URLs of the message's own
//! parts. The page is served under a Content-Security-Policy with
//! `sandbox` (no scripts, an opaque origin) as a second wall.

use base64::Engine;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// CSS properties a mail's `style` attributes keep.
const STYLE_PROPERTIES: &[&str] = &[
    "color",
    "background-color",
    "font",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "font-variant",
    "text-align",
    "text-decoration",
    "text-indent",
    "text-transform",
    "line-height",
    "letter-spacing",
    "word-spacing",
    "white-space",
    "vertical-align",
    "direction",
    "margin",
    "margin-top",
    "margin-right",
    "margin-bottom",
    "margin-left",
    "padding",
    "padding-top",
    "padding-right",
    "padding-bottom",
    "padding-left",
    "border",
    "border-top",
    "border-right",
    "border-bottom",
    "border-left",
    "border-color",
    "border-style",
    "border-width",
    "border-collapse",
    "border-spacing",
    "border-radius",
    "width",
    "max-width",
    "min-width",
    "height",
    "max-height",
    "min-height",
    "display",
    "list-style-type",
    "table-layout",
    "overflow",
    "float",
    "clear",
];

/// Layout attributes old mail uses, by element (besides ammonia's own).
const LAYOUT_ATTRIBUTES: &[(&str, &[&str])] = &[
    (
        "table",
        &[
            "width",
            "height",
            "border",
            "cellpadding",
            "cellspacing",
            "bgcolor",
            "align",
        ],
    ),
    (
        "td",
        &[
            "width", "height", "bgcolor", "align", "valign", "colspan", "rowspan", "nowrap",
        ],
    ),
    (
        "th",
        &[
            "width", "height", "bgcolor", "align", "valign", "colspan", "rowspan", "nowrap",
        ],
    ),
    ("tr", &["bgcolor", "align", "valign", "height"]),
    ("img", &["src", "alt", "width", "height", "border", "align"]),
    ("font", &["color", "face", "size"]),
    ("p", &["align"]),
    ("div", &["align"]),
    ("center", &[]),
];

/// A mail's HTML made safe, and how many remote images were held back.
pub struct Safe {
    pub html: String,
    pub blocked_images: usize,
}

/// A `style` attribute without declarations that fetch or compute.
fn quiet_style(value: &str) -> String {
    value
        .split(';')
        .filter(|d| {
            let d = d.to_ascii_lowercase();
            !(d.contains("url(")
                || d.contains("expression(")
                || d.contains("@import")
                || d.contains("behavior")
                || d.contains("-moz-binding")
                || d.contains('\\'))
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// `html` made safe. `cid` gives the bytes and type of the message's part
/// with a Content-ID; `remote_images` lets `http(s)` images through.
pub fn sanitize(html: &str, remote_images: bool, cid: &HashMap<String, (String, Vec<u8>)>) -> Safe {
    let blocked = Arc::new(AtomicUsize::new(0));
    let counter = blocked.clone();
    let inline: HashMap<String, String> = cid
        .iter()
        .filter(|(_, (ctype, _))| ctype.starts_with("image/"))
        .map(|(id, (ctype, bytes))| {
            let data = base64::engine::general_purpose::STANDARD.encode(bytes);
            (
                id.to_ascii_lowercase(),
                format!("data:{ctype};base64,{data}"),
            )
        })
        .collect();
    let mut builder = ammonia::Builder::default();
    builder
        .add_tags(["center", "font"])
        .add_generic_attributes(["style", "dir", "lang", "title"])
        .filter_style_properties(STYLE_PROPERTIES.iter().copied().collect::<HashSet<_>>())
        .url_schemes(
            ["http", "https", "mailto", "cid", "data"]
                .into_iter()
                .collect(),
        )
        .link_rel(Some("noopener noreferrer"))
        .set_tag_attribute_value("a", "target", "_blank")
        .strip_comments(true);
    for (tag, attributes) in LAYOUT_ATTRIBUTES {
        builder.add_tag_attributes(*tag, attributes.iter().copied());
    }
    builder.attribute_filter(move |element, attribute, value| {
        match (element, attribute) {
            ("img", "src") => {
                let lower = value.trim().to_ascii_lowercase();
                if let Some(id) = lower.strip_prefix("cid:") {
                    return inline
                        .get(id.trim_matches(['<', '>']))
                        .cloned()
                        .map(Into::into);
                }
                if lower.starts_with("data:image/") {
                    return Some(value.into());
                }
                if (lower.starts_with("http://") || lower.starts_with("https://")) && remote_images
                {
                    return Some(value.into());
                }
                counter.fetch_add(1, Ordering::Relaxed);
                None
            }
            // Links go to the web or to mail, nowhere else.
            ("a", "href") => {
                let lower = value.trim().to_ascii_lowercase();
                (lower.starts_with("http://")
                    || lower.starts_with("https://")
                    || lower.starts_with("mailto:"))
                .then(|| value.into())
            }
            (_, "style") => Some(quiet_style(value).into()),
            _ => Some(value.into()),
        }
    });
    let html = builder.clean(html).to_string();
    Safe {
        html,
        blocked_images: blocked.load(Ordering::Relaxed),
    }
}

/// The Content-Security-Policy the sanitised page is served under: no
/// script at all, a sandbox (an opaque origin, no forms, no top
/// navigation), images only inline unless remote ones were allowed.
pub fn policy(remote_images: bool) -> String {
    let images = if remote_images {
        "data: https: http:"
    } else {
        "data:"
    };
    format!(
        "default-src 'none'; img-src {images}; style-src 'unsafe-inline'; font-src data:; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'self'; \
         sandbox allow-popups allow-popups-to-escape-sandbox"
    )
}

/// For the fuzz target: any bytes as a mail's HTML.
#[doc(hidden)]
pub fn fuzz_one(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut cid = HashMap::new();
    cid.insert(
        "logo@x".to_string(),
        ("image/png".to_string(), vec![1, 2, 3]),
    );
    let safe = sanitize(&text, false, &cid);
    assert!(!safe.html.to_ascii_lowercase().contains("<script"));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hostile mail HTML: none of it may survive in a form that runs,
    /// loads or navigates.
    const HOSTILE: &[&str] = &[
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "<a href=\"javascript:alert(1)\">x</a>",
        "<a href=\" JaVaScRiPt:alert(1)\">x</a>",
        "<svg onload=alert(1)><script>alert(1)</script></svg>",
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
        "<iframe src=\"https://evil.example/\"></iframe>",
        "<object data=\"x.swf\"></object><embed src=x>",
        "<base href=\"https://evil.example/\">",
        "<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example/\">",
        "<form action=\"https://evil.example/\"><input name=p type=password></form>",
        "<style>@import url(https://evil.example/x.css); body{background:url(https://t.example/p)}</style>",
        "<div style=\"background-image:url(https://t.example/p.gif)\">x</div>",
        "<div style=\"width:expression(alert(1))\">x</div>",
        "<link rel=stylesheet href=\"https://evil.example/x.css\">",
        "<img src=\"https://tracker.example/pixel.gif\" width=1 height=1>",
        "<a href=\"data:text/html,<script>alert(1)</script>\">x</a>",
        "<div onclick=\"alert(1)\" onmouseover=alert(1)>x</div>",
        "<p style=\"color:red\\;x:url(y)\">x</p>",
    ];

    #[test]
    fn nothing_hostile_survives() {
        for html in HOSTILE {
            let out = sanitize(html, false, &HashMap::new())
                .html
                .to_ascii_lowercase();
            for bad in [
                "<script",
                "onerror",
                "onload",
                "onclick",
                "onmouseover",
                "javascript:",
                "<iframe",
                "<object",
                "<embed",
                "<base",
                "<meta",
                "<form",
                "<input",
                "<style",
                "@import",
                "url(",
                "expression(",
                "<link",
                "tracker.example",
                "<svg",
                "<math",
                "data:text",
            ] {
                assert!(!out.contains(bad), "{bad} survived {html:?}: {out}");
            }
        }
    }

    #[test]
    fn mail_layout_survives_and_images_are_chosen() {
        let mut cid = HashMap::new();
        cid.insert(
            "logo@x".to_string(),
            ("image/png".to_string(), vec![137, 80, 78, 71]),
        );
        let html = "<table width=600 bgcolor=#fff><tr><td align=center style=\"color:#333;padding:4px\">\
            <font color=red>Hi</font> <a href=\"https://example.com/\">link</a>\
            <img src=\"cid:logo@x\" alt=logo><img src=\"https://cdn.example/a.png\"></td></tr></table>";
        let blocked = sanitize(html, false, &cid);
        assert_eq!(blocked.blocked_images, 1);
        let out = &blocked.html;
        assert!(
            out.contains("width=\"600\"") && out.contains("bgcolor=\"#fff\""),
            "{out}"
        );
        assert!(out.contains("color:#333"), "{out}");
        assert!(out.contains("<font color=\"red\">"), "{out}");
        assert!(
            out.contains("src=\"data:image/png;base64,iVBORw==\""),
            "{out}"
        );
        assert!(!out.contains("cdn.example"), "{out}");
        assert!(
            out.contains("rel=\"noopener noreferrer\"") && out.contains("target=\"_blank\""),
            "{out}"
        );
        let allowed = sanitize(html, true, &cid);
        assert_eq!(allowed.blocked_images, 0);
        assert!(allowed.html.contains("https://cdn.example/a.png"));
        assert!(policy(false).contains("img-src data:;"));
        assert!(policy(true).contains("https:"));
    }
}

#[cfg(test)]
mod fuzz_corpus {
    #[test]
    fn webmail_html() {
        tern_core::fuzz_corpus::replay("webmail_html", super::fuzz_one);
    }
}
