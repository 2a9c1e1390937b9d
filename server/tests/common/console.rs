//! The institution console's API over HTTP for integration tests: a console client (our Origin
//! and the CSRF header on state-changing requests, the `uk_console` cookie kept by hand so tests
//! can copy and replay it), and a software passkey authenticator in place of a browser (P-256,
//! "none" attestation, discoverable, user verification claimed) with the enrolment and sign-in
//! ceremonies. Used by `tests/console.rs` and the attacks suite (`tests/attacks/`).

#![allow(dead_code)]

use std::sync::Mutex;

use base64::Engine as _;
use p256::ecdsa::{Signature, SigningKey, signature::Signer as _};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uketsuke_server::storage;

use super::stack::Stack;

/// A console client for the stack's server.
pub trait ConsoleClient {
    fn console(&self) -> Console;
}

impl ConsoleClient for Stack {
    fn console(&self) -> Console {
        Console::new(&self.base, &self.origin())
    }
}

// ---------------------------------------------------------------------------------------------
// A console client: sends our Origin and the CSRF header on state-changing requests, keeps the
// `uk_console` cookie by hand so tests can copy and replay it.

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Answer {
    pub fn error(&self) -> Option<&str> {
        self.body.get("error").and_then(Value::as_str)
    }
}

pub struct Console {
    pub http: reqwest::Client,
    pub base: String,
    pub origin: String,
    pub cookie: Mutex<Option<String>>,
}

impl Console {
    pub fn new(base: &str, origin: &str) -> Console {
        Console {
            // Idle pooled connections are dropped well before the server's 5 s idle close, so
            // that a request never goes out on a connection the server is closing.
            http: reqwest::Client::builder()
                .pool_idle_timeout(std::time::Duration::from_secs(2))
                .build()
                .expect("client"),
            base: base.trim_end_matches('/').to_owned(),
            origin: origin.to_owned(),
            cookie: Mutex::new(None),
        }
    }

    pub fn token(&self) -> Option<String> {
        self.cookie.lock().expect("lock").clone()
    }

    pub fn with_token(&self, token: Option<String>) -> Console {
        let other = Console::new(&self.base, &self.origin);
        *other.cookie.lock().expect("lock") = token;
        other
    }

    /// A request with the session cookie and nothing else.
    pub fn bare(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = self.token() {
            request = request.header("cookie", format!("uk_console={token}"));
        }
        request
    }

    /// A request as the console page sends it.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let state_changing = !matches!(method, Method::GET | Method::HEAD);
        let mut request = self.bare(method, path);
        if state_changing {
            request = request
                .header("origin", &self.origin)
                .header("x-uketsuke-csrf", "1");
        }
        request
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("server answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        for cookie in headers.get_all("set-cookie") {
            let text = cookie.to_str().expect("ascii cookie");
            if let Some(rest) = text.strip_prefix("uk_console=") {
                let value = rest.split(';').next().unwrap_or_default();
                *self.cookie.lock().expect("lock") = (!value.is_empty()).then(|| value.to_owned());
            }
        }
        let text = response.text().await.unwrap_or_default();
        Answer {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }
}

// ---------------------------------------------------------------------------------------------
// A software passkey: what a platform authenticator does, reduced to the bytes.

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64d(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .expect("base64url")
}

pub fn cbor_head(major: u8, len: usize, out: &mut Vec<u8>) {
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

pub fn cbor_text(text: &str, out: &mut Vec<u8>) {
    cbor_head(3, text.len(), out);
    out.extend(text.as_bytes());
}

pub fn cbor_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    cbor_head(2, bytes.len(), out);
    out.extend(bytes);
}

/// A small integer key or value (-24..=23).
pub fn cbor_small(n: i8, out: &mut Vec<u8>) {
    if n >= 0 {
        cbor_head(0, n as usize, out);
    } else {
        cbor_head(1, (-1 - i16::from(n)) as usize, out);
    }
}

pub fn der_integer(bytes: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    if v.first().is_none_or(|b| b & 0x80 != 0) {
        v.insert(0, 0);
    }
    let mut out = vec![0x02, v.len() as u8];
    out.extend(v);
    out
}

pub fn der_signature(signature: &Signature) -> Vec<u8> {
    let bytes = signature.to_bytes();
    let (r, s) = bytes.split_at(32);
    let mut body = der_integer(r);
    body.extend(der_integer(s));
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

#[derive(Clone)]
pub struct SoftPasskey {
    pub key: SigningKey,
    pub credential_id: Vec<u8>,
    pub user_handle: Vec<u8>,
    pub counter: u32,
    pub origin: String,
    /// Whether it claims user verification (a security key without a PIN would not).
    pub verifies_user: bool,
}

impl SoftPasskey {
    pub fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        json!({
            "type": kind,
            "challenge": challenge,
            "origin": self.origin,
            "crossOrigin": false,
        })
        .to_string()
        .into_bytes()
    }

    pub fn flags(&self) -> u8 {
        // UP, and UV when it verifies the user.
        if self.verifies_user { 0x05 } else { 0x01 }
    }

    /// `navigator.credentials.create` for `options` (the server's creation options).
    pub fn create(origin: &str, options: &Value) -> (SoftPasskey, Value) {
        let public_key = &options["publicKey"];
        let rp_id = public_key["rp"]["id"].as_str().expect("rp id");
        let challenge = public_key["challenge"].as_str().expect("challenge");
        let passkey = SoftPasskey {
            key: storage::institutions::generate_key(),
            credential_id: rand::random::<[u8; 16]>().to_vec(),
            user_handle: b64d(public_key["user"]["id"].as_str().expect("user id")),
            counter: 0,
            origin: origin.to_owned(),
            verifies_user: true,
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
        auth_data.push(passkey.flags() | 0x40);
        auth_data.extend(passkey.counter.to_be_bytes());
        auth_data.extend([0u8; 16]);
        auth_data.extend((passkey.credential_id.len() as u16).to_be_bytes());
        auth_data.extend(&passkey.credential_id);
        auth_data.extend(cose);
        let mut attestation = Vec::new();
        cbor_head(5, 3, &mut attestation);
        cbor_text("fmt", &mut attestation);
        cbor_text("none", &mut attestation);
        cbor_text("attStmt", &mut attestation);
        cbor_head(5, 0, &mut attestation);
        cbor_text("authData", &mut attestation);
        cbor_bytes(&auth_data, &mut attestation);
        let client_data = passkey.client_data("webauthn.create", challenge);
        let credential = json!({
            "id": b64(&passkey.credential_id),
            "rawId": b64(&passkey.credential_id),
            "type": "public-key",
            "response": {
                "attestationObject": b64(&attestation),
                "clientDataJSON": b64(&client_data),
            },
            "extensions": {},
        });
        (passkey, credential)
    }

    /// `navigator.credentials.get` for `options` (discoverable: no allow list).
    pub fn get(&mut self, options: &Value) -> Value {
        let public_key = &options["publicKey"];
        let rp_id = public_key["rpId"].as_str().expect("rp id");
        let challenge = public_key["challenge"].as_str().expect("challenge");
        self.counter += 1;
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth_data.push(self.flags());
        auth_data.extend(self.counter.to_be_bytes());
        let client_data = self.client_data("webauthn.get", challenge);
        let mut signed = auth_data.clone();
        signed.extend(Sha256::digest(&client_data));
        let signature: Signature = self.key.sign(&signed);
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "authenticatorData": b64(&auth_data),
                "clientDataJSON": b64(&client_data),
                "signature": b64(&der_signature(&signature)),
                "userHandle": b64(&self.user_handle),
            },
            "extensions": {},
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Ceremonies.

pub async fn demo_code(stack: &Stack, account: &str) -> String {
    let answer = stack
        .console()
        .post(
            "/api/console/demo/enrolment-code",
            json!({ "account": account }),
        )
        .await;
    assert_eq!(answer.status, 201, "{answer:?}");
    let link = answer.body["link"].as_str().expect("link");
    assert!(link.starts_with(&format!("{}/console/enrol#", stack.origin())));
    answer.body["code"].as_str().expect("code").to_owned()
}

/// Enrols a passkey with `code`; returns it and its id on the server.
pub async fn enrol(stack: &Stack, code: &str) -> (SoftPasskey, String) {
    let console = stack.console();
    let start = console
        .post("/api/console/enrol/start", json!({ "code": code }))
        .await;
    assert_eq!(start.status, 200, "{start:?}");
    let options = &start.body["options"];
    let selection = &options["publicKey"]["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required");
    assert_eq!(selection["requireResidentKey"], true);
    assert_eq!(selection["userVerification"], "required");
    assert_eq!(options["publicKey"]["rp"]["id"], "localhost");
    let (passkey, credential) = SoftPasskey::create(&stack.origin(), options);
    let finish = console
        .post(
            "/api/console/enrol/finish",
            json!({ "code": code, "credential": credential }),
        )
        .await;
    assert_eq!(finish.status, 201, "{finish:?}");
    let id = finish.body["passkey"].as_str().expect("id").to_owned();
    (passkey, id)
}

pub async fn try_signin(console: &Console, passkey: &mut SoftPasskey) -> Answer {
    let start = console.post("/api/console/signin/start", json!({})).await;
    assert_eq!(start.status, 200, "{start:?}");
    let options = &start.body["options"];
    assert_eq!(options["publicKey"]["userVerification"], "required");
    assert!(
        options["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "discoverable: {options}"
    );
    assert!(options.get("mediation").is_none(), "{options}");
    let credential = passkey.get(options);
    console
        .post(
            "/api/console/signin/finish",
            json!({ "ceremony": start.body["ceremony"], "credential": credential }),
        )
        .await
}

pub async fn signin(stack: &Stack, passkey: &mut SoftPasskey) -> Console {
    let console = stack.console();
    let answer = try_signin(&console, passkey).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(console.token().is_some());
    console
}

/// A demo account with an enrolled passkey, signed in.
pub async fn demo_staff(stack: &Stack, account: &str) -> (Console, SoftPasskey) {
    let code = demo_code(stack, account).await;
    let (mut passkey, _) = enrol(stack, &code).await;
    let console = signin(stack, &mut passkey).await;
    (console, passkey)
}
