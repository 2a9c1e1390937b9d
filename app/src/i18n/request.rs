//! The language of a request on the server: `?lang=` (remembered in a cookie for the next
//! pages), then the cookie, then Japanese.

use http::{HeaderValue, header, request::Parts};
use leptos::prelude::*;
use leptos_axum::ResponseOptions;

use super::{LANG_COOKIE, Lang};

/// The language asked for by this request: `?lang=` (remembered in a cookie), then the cookie.
pub fn request_lang() -> Lang {
    let Some(parts) = use_context::<Parts>() else {
        return Lang::Ja;
    };
    let from_query = parts.uri.query().and_then(|q| {
        q.split('&')
            .filter_map(|pair| pair.strip_prefix("lang="))
            .find_map(Lang::from_code)
    });
    if let Some(lang) = from_query {
        remember_lang_cookie(lang);
        return lang;
    }
    crate::cookie::values(&parts.headers, LANG_COOKIE)
        .find_map(Lang::from_code)
        .unwrap_or_default()
}

fn remember_lang_cookie(lang: Lang) {
    if let Some(options) = use_context::<ResponseOptions>() {
        let cookie = format!(
            "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
            lang.code()
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            options.append_header(header::SET_COOKIE, value);
        }
    }
}
