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

use std::sync::Mutex;

use base64::Engine as _;
use p256::ecdsa::{Signature, SigningKey, signature::Signer as _};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::patient::{Patient, choices_for};
use crate::common::stack::{Stack, stack};

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
// The administrator: a demo account with a software passkey (P-256, "none" attestation,
// discoverable, user verification claimed), as `server/tests/console.rs` signs in.

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A CBOR item head (major type, length) for the few short items a credential needs.
fn cbor_head(major: u8, len: usize, out: &mut Vec<u8>) {
    let major = major << 5;
    match len {
        0..=23 => out.push(major | len as u8),
        24..=0xff => out.extend([major | 24, len as u8]),
        _ => {
            out.push(major | 25);
            out.extend((len as u16).to_be_bytes());
        }
    }
}

fn cbor_text(text: &str, out: &mut Vec<u8>) {
    cbor_head(3, text.len(), out);
    out.extend(text.as_bytes());
}

fn cbor_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    cbor_head(2, bytes.len(), out);
    out.extend(bytes);
}

/// A small integer (-24..=23).
fn cbor_small(n: i8, out: &mut Vec<u8>) {
    if n >= 0 {
        cbor_head(0, n as usize, out);
    } else {
        cbor_head(1, (-1 - i16::from(n)) as usize, out);
    }
}

/// An ECDSA signature as the DER SEQUENCE of two INTEGERs WebAuthn carries.
fn der_signature(signature: &Signature) -> Vec<u8> {
    let integer = |bytes: &[u8]| {
        let mut v: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
        if v.first().is_none_or(|b| b & 0x80 != 0) {
            v.insert(0, 0);
        }
        let mut out = vec![0x02, v.len() as u8];
        out.extend(v);
        out
    };
    let bytes = signature.to_bytes();
    let (r, s) = bytes.split_at(32);
    let mut body = integer(r);
    body.extend(integer(s));
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

struct Passkey {
    key: SigningKey,
    id: Vec<u8>,
    user: Vec<u8>,
    counter: u32,
}

fn client_data(kind: &str, challenge: &str, origin: &str) -> Vec<u8> {
    json!({ "type": kind, "challenge": challenge, "origin": origin, "crossOrigin": false })
        .to_string()
        .into_bytes()
}

/// A console client: our Origin and the CSRF header on every request, the `uk_console` cookie
/// kept by hand.
struct Console {
    http: reqwest::Client,
    base: String,
    origin: String,
    cookie: Mutex<Option<String>>,
}

impl Console {
    fn new(stack: &Stack) -> Console {
        Console {
            http: reqwest::Client::new(),
            base: stack.base.trim_end_matches('/').to_owned(),
            origin: stack.origin(),
            cookie: Mutex::new(None),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, String) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("origin", &self.origin)
            .header("x-uketsuke-csrf", "1");
        if let Some(token) = self.cookie.lock().expect("lock").clone() {
            request = request.header("cookie", format!("uk_console={token}"));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("server answers");
        let status = response.status().as_u16();
        for cookie in response.headers().get_all("set-cookie") {
            if let Some(rest) = cookie
                .to_str()
                .ok()
                .and_then(|c| c.strip_prefix("uk_console="))
            {
                let value = rest.split(';').next().unwrap_or_default();
                *self.cookie.lock().expect("lock") = (!value.is_empty()).then(|| value.to_owned());
            }
        }
        (status, response.text().await.unwrap_or_default())
    }

    async fn json(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let (status, text) = self.send(method, path, body).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// The demo administrator, enrolled with a new passkey and signed in.
async fn administrator(stack: &Stack) -> Console {
    let console = Console::new(stack);
    let post = reqwest::Method::POST;
    let (status, code) = console
        .json(
            post.clone(),
            "/api/console/demo/enrolment-code",
            Some(json!({ "account": "admin" })),
        )
        .await;
    assert_eq!(status, 201, "{code}");
    let code = code["code"].as_str().expect("code").to_owned();
    let (status, start) = console
        .json(
            post.clone(),
            "/api/console/enrol/start",
            Some(json!({ "code": code })),
        )
        .await;
    assert_eq!(status, 200, "{start}");
    let options = &start["options"]["publicKey"];
    let rp_id = options["rp"]["id"].as_str().expect("rp id");
    let mut passkey = Passkey {
        key: uketsuke_server::storage::institutions::generate_key(),
        id: rand::random::<[u8; 16]>().to_vec(),
        user: base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(options["user"]["id"].as_str().expect("user id"))
            .expect("base64url"),
        counter: 0,
    };
    let point = passkey.key.verifying_key().to_encoded_point(false);
    let mut cose = Vec::new();
    cbor_head(5, 5, &mut cose);
    for (k, v) in [(1i8, 2i8), (3, -7), (-1, 1)] {
        cbor_small(k, &mut cose);
        cbor_small(v, &mut cose);
    }
    cbor_small(-2, &mut cose);
    cbor_bytes(point.x().expect("x"), &mut cose);
    cbor_small(-3, &mut cose);
    cbor_bytes(point.y().expect("y"), &mut cose);
    let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
    auth_data.push(0x45); // UP, UV, attested credential data
    auth_data.extend(passkey.counter.to_be_bytes());
    auth_data.extend([0u8; 16]);
    auth_data.extend((passkey.id.len() as u16).to_be_bytes());
    auth_data.extend(&passkey.id);
    auth_data.extend(cose);
    let mut attestation = Vec::new();
    cbor_head(5, 3, &mut attestation);
    cbor_text("fmt", &mut attestation);
    cbor_text("none", &mut attestation);
    cbor_text("attStmt", &mut attestation);
    cbor_head(5, 0, &mut attestation);
    cbor_text("authData", &mut attestation);
    cbor_bytes(&auth_data, &mut attestation);
    let challenge = options["challenge"].as_str().expect("challenge");
    let credential = json!({
        "id": b64(&passkey.id),
        "rawId": b64(&passkey.id),
        "type": "public-key",
        "response": {
            "attestationObject": b64(&attestation),
            "clientDataJSON": b64(&client_data("webauthn.create", challenge, &console.origin)),
        },
        "extensions": {},
    });
    let (status, finish) = console
        .json(
            post.clone(),
            "/api/console/enrol/finish",
            Some(json!({ "code": code, "credential": credential })),
        )
        .await;
    assert_eq!(status, 201, "{finish}");

    let (status, start) = console
        .json(post.clone(), "/api/console/signin/start", Some(json!({})))
        .await;
    assert_eq!(status, 200, "{start}");
    let options = &start["options"]["publicKey"];
    let rp_id = options["rpId"].as_str().expect("rp id");
    let challenge = options["challenge"].as_str().expect("challenge");
    passkey.counter += 1;
    let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
    auth_data.push(0x05); // UP, UV
    auth_data.extend(passkey.counter.to_be_bytes());
    let client = client_data("webauthn.get", challenge, &console.origin);
    let mut signed = auth_data.clone();
    signed.extend(Sha256::digest(&client));
    let signature: Signature = passkey.key.sign(&signed);
    let credential = json!({
        "id": b64(&passkey.id),
        "rawId": b64(&passkey.id),
        "type": "public-key",
        "response": {
            "authenticatorData": b64(&auth_data),
            "clientDataJSON": b64(&client),
            "signature": b64(&der_signature(&signature)),
            "userHandle": b64(&passkey.user),
        },
        "extensions": {},
    });
    let (status, answer) = console
        .json(
            post,
            "/api/console/signin/finish",
            Some(json!({ "ceremony": start["ceremony"], "credential": credential })),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    console
}

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
    let admin = administrator(&stack).await;

    // The administrator's edits, through the console API.
    let (status, settings) = admin
        .json(reqwest::Method::GET, "/api/console/settings", None)
        .await;
    assert_eq!(status, 200, "{settings}");
    let mut changed = settings.clone();
    changed["name_ja"] = json!(NAME_JA);
    changed["name_en"] = json!(NAME_EN);
    let (status, answer) = admin
        .json(reqwest::Method::PUT, "/api/console/settings", Some(changed))
        .await;
    assert_eq!(status, 200, "{answer}");
    let (status, link) = admin
        .json(
            reqwest::Method::POST,
            "/api/console/links",
            Some(json!({ "kind": "separate_route", "label": LABEL, "booking_ref": BOOKING })),
        )
        .await;
    assert_eq!(status, 201, "{link}");
    let link = link["id"].as_str().expect("link id").to_owned();
    let (status, online) = admin
        .json(
            reqwest::Method::POST,
            "/api/console/links",
            Some(json!({
                "kind": "online_care",
                "label": LABEL,
                "visit_date": stack.today().format("%Y-%m-%d").to_string(),
            })),
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
            let (status, html) = admin.send(reqwest::Method::GET, &path, None).await;
            assert_eq!(status, 200, "{path}: {html}");
            assert_inert(&path, &html);
        }
    }
    // The names and the label did reach the console pages (escaped, as text).
    let (_, settings_page) = admin
        .send(reqwest::Method::GET, "/console/settings", None)
        .await;
    let (_, links_page) = admin
        .send(reqwest::Method::GET, "/console/links", None)
        .await;
    for (html, text) in [(&settings_page, NAME_JA), (&links_page, LABEL)] {
        assert!(
            escaped_forms(text)
                .iter()
                .any(|e| html.contains(e.as_str())),
            "{text:?} shown escaped"
        );
    }
}
