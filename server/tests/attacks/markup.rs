//! Section 2, "Markup in the page title": an administrator (or whoever took over an
//! administrator's passkey) sets the institution's Japanese and English names and a link's label
//! and booking reference to markup through the console API, as the console page does. Every
//! patient page (landing, date, consent, review, card step, the app's return page, the practice
//! app, 同意照会) and every console page is then fetched, in both languages, and its head must
//! hold exactly one title, no `<meta http-equiv>` and no script of the administrator's, and the
//! markup must appear nowhere in the document unescaped.
//!
//! Without the fix the landing page's title carried the name as it is (leptos_meta writes the
//! title's text into the head unescaped), and a `<meta http-equiv=refresh>` sent every patient
//! who scanned the printed QR code to another site.

use reqwest::Method;
use serde_json::json;

use crate::common::console::{Answer, demo_staff};
use crate::common::patient::{Patient, choices_for};
use crate::common::stack::stack;

/// WebAuthn refuses IP addresses as relying party ids: the console runs on `localhost`.
const ORIGIN: &str = "http://localhost:0";

/// The markup each field gets (each within the 100 characters a field may hold).
const NAME_JA: &str =
    r#"医院</title><meta http-equiv=refresh content="0;url=https://evil.example">&'"#;
const NAME_EN: &str =
    r#"Clinic</title><script>alert("en")</script><meta http-equiv="refresh" & 'x'"#;
const LABEL: &str =
    r#"</title><meta http-equiv=refresh content="0;url=https://evil.example"><script>l</script>"#;
const BOOKING: &str = r#"<meta http-equiv="refresh" content="0;url=//evil.example">"#;

/// Pieces of the markup that must never reach a document unescaped.
const RAW: [&str; 5] = [
    "</title><meta",
    "<meta http-equiv=refresh",
    r#"<meta http-equiv="refresh" content="0;url=//evil"#,
    r#"<script>alert("en")"#,
    "<script>l</script>",
];

// ---------------------------------------------------------------------------------------------
// The checks.

/// `text` escaped as an HTML serialiser may: `&`, `<`, `>` always; `"` and `'` either way.
fn escaped_forms(text: &str) -> [String; 3] {
    let text_only = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let quoted = text_only.replace('"', "&quot;");
    [quoted.replace('\'', "&#39;"), quoted, text_only]
}

/// `html` without the values of its tags' quoted attributes (where `<` is not markup, and an
/// HTML serialiser need not escape it), comments and all: what a browser reads as markup or text.
fn outside_attribute_values(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    let mut quote: Option<char> = None;
    for c in html.chars() {
        match (in_tag, quote) {
            (true, Some(q)) => {
                if c == q {
                    quote = None;
                    out.push(c);
                }
            }
            (true, None) => {
                if c == '"' || c == '\'' {
                    quote = Some(c);
                } else if c == '>' {
                    in_tag = false;
                }
                out.push(c);
            }
            (false, _) => {
                in_tag = c == '<';
                out.push(c);
            }
        }
    }
    out
}

/// The document head of `html` (up to `</head>`); panics without one.
fn head(html: &str) -> &str {
    let end = html.find("</head>").expect("a document head");
    &html[..end]
}

/// The document's head holds one title and no meta refresh or foreign script, and none of
/// the administrator's markup appears unescaped anywhere. Returns the title's text.
fn assert_inert(page: &str, html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let markup = outside_attribute_values(&lower);
    for raw in RAW {
        assert!(
            !markup.contains(&raw.to_ascii_lowercase()),
            "{page}: {raw:?} unescaped in\n{html}"
        );
    }
    let head = head(html);
    let head_lower = &head.to_ascii_lowercase();
    assert_eq!(head_lower.matches("<title").count(), 1, "{page}: {head}");
    assert_eq!(head_lower.matches("</title>").count(), 1, "{page}: {head}");
    // Every `<meta` here is a tag (text has its `<` escaped): none may be a pragma directive.
    let pragmas = head_lower
        .match_indices("<meta")
        .filter(|(at, _)| {
            let tag = &head_lower[*at..];
            tag[..tag.find('>').unwrap_or(tag.len())].contains("http-equiv")
        })
        .count();
    assert_eq!(pragmas, 0, "{page}: {head}");
    let scripts = outside_attribute_values(head_lower);
    assert!(!scripts.contains("<script>alert("), "{page}: {head}");
    assert!(!lower.contains("evil.example\">"), "{page}");
    let start = head.find("<title>").expect("title") + "<title>".len();
    let end = head[start..].find("</title>").expect("title end") + start;
    head[start..end].to_owned()
}

async fn page(http: &reqwest::Client, base: &str, path: &str) -> String {
    let response = http
        .get(format!("{base}{path}"))
        .send()
        .await
        .expect("server answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    assert_eq!(status, 200, "{path}: {text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_set_by_an_administrator_stays_text_in_every_head() {
    let stack = stack(None, Some(ORIGIN)).await;
    // The administrator: a demo account with a software passkey, signed in.
    let (admin, _) = demo_staff(&stack, "admin").await;

    // The administrator's edits, through the console API.
    let Answer {
        status,
        body: settings,
        ..
    } = admin.get("/api/console/settings").await;
    assert_eq!(status, 200, "{settings}");
    let mut changed = settings.clone();
    changed["name_ja"] = json!(NAME_JA);
    changed["name_en"] = json!(NAME_EN);
    let Answer {
        status,
        body: answer,
        ..
    } = admin
        .call(Method::PUT, "/api/console/settings", Some(changed))
        .await;
    assert_eq!(status, 200, "{answer}");
    let Answer {
        status, body: link, ..
    } = admin
        .post(
            "/api/console/links",
            json!({ "kind": "separate_route", "label": LABEL, "booking_ref": BOOKING }),
        )
        .await;
    assert_eq!(status, 201, "{link}");
    let link = link["id"].as_str().expect("link id").to_owned();
    let Answer {
        status,
        body: online,
        ..
    } = admin
        .post(
            "/api/console/links",
            json!({
                "kind": "online_care",
                "label": LABEL,
                "visit_date": stack.today().format("%Y-%m-%d").to_string(),
            }),
        )
        .await;
    assert_eq!(status, 201, "{online}");
    let online = online["id"].as_str().expect("link id").to_owned();

    // Patient pages: the landing page carries the name in its title, escaped.
    let anonymous = reqwest::Client::new();
    for (lang, name) in [("ja", NAME_JA), ("en", NAME_EN)] {
        for id in [&link, &online] {
            let html = page(&anonymous, &stack.base, &format!("/r/{id}?lang={lang}")).await;
            let title = assert_inert(&format!("landing {lang}"), &html);
            assert!(
                escaped_forms(name)
                    .iter()
                    .any(|e| title.contains(e.as_str())),
                "landing {lang}: the name escaped in the title: {title:?}"
            );
        }
    }
    // The flow's pages, in a patient's session with its choices made.
    let patient = Patient::new(&stack.base);
    assert_eq!(patient.start(&link).await.status, 201);
    let review = patient
        .choose(choices_for("separate_route", stack.today()))
        .await;
    assert_eq!(review.status, 200, "{:?}", review.body);
    for lang in ["ja", "en"] {
        for step in [
            "consent",
            "review",
            "card",
            "eid-return",
            "eid-app",
            "manage",
        ] {
            let path = format!("/r/{link}/{step}?lang={lang}");
            let html = page(&patient.http, &stack.base, &path).await;
            assert_inert(&path, &html);
        }
    }
    let patient = Patient::new(&stack.base);
    assert_eq!(patient.start(&online).await.status, 201);
    for step in ["date", "consent"] {
        let path = format!("/r/{online}/{step}");
        let html = page(&patient.http, &stack.base, &path).await;
        assert_inert(&path, &html);
    }

    // Console pages, where the names and labels are shown.
    for lang in ["ja", "en"] {
        for path in [
            "/console".to_owned(),
            "/console/links".to_owned(),
            format!("/console/links/{link}/sheet"),
            "/console/settings".to_owned(),
            "/console/accounts".to_owned(),
            "/console/audit".to_owned(),
        ] {
            let path = format!("{path}?lang={lang}");
            let Answer {
                status, text: html, ..
            } = admin.get(&path).await;
            assert_eq!(status, 200, "{path}: {html}");
            assert_inert(&path, &html);
        }
    }
    // The names and the label did reach the console pages (escaped, as text).
    let settings_page = admin.get("/console/settings").await.text;
    let links_page = admin.get("/console/links").await.text;
    for (html, text) in [(&settings_page, NAME_JA), (&links_page, LABEL)] {
        assert!(
            escaped_forms(text)
                .iter()
                .any(|e| html.contains(e.as_str())),
            "{text:?} shown escaped"
        );
    }
}
