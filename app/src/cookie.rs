//! Reading cookies of the request being rendered on the server: one parser for the session
//! cookies (`ssr`) and the language cookie (`i18n::request`), below both so neither imports
//! the other.

use http::{HeaderMap, header};

/// The values of cookie `name` in `headers`, in the order the browser sent them.
pub fn values<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(move |c| c.trim().strip_prefix(name)?.strip_prefix('='))
}
