//! Which screen an address shows, read the same way on the server (the request's URI) and in
//! the browser (`window.location`), so that hydration meets the markup the server rendered.
//!
//! Every screen is its own page load (forms post to the server, links are plain links), so the
//! app needs no client-side router: [`Screen::of_path`] picks the screen, and the pages read the
//! link id, token and query from the [`Address`] in context. Leptos's router would wrap every
//! route's view in an `AnyView`, which costs the patient's download the asynchronous-hydration
//! code of every screen (issue 13).

use leptos::prelude::*;

use crate::pages::flow::Step;

/// Every page's path pattern (`{name}` is one segment), for the server's router; each is a
/// screen of [`Screen::of_path`] (tested).
pub const PAGE_PATHS: &[&str] = &[
    "/",
    "/r/{link}",
    "/r/{link}/date",
    "/r/{link}/consent",
    "/r/{link}/review",
    "/r/{link}/card",
    "/r/{link}/eid-return",
    "/r/{link}/eid-app",
    "/r/{link}/done",
    "/r/{link}/manage",
    "/r/{link}/insurance-use",
    "/cancel/{token}",
];

/// The screen of a path, with the path's parameter (a link id or a cancel token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Screen {
    /// `/`
    Home,
    /// `/r/{link}`
    Landing(String),
    /// `/r/{link}/date|consent|review|card|eid-return|done`
    Flow(String, Step),
    /// `/r/{link}/eid-app`: the demo's practice app of the hand-off.
    PracticeApp(String),
    /// `/r/{link}/manage`: 同意照会・取消
    Manage(String),
    /// `/r/{link}/insurance-use`: 健康保険証利用登録
    InsuranceUse(String),
    /// `/cancel/{token}`
    Cancel(String),
    /// Any other path.
    NotFound,
}

impl Screen {
    /// The screen of `path` (the URI's path, still percent-encoded). A segment is one
    /// non-empty path segment; a trailing slash is another address (not found), as before.
    pub fn of_path(path: &str) -> Screen {
        let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
        let param = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(|s| s.into_owned())
        };
        match segments.as_slice() {
            [""] => Screen::Home,
            ["r", link] if !link.is_empty() => {
                param(link).map_or(Screen::NotFound, Screen::Landing)
            }
            ["r", link, page] if !link.is_empty() => {
                let Some(link) = param(link) else {
                    return Screen::NotFound;
                };
                match *page {
                    "date" => Screen::Flow(link, Step::Date),
                    "consent" => Screen::Flow(link, Step::Consent),
                    "review" => Screen::Flow(link, Step::Review),
                    "card" => Screen::Flow(link, Step::Card),
                    "eid-return" => Screen::Flow(link, Step::AppReturn),
                    "done" => Screen::Flow(link, Step::Done),
                    "eid-app" => Screen::PracticeApp(link),
                    "manage" => Screen::Manage(link),
                    "insurance-use" => Screen::InsuranceUse(link),
                    _ => Screen::NotFound,
                }
            }
            ["cancel", token] if !token.is_empty() => {
                param(token).map_or(Screen::NotFound, Screen::Cancel)
            }
            _ => Screen::NotFound,
        }
    }
}

/// The address of this page: its screen and its query's pairs (decoded).
#[derive(Clone, Debug)]
pub struct Address {
    pub screen: Screen,
    query: Vec<(String, String)>,
}

impl Address {
    /// From a path and a query (without `?`).
    pub fn new(path: &str, query: &str) -> Address {
        Address {
            screen: Screen::of_path(path),
            query: form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    /// The first value of `name` in the query.
    pub fn query(&self, name: &str) -> Option<String> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    /// This page's query with `name` set to `value` (replacing every earlier value; the other
    /// keys kept in order), as a relative address `?…` to the same path.
    pub fn query_with(&self, name: &str, value: &str) -> String {
        let mut query = form_urlencoded::Serializer::for_suffix(String::from("?"), 1);
        for (k, v) in self.query.iter().filter(|(k, _)| k != name) {
            query.append_pair(k, v);
        }
        query.append_pair(name, value);
        query.finish()
    }

    /// This page's address: the request's on the server, the window's in the browser.
    pub fn current() -> Address {
        #[cfg(feature = "ssr")]
        {
            use_context::<http::request::Parts>()
                .map(|parts| Address::new(parts.uri.path(), parts.uri.query().unwrap_or("")))
                .unwrap_or_else(|| Address::new("/", ""))
        }
        #[cfg(not(feature = "ssr"))]
        {
            let location = window().location();
            let path = location.pathname().unwrap_or_default();
            let search = location.search().unwrap_or_default();
            Address::new(&path, search.strip_prefix('?').unwrap_or(&search))
        }
    }
}

/// The [`Address`] the app provided.
pub fn use_address() -> Address {
    use_context::<Address>().unwrap_or_else(Address::current)
}

/// The first value of `name` in this page's query.
pub fn use_query(name: &str) -> Option<String> {
    use_address().query(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_with_one_key_set_keeps_the_others() {
        let address = Address::new("/r/abc", "error=pin_locked&lang=ja&lang=xx&x=%E5%B1%B1");
        assert_eq!(
            address.query_with("lang", "en"),
            "?error=pin_locked&x=%E5%B1%B1&lang=en"
        );
        assert_eq!(Address::new("/", "").query_with("lang", "ja"), "?lang=ja");
    }

    #[test]
    fn paths_pick_their_screens() {
        assert_eq!(Screen::of_path("/"), Screen::Home);
        assert_eq!(Screen::of_path("/r/abc"), Screen::Landing("abc".into()));
        assert_eq!(
            Screen::of_path("/r/abc/consent"),
            Screen::Flow("abc".into(), Step::Consent)
        );
        assert_eq!(
            Screen::of_path("/r/abc/eid-return"),
            Screen::Flow("abc".into(), Step::AppReturn)
        );
        assert_eq!(
            Screen::of_path("/r/abc/insurance-use"),
            Screen::InsuranceUse("abc".into())
        );
        assert_eq!(Screen::of_path("/cancel/t0k"), Screen::Cancel("t0k".into()));
        for unknown in [
            "/r",
            "/r/",
            "/r//date",
            "/r/abc/",
            "/r/abc/other",
            "/r/abc/date/x",
            "/cancel",
            "/cancel/",
            "/x",
            "/r/%FF",
        ] {
            assert_eq!(Screen::of_path(unknown), Screen::NotFound, "{unknown}");
        }
        assert_eq!(Screen::of_path("/r/a%20b"), Screen::Landing("a b".into()));
    }

    #[test]
    fn every_page_path_is_a_screen() {
        for pattern in PAGE_PATHS {
            let path = pattern.replace("{link}", "abc").replace("{token}", "t0k");
            assert_ne!(Screen::of_path(&path), Screen::NotFound, "{pattern}");
        }
    }

    #[test]
    fn the_query_is_decoded() {
        let address = Address::new(
            "/r/abc/consent",
            "visit_date=2026-12-02&error=a%2Bb&error=2",
        );
        assert_eq!(address.query("visit_date").as_deref(), Some("2026-12-02"));
        assert_eq!(address.query("error").as_deref(), Some("a+b"));
        assert_eq!(address.query("lang"), None);
    }
}
