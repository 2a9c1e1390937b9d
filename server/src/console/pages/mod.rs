//! The console's screens, rendered on the server from the same handlers as the JSON API (so
//! every view is authorised and logged exactly as an API call is) and enhanced by one small
//! script, `console.js`, for passkeys, live updates and forms. Nothing here ships to patients'
//! phones: the patient WASM stays as small as it was.
//!
//! Every screen answers in Japanese or English (`?lang=`, then the `uk_lang` cookie), is never
//! cached (`Cache-Control: no-store`), and sends anyone not signed in to the sign-in screen.

mod admin;
mod links;
mod receptions;
mod signin;

use axum::{
    Router,
    extract::{FromRequestParts, OriginalUri, State},
    http::{HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use leptos::prelude::*;

use super::{Staff, passkeys::Me};
use crate::{AppState, gate::Role, http::error::ApiError};

pub use uketsuke_app::i18n::Lang;

/// The console's script and stylesheet, built into the binary.
const SCRIPT: &str = include_str!("../../../assets/console.js");
const STYLE: &str = include_str!("../../../assets/console.css");

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/console", get(receptions::list))
        .route("/console/", get(receptions::list))
        .route("/console/receptions/{id}", get(receptions::detail))
        .route("/console/export", get(receptions::rececon))
        .route("/console/signin", get(signin::signin))
        .route("/console/enrol", get(signin::enrol))
        .route("/console/links", get(links::list))
        .route("/console/links/{id}/sheet", get(links::sheet))
        .route("/console/settings", get(admin::settings))
        .route("/console/accounts", get(admin::accounts))
        .route("/console/audit", get(admin::audit))
        .route("/console/assets/console.js", get(script))
        .route("/console/assets/console.css", get(style))
        .with_state(state)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The language of a console request: `?lang=` first, then the cookie, then Japanese.
#[derive(Debug, Clone, Copy)]
pub struct PageLang {
    pub lang: Lang,
    /// Chosen by the query: remember it in the cookie.
    pub chosen: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for PageLang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let from_query = parts.uri.query().and_then(|q| {
            q.split('&')
                .filter_map(|pair| pair.strip_prefix("lang="))
                .find_map(Lang::from_code)
        });
        if let Some(lang) = from_query {
            return Ok(PageLang { lang, chosen: true });
        }
        let from_cookie = parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| {
                c.trim()
                    .strip_prefix(uketsuke_app::i18n::LANG_COOKIE)?
                    .strip_prefix('=')
            })
            .find_map(Lang::from_code);
        Ok(PageLang {
            lang: from_cookie.unwrap_or_default(),
            chosen: false,
        })
    }
}

/// Picks the Japanese or the English of a text.
pub fn tr(lang: Lang, ja: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Ja => ja,
        Lang::En => en,
    }
}

/// Who is looking at a screen.
pub struct Viewer {
    pub staff: Staff,
    pub me: Me,
    /// Demo mode: every screen's bar carries a "デモ / Demo" marker.
    pub demo: bool,
}

/// The signed-in staff member, or a redirect to the sign-in screen that comes back here.
pub async fn viewer(
    state: &AppState,
    parts: &mut Parts,
    uri: &OriginalUri,
) -> Result<Viewer, Response> {
    let staff = match Staff::from_request_parts(parts, state).await {
        Ok(staff) => staff,
        Err(_) => {
            let next = uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/console");
            let target = format!("/console/signin?next={}", encode_component(next));
            return Err(Redirect::to(&target).into_response());
        }
    };
    let me = super::passkeys::me(State(state.clone()), staff.clone())
        .await
        .map_err(|e| e.into_response())?
        .0;
    Ok(Viewer {
        staff,
        me,
        demo: is_demo(state),
    })
}

/// Percent-encodes everything but unreserved characters.
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A role's name as staff read it.
pub fn role_name(lang: Lang, role: Role) -> &'static str {
    match role {
        Role::Administrator => tr(lang, "管理者", "Administrator"),
        Role::General => tr(lang, "一般利用者", "General user"),
        Role::MedicalViewer => tr(lang, "医療情報閲覧", "Medical information viewer"),
    }
}

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Receptions,
    Links,
    Settings,
    Accounts,
    Audit,
    None,
}

/// A whole console document around `body`.
pub struct Screen<'a> {
    pub lang: PageLang,
    pub title: String,
    pub viewer: Option<&'a Viewer>,
    pub section: Section,
    /// The address of this screen, for the language switch.
    pub path: String,
    /// The print sheet: no navigation, its own layout.
    pub print: bool,
}

impl Screen<'_> {
    pub fn render(self, status: StatusCode, body: AnyView) -> Response {
        let lang = self.lang.lang;
        let header = if self.print {
            None
        } else {
            Some(top_bar(lang, self.viewer, self.section, &self.path))
        };
        let title = format!("{} | Uketsuke", self.title);
        let body_class = if self.print {
            "console print-sheet"
        } else {
            "console"
        };
        let page = view! {
            <body class=body_class>
                <a class="skip-link" href="#main">{tr(lang, "本文へ移動", "Skip to content")}</a>
                {header}
                <main id="main" tabindex="-1">{body}</main>
                <div id="announce" class="visually-hidden" role="status" aria-live="polite"></div>
            </body>
        }
        .to_html();
        let html = format!(
            "<!DOCTYPE html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <meta name=\"robots\" content=\"noindex\">\
             <title>{title}</title>\
             <link rel=\"icon\" href=\"/favicon.svg\" type=\"image/svg+xml\">\
             <link rel=\"stylesheet\" href=\"/console/assets/console.css\">\
             <script src=\"/console/assets/console.js\" defer></script></head>{page}</html>",
            lang = lang.code(),
            title = escape(&title),
        );
        let mut response = (status, html).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.lang.chosen
            && let Ok(cookie) = HeaderValue::from_str(&format!(
                "{}={}; Path=/; Max-Age=31536000; SameSite=Lax",
                uketsuke_app::i18n::LANG_COOKIE,
                lang.code()
            ))
        {
            headers.append(header::SET_COOKIE, cookie);
        }
        response
    }
}

/// Escapes text for HTML outside Leptos' views (the document title).
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn top_bar(lang: Lang, viewer: Option<&Viewer>, section: Section, path: &str) -> AnyView {
    let other = lang.other();
    let switch_href = with_query(path, "lang", other.code());
    let switch_label = tr(lang, "English", "日本語");
    let nav = viewer.map(|viewer| {
        let admin = viewer.staff.role == Role::Administrator;
        let item = move |href: &'static str, label: &'static str, this: Section| {
            let current = (section == this).then_some("page");
            view! { <li><a href=href aria-current=current>{label}</a></li> }
        };
        let institution = match lang {
            Lang::Ja => viewer.me.institution.name_ja.clone(),
            Lang::En => viewer.me.institution.name_en.clone(),
        };
        let who = format!(
            "{} ({})",
            viewer.me.name,
            role_name(lang, viewer.staff.role)
        );
        view! {
            <span class="institution">{institution}</span>
            <nav aria-label=tr(lang, "コンソール", "Console")>
                <ul>
                    {item("/console", tr(lang, "受付一覧", "Receptions"), Section::Receptions)}
                    {item("/console/links", tr(lang, "受付リンク", "Reception links"), Section::Links)}
                    {admin.then(|| item("/console/settings", tr(lang, "設定", "Settings"), Section::Settings))}
                    {admin.then(|| item("/console/accounts", tr(lang, "利用者", "Accounts"), Section::Accounts))}
                    {admin.then(|| item("/console/audit", tr(lang, "操作ログ", "Audit log"), Section::Audit))}
                </ul>
            </nav>
            <span class="who" data-testid="who">{who}</span>
            <button type="button" class="link-button" data-signout="one">
                {tr(lang, "サインアウト", "Sign out")}
            </button>
            <button type="button" class="link-button" data-signout="everywhere">
                {tr(lang, "すべての端末からサインアウト", "Sign out everywhere")}
            </button>
        }
    });
    let demo = viewer
        .is_some_and(|v| v.demo)
        .then(|| view! { <span class="demo-mark" data-testid="demo-mark">"デモ / Demo"</span> });
    view! {
        <header class="console-bar">
            <span class="brand">"Uketsuke"</span>
            {demo}
            {nav}
            <a class="lang-link" href=switch_href lang=other.code() hreflang=other.code()>{switch_label}</a>
        </header>
    }
    .into_any()
}

/// `path` with `key=value` set in its query (replacing an earlier value of `key`).
pub fn with_query(path: &str, key: &str, value: &str) -> String {
    let (base, query) = path.split_once('?').unwrap_or((path, ""));
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some(key))
        .map(str::to_owned)
        .collect();
    pairs.push(format!("{key}={}", encode_component(value)));
    format!("{base}?{}", pairs.join("&"))
}

/// A table of records: a hidden caption for screen readers, column headers, the rows.
pub fn data_table(
    caption: &'static str,
    headers: Vec<&'static str>,
    testid: &'static str,
    rows: impl IntoView + 'static,
) -> AnyView {
    let headers = headers
        .into_iter()
        .map(|h| view! { <th scope="col">{h}</th> })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table data-testid=testid>
                <caption class="visually-hidden">{caption}</caption>
                <thead><tr>{headers}</tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

/// A refusal or failure as a console screen.
pub fn error_screen(
    lang: PageLang,
    viewer: Option<&Viewer>,
    path: String,
    status: StatusCode,
    code: &str,
) -> Response {
    let l = lang.lang;
    let (title, body) = match status {
        StatusCode::FORBIDDEN => (
            tr(l, "この画面は表示できません", "You cannot open this screen"),
            tr(
                l,
                "この操作はあなたの権限では行えません。必要な場合は管理者に依頼してください。",
                "Your role does not allow this. Ask an administrator if you need it.",
            ),
        ),
        StatusCode::NOT_FOUND => (
            tr(l, "見つかりません", "Not found"),
            tr(
                l,
                "この受付またはリンクは、この医療機関には存在しません。",
                "This reception or link does not exist at this institution.",
            ),
        ),
        _ => (
            tr(l, "表示できませんでした", "This could not be shown"),
            tr(
                l,
                "一時的な問題です。少し待ってから再読み込みしてください。",
                "A temporary problem. Wait a moment and reload.",
            ),
        ),
    };
    let code = code.to_owned();
    Screen {
        lang,
        title: title.to_owned(),
        viewer,
        section: Section::None,
        path,
        print: false,
    }
    .render(
        status,
        view! {
            <section class="panel" role="alert">
                <h1>{title}</h1>
                <p>{body}</p>
                <p class="muted">{tr(l, "理由コード: ", "Reason code: ")}<code>{code}</code></p>
                <p><a href="/console">{tr(l, "受付一覧へ戻る", "Back to receptions")}</a></p>
            </section>
        }
        .into_any(),
    )
}

/// Turns an API refusal into the console's error screen.
pub fn refused(lang: PageLang, viewer: &Viewer, path: String, error: ApiError) -> Response {
    error_screen(lang, Some(viewer), path, error.status(), error.code())
}

/// A screen's request from a signed-in staff member; anyone else is sent to sign in first.
pub struct Signed {
    pub viewer: Viewer,
    /// Path and query, for the language switch.
    pub path: String,
    pub query: String,
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Ok(uri) = OriginalUri::from_request_parts(parts, state).await;
        let viewer = viewer(state, parts, &uri).await?;
        Ok(Signed {
            viewer,
            path: path_of(&uri),
            query: uri.query().unwrap_or_default().to_owned(),
        })
    }
}

impl Signed {
    /// One query parameter, as sent.
    pub fn param(&self, key: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == key).then(|| v.to_owned())
        })
    }

    /// The screen, answered with 200.
    pub fn page(&self, lang: PageLang, title: String, section: Section, body: AnyView) -> Response {
        Screen {
            lang,
            title,
            viewer: Some(&self.viewer),
            section,
            path: self.path.clone(),
            print: false,
        }
        .render(StatusCode::OK, body)
    }

    /// An API refusal as the error screen.
    pub fn refused(&self, lang: PageLang, error: ApiError) -> Response {
        refused(lang, &self.viewer, self.path.clone(), error)
    }
}

/// The path and query of the request, for redirects and the language switch.
pub fn path_of(uri: &OriginalUri) -> String {
    uri.path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/console".to_owned())
}

/// Demo mode: the sign-in screen offers the demo accounts.
pub fn is_demo(state: &AppState) -> bool {
    state.config.mode == crate::config::Mode::Demo
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_replaced_not_repeated() {
        assert_eq!(with_query("/console", "lang", "en"), "/console?lang=en");
        assert_eq!(
            with_query("/console?date=2026-11-21&lang=ja", "lang", "en"),
            "/console?date=2026-11-21&lang=en"
        );
    }

    #[test]
    fn components_are_encoded() {
        assert_eq!(
            encode_component("/console/receptions/ab?tab=x&y=1"),
            "%2Fconsole%2Freceptions%2Fab%3Ftab%3Dx%26y%3D1"
        );
    }
}
