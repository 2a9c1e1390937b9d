//! サインイン with a passkey, and パスキー登録 with an enrolment code (which travels in the
//! address fragment and never reaches a server log). The ceremonies themselves run in
//! `console.js` against `/api/console/{signin,enrol}/…`.

use axum::{
    extract::{OriginalUri, Request, State},
    http::StatusCode,
    response::Response,
};
use leptos::prelude::*;

use super::{PageLang, Screen, Section, is_demo, path_of, tr};
use crate::AppState;

/// Where to go after signing in: only a console address of this site.
fn next_of(request: &Request) -> String {
    request
        .uri()
        .query()
        .and_then(|q| {
            q.split('&')
                .find_map(|pair| pair.strip_prefix("next="))
                .map(percent_decode)
        })
        .filter(|next| safe_next(next))
        .unwrap_or_else(|| "/console".to_owned())
}

/// A local console path: starts with `/console`, no scheme, no `//`, no backslash.
fn safe_next(next: &str) -> bool {
    next.starts_with("/console")
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.contains("://")
        && next.chars().all(|c| !c.is_control())
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `GET /console/signin?next=…`.
pub async fn signin(
    State(state): State<AppState>,
    lang: PageLang,
    uri: OriginalUri,
    request: Request,
) -> Response {
    let next = next_of(&request);
    let l = lang.lang;
    let demo = is_demo(&state).then(|| {
        let accounts = [
            ("admin", tr(l, "管理者", "administrator")),
            ("staff", tr(l, "一般利用者（受付）", "general user (reception)")),
            ("doctor", tr(l, "医療情報閲覧（医師）", "medical information viewer (doctor)")),
        ]
        .into_iter()
        .map(|(id, role)| {
            view! {
                <li>
                    <button type="button" class="secondary" data-demo-enrol=id>
                        <code>{id}</code>" — "{role}
                    </button>
                </li>
            }
        })
        .collect_view();
        view! {
            <section class="panel demo" aria-labelledby="demo-h">
                <h2 id="demo-h">"DEMO " {tr(l, "デモ用の利用者", "Demo accounts")}</h2>
                <p>{tr(l,
                    "デモでは、次の利用者のパスキーをこの端末に登録してからサインインできます。",
                    "In the demo, register a passkey on this device for one of these accounts, then sign in.")}</p>
                <ul class="plain button-list">{accounts}</ul>
                <p class="form-message" role="status" id="demo-message"></p>
            </section>
        }
    });
    let body = view! {
        <section class="panel narrow" aria-labelledby="signin-h">
            <h1 id="signin-h">{tr(l, "コンソールにサインイン", "Sign in to the console")}</h1>
            <p>{tr(l,
                "この端末に登録したパスキー（指紋・顔・PINなど）でサインインします。",
                "Sign in with the passkey registered on this device (fingerprint, face or PIN).")}</p>
            <p><button type="button" id="signin" data-next=next>{tr(l, "パスキーでサインイン", "Sign in with a passkey")}</button></p>
            <p class="form-message" role="alert" id="signin-message"
                data-failed=tr(l, "サインインできませんでした。もう一度お試しください。", "Sign-in failed. Please try again.")
                data-unsupported=tr(l, "このブラウザはパスキーに対応していません。", "This browser does not support passkeys.")></p>
            <p class="muted small">{tr(l,
                "パスキーがない場合は、管理者からパスキー登録用のリンクを受け取ってください。操作がないまま30分経つと自動でサインアウトします。",
                "No passkey yet? Ask an administrator for an enrolment link. You are signed out after 30 minutes without activity.")}</p>
        </section>
        {demo}
    }
    .into_any();
    Screen {
        lang,
        title: tr(l, "サインイン", "Sign in").to_owned(),
        viewer: None,
        section: Section::None,
        path: path_of(&uri),
        print: false,
    }
    .render(StatusCode::OK, body)
}

/// `GET /console/enrol#CODE`.
pub async fn enrol(lang: PageLang, uri: OriginalUri) -> Response {
    let l = lang.lang;
    let body = view! {
        <section class="panel narrow" aria-labelledby="enrol-h">
            <h1 id="enrol-h">{tr(l, "パスキーの登録", "Register a passkey")}</h1>
            <p id="enrol-account" data-testid="enrol-account">{tr(l, "登録コードを確認しています…", "Checking the enrolment code…")}</p>
            <p><button type="button" id="enrol" hidden>{tr(l, "この端末にパスキーを登録", "Register a passkey on this device")}</button></p>
            <p class="form-message" role="alert" id="enrol-message"
                data-invalid=tr(l, "この登録コードは使えません（使用済みまたは期限切れ）。管理者に新しいコードを依頼してください。",
                    "This enrolment code cannot be used (used or expired). Ask an administrator for a new one.")
                data-failed=tr(l, "登録できませんでした。もう一度お試しください。", "Registration failed. Please try again.")
                data-for=tr(l, "登録する利用者: ", "Account: ")></p>
        </section>
    }
    .into_any();
    Screen {
        lang,
        title: tr(l, "パスキーの登録", "Register a passkey").to_owned(),
        viewer: None,
        section: Section::None,
        path: path_of(&uri),
        print: false,
    }
    .render(StatusCode::OK, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_paths_are_followed_after_sign_in() {
        assert!(safe_next("/console/receptions/abc"));
        assert!(!safe_next("//evil.example/console"));
        assert!(!safe_next("https://evil.example/console"));
        assert!(!safe_next("/r/abc"));
        assert!(!safe_next("/console\\..\\x"));
        assert_eq!(percent_decode("%2Fconsole%3Fdate%3D1"), "/console?date=1");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
