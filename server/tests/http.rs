//! The server over real HTTP: started on a free port with a fresh SQLite file and the built-in
//! simulator, probed with an ordinary client.

use std::time::Duration;

use reqwest::{StatusCode, header};
use uketsuke_server::{Server, config::Config};

/// One server of this file at a time. Leptos renders pages on whatever runtime polls them; with
/// several test runtimes rendering at once in one process, a page render was seen to stall
/// (about one request in a thousand). The product runs one runtime, and the concurrent test
/// below renders 960 pages on it; serialising the tests here keeps them deterministic.
static ONE_SERVER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Running {
    _turn: tokio::sync::MutexGuard<'static, ()>,
    base: String,
    links: Vec<(String, String)>,
    db_url: String,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    fn link(&self, kind: &str) -> String {
        self.links
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, id)| id.clone())
            .expect("demo link of that kind")
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("graceful shutdown finishes")
            .expect("server task");
        result.expect("server ran cleanly");
    }
}

async fn start(extra: &[(&str, &str)]) -> Running {
    let turn = ONE_SERVER.lock().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db_url = format!("sqlite://{}/test.db", dir.path().display());
    let mut env = vec![
        ("UKETSUKE_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ("UKETSUKE_MODE".to_owned(), "demo".to_owned()),
        ("UKETSUKE_DATABASE_URL".to_owned(), db_url.clone()),
        (
            "UKETSUKE_SITE_ROOT".to_owned(),
            dir.path().join("site").display().to_string(),
        ),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = Config::from_sources(None, &env).expect("valid test configuration");
    let server = Server::build(config).await.expect("server starts");
    let base = server.base_url();
    let links = server
        .demo_links()
        .iter()
        .map(|l| (l.kind.code().to_owned(), l.id.clone()))
        .collect();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    Running {
        _turn: turn,
        base,
        links,
        db_url,
        _dir: dir,
        stop: Some(stop),
        task,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

fn plain_client() -> reqwest::Client {
    // No automatic decompression: the test inspects the encoding itself.
    reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

#[tokio::test]
async fn probes_answer() {
    let server = start(&[]).await;
    let healthz = client()
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .expect("healthz");
    assert_eq!(healthz.status(), StatusCode::OK);
    let readyz = client()
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .expect("readyz");
    assert_eq!(readyz.status(), StatusCode::OK);
    let body: serde_json::Value = readyz.json().await.expect("json");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["backend"], "ok");
    server.shutdown().await;
}

/// `/readyz` is public and unthrottled: a flood of it must not become a flood of health checks
/// to the national backend. A listener that stands for the backend counts the checks it gets.
#[tokio::test]
async fn a_flood_of_readiness_probes_is_one_backend_check_per_second() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let checks = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = checks.clone();
    let backend = axum::Router::new().route(
        "/v1/health",
        axum::routing::get(move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                axum::Json(serde_json::json!({ "status": "ok", "contract": 1 }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, backend).await });
    let server = start(&[("UKETSUKE_BACKEND", url.as_str())]).await;
    let http = client();
    let probe = || async {
        let answer = http
            .get(format!("{}/readyz", server.base))
            .send()
            .await
            .expect("readyz");
        assert_eq!(answer.status(), StatusCode::OK);
        let body: serde_json::Value = answer.json().await.expect("json");
        body["backend"].as_str().unwrap_or_default().to_owned()
    };
    let words = futures_util::future::join_all((0..40).map(|_| probe())).await;
    assert!(words.iter().all(|w| w == "ok"), "{words:?}");
    let during_flood = checks.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&during_flood),
        "40 probes made {during_flood} backend checks"
    );
    // Once the answer is older than a second, the next probe checks again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(probe().await, "ok");
    assert_eq!(checks.load(Ordering::SeqCst), during_flood + 1);
    server.shutdown().await;
}

#[tokio::test]
async fn readyz_stays_ready_and_reports_an_unreachable_backend() {
    // A port that was free a moment ago: nothing answers there.
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = free.local_addr().expect("addr").port();
    drop(free);
    let backend = format!("http://127.0.0.1:{port}");
    let server = start(&[("UKETSUKE_BACKEND", backend.as_str())]).await;
    let readyz = client()
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .expect("readyz");
    // Receptions queue while the backend is away: the instance still serves patients.
    assert_eq!(readyz.status(), StatusCode::OK);
    let body: serde_json::Value = readyz.json().await.expect("json");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["backend"], "unavailable");
    // The status endpoint says the same, to this machine.
    let status = client()
        .get(format!("{}/status", server.base))
        .send()
        .await
        .expect("status");
    assert_eq!(status.status(), StatusCode::OK);
    let body: serde_json::Value = status.json().await.expect("json");
    assert_eq!(body["backend"]["health"], "unavailable");
    assert_eq!(body["backend"]["origin"], backend.as_str());
    assert_eq!(body["outbox"]["held"], 0);
    // The process itself is still up.
    let healthz = client()
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .expect("healthz");
    assert_eq!(healthz.status(), StatusCode::OK);
    server.shutdown().await;
}

fn assert_security_headers(response: &reqwest::Response, what: &str) {
    let h = response.headers();
    let get = |name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{what}: missing {name}"))
            .to_owned()
    };
    let csp = get("content-security-policy");
    assert!(csp.contains("'wasm-unsafe-eval'"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(get("referrer-policy"), "same-origin", "{what}");
    assert_eq!(get("x-frame-options"), "DENY", "{what}");
}

#[tokio::test]
async fn every_response_carries_security_headers_and_the_page_nonce_matches() {
    let server = start(&[]).await;
    let link = server.link("online_care");
    for path in [
        format!("/r/{link}"),
        "/r/00000000000000000000000000".to_owned(),
        "/healthz".to_owned(),
        "/pkg/missing.js".to_owned(),
        "/nowhere".to_owned(),
    ] {
        let response = client()
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .expect("get");
        assert_security_headers(&response, &path);
        // Plain http here: no HSTS.
        assert!(
            response
                .headers()
                .get("strict-transport-security")
                .is_none()
        );
    }

    let page = client()
        .get(format!("{}/r/{link}", server.base))
        .send()
        .await
        .expect("page");
    assert_eq!(
        page.headers()
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("nonce in CSP")
        .to_owned();
    let html = page.text().await.expect("html");
    let scripts = html.matches("<script").count();
    assert!(scripts >= 2, "the page has its hydration scripts");
    assert_eq!(
        html.matches(&format!("nonce=\"{nonce}\"")).count(),
        scripts,
        "every inline script carries this response's nonce"
    );
    let again = client()
        .get(format!("{}/r/{link}", server.base))
        .send()
        .await
        .expect("page");
    let csp_again = again.headers()["content-security-policy"]
        .to_str()
        .expect("ascii");
    assert!(!csp_again.contains(&nonce), "a fresh nonce per response");
    server.shutdown().await;
}

#[tokio::test]
async fn hsts_is_sent_when_served_over_https() {
    let server = start(&[("UKETSUKE_PUBLIC_ORIGIN", "https://uketsuke.example.jp")]).await;
    let response = client()
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .expect("get");
    let hsts = response
        .headers()
        .get("strict-transport-security")
        .expect("HSTS");
    assert!(hsts.to_str().expect("ascii").starts_with("max-age="));
    server.shutdown().await;
}

#[tokio::test]
async fn pages_are_compressed_with_brotli_or_gzip() {
    let server = start(&[]).await;
    let url = format!("{}/r/{}", server.base, server.link("online_care"));
    for (accept, expected) in [("br", "br"), ("gzip", "gzip"), ("gzip, deflate, br", "br")] {
        let response = plain_client()
            .get(&url)
            .header(header::ACCEPT_ENCODING, accept)
            .send()
            .await
            .expect("get");
        assert_eq!(
            response
                .headers()
                .get(header::CONTENT_ENCODING)
                .and_then(|v| v.to_str().ok()),
            Some(expected),
            "Accept-Encoding: {accept}"
        );
    }
    // And a client that decodes sees the page.
    let html = client()
        .get(&url)
        .header(header::ACCEPT_ENCODING, "br")
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    assert!(html.contains("うけつけ内科クリニック（デモ）"));
    let identity = plain_client().get(&url).send().await.expect("get");
    assert!(identity.headers().get(header::CONTENT_ENCODING).is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn links_unknown_revoked_and_expired() {
    let server = start(&[]).await;
    let status =
        |path: String| async move { client().get(path).send().await.expect("get").status() };
    let base = server.base.clone();
    assert_eq!(
        status(format!("{base}/r/{}", server.link("house_call"))).await,
        StatusCode::OK
    );
    assert_eq!(
        status(format!("{base}/r/00000000000000000000000000")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(format!("{base}/r/not-an-id")).await,
        StatusCode::NOT_FOUND
    );

    // Revoke one link and expire another straight in the database.
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(&server.db_url).await.expect("db");
    let revoked = server.link("house_call");
    let expired = server.link("home_visit");
    sqlx::query("UPDATE reception_links SET revoked_at = 1 WHERE id = $1")
        .bind(&revoked)
        .execute(&db)
        .await
        .expect("revoke");
    sqlx::query("UPDATE reception_links SET expires_at = 1 WHERE id = $1")
        .bind(&expired)
        .execute(&db)
        .await
        .expect("expire");
    let revoked_page = client()
        .get(format!("{base}/r/{revoked}"))
        .send()
        .await
        .expect("get");
    assert_eq!(revoked_page.status(), StatusCode::GONE);
    assert!(
        revoked_page
            .text()
            .await
            .expect("html")
            .contains("このリンクは無効です")
    );
    assert_eq!(
        status(format!("{base}/r/{expired}")).await,
        StatusCode::GONE
    );

    // The institution switches remote receptions off: online care says so, house calls not.
    sqlx::query("UPDATE institutions SET accepts_remote = 0")
        .execute(&db)
        .await
        .expect("switch off");
    let online = client()
        .get(format!("{base}/r/{}", server.link("online_care")))
        .send()
        .await
        .expect("get");
    assert_eq!(online.status(), StatusCode::OK);
    assert!(
        online
            .text()
            .await
            .expect("html")
            .contains("現在この受付は行っていません")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn english_is_chosen_by_query_and_remembered_by_cookie() {
    let server = start(&[]).await;
    let url = format!("{}/r/{}", server.base, server.link("online_care"));
    let response = client()
        .get(format!("{url}?lang=en"))
        .send()
        .await
        .expect("get");
    let cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("language cookie")
        .to_owned();
    assert!(cookie.starts_with("uk_lang=en;"));
    let html = response.text().await.expect("html");
    assert!(html.contains("<html lang=\"en\""), "html lang");
    assert!(html.contains("Uketsuke Internal Medicine Clinic (demo)"));
    let again = client()
        .get(&url)
        .header(header::COOKIE, "uk_lang=en")
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    assert!(again.contains("<html lang=\"en\""));
    let default = client()
        .get(&url)
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    assert!(default.contains("<html lang=\"ja\""));
    server.shutdown().await;
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let server = start(&[]).await;
    let response = client()
        .post(format!("{}/api/cancel", server.base))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(vec![b'a'; 200 * 1024])
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_security_headers(&response, "413");
    // The body was never read, so the connection cannot carry another request: the answer
    // says so, and a client's next request on the same pool goes out on a fresh connection.
    assert_eq!(
        response
            .headers()
            .get(header::CONNECTION)
            .map(|v| v.as_bytes()),
        Some(&b"close"[..])
    );
    // On the JSON APIs the refusal is the documented one, not the limit's plain text.
    assert_eq!(
        response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );
    let refusal: serde_json::Value = response.json().await.expect("json");
    assert_eq!(refusal["error"], "body_too_large");
    let http = client();
    for round in 0..20 {
        let refused = http
            .post(format!("{}/api/cancel", server.base))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(vec![b'a'; 200 * 1024])
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: oversized post: {e:?}"));
        assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let next = http
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: the request after a 413: {e:?}"));
        assert_eq!(next.status(), StatusCode::OK);
        // An answer to a request whose body was read keeps the connection.
        assert_eq!(next.headers().get(header::CONNECTION), None);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn page_data_comes_only_inside_the_page() {
    let server = start(&[]).await;
    let link = server.link("online_care");
    // The landing page carries its data for hydration.
    let page = client()
        .get(format!("{}/r/{link}", server.base))
        .send()
        .await
        .expect("get");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.expect("html").contains("online_care"));
    // No endpoint hands it out on its own (Leptos server functions were one).
    let form = [("link_id", link)];
    let posted = client()
        .post(format!("{}/api/landing", server.base))
        .form(&form)
        .send()
        .await
        .expect("post");
    assert_eq!(posted.status(), StatusCode::NOT_FOUND);
    let fetched = client()
        .get(format!("{}/api/landing?link_id={}", server.base, form[0].1))
        .send()
        .await
        .expect("get");
    assert_eq!(fetched.status(), StatusCode::NOT_FOUND);
    assert!(!fetched.text().await.expect("html").contains("online_care"));
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_addresses_get_the_apps_own_404_page() {
    let server = start(&[]).await;
    for path in ["/nowhere", "/r/", "/r/a/b", "/api", "/%E2%80%AE"] {
        let response = client()
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_security_headers(&response, path);
        let html = response.text().await.expect("html");
        assert!(html.contains("ページが見つかりません"), "{path}: {html}");
    }
    let english = client()
        .get(format!("{}/nowhere?lang=en", server.base))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    assert!(english.contains("Page not found"));
    server.shutdown().await;
}

#[tokio::test]
async fn a_flood_from_one_address_is_cut_off_with_429() {
    let server = start(&[]).await;
    let client = client();
    let mut statuses = Vec::new();
    for i in 0..80 {
        let response = client
            .get(format!("{}/r/00000000000000000000000000", server.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("request {i}: {e:?}"));
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry: u64 = response.headers()[header::RETRY_AFTER]
                .to_str()
                .expect("ascii")
                .parse()
                .expect("seconds");
            assert!(retry >= 1);
            assert_security_headers(&response, "429");
            break;
        }
    }
    let allowed = statuses
        .iter()
        .filter(|s| **s == StatusCode::NOT_FOUND)
        .count();
    assert!(
        (55..=65).contains(&allowed),
        "burst of about 60 allowed, got {allowed}"
    );
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS));
    // Probes and static files are not limited: operators can still see the server.
    let healthz = client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .expect("get");
    assert_eq!(healthz.status(), StatusCode::OK);
    server.shutdown().await;
}

/// Pages rendered concurrently on a multi-threaded runtime, as in production. A page whose head
/// was written after the request's signals were disposed once panicked in the render task and
/// left its response hanging; every one of these requests must answer, with the right status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_page_loads_all_answer() {
    let server = start(&[("UKETSUKE_RATE_LIMITS", "off")]).await;
    let link = server.link("online_care");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let pages = [
        (format!("/r/{link}"), StatusCode::OK),
        (format!("/r/{link}?lang=en"), StatusCode::OK),
        // No session yet: the flow page says so, with 410.
        (format!("/r/{link}/date"), StatusCode::GONE),
        (
            "/r/00000000000000000000000000".to_owned(),
            StatusCode::NOT_FOUND,
        ),
        ("/nowhere".to_owned(), StatusCode::NOT_FOUND),
    ];
    let mut tasks = Vec::new();
    for worker in 0..16 {
        let client = client.clone();
        let base = server.base.clone();
        let pages = pages.clone();
        tasks.push(tokio::spawn(async move {
            let mut wrong = Vec::new();
            for i in 0..60 {
                let (path, expected) = &pages[(i + worker) % pages.len()];
                match client.get(format!("{base}{path}")).send().await {
                    Ok(response) if response.status() == *expected => {
                        if response.text().await.is_err() {
                            wrong.push(format!("{path}: body cut off"));
                        }
                    }
                    Ok(response) => wrong.push(format!("{path}: {}", response.status())),
                    Err(error) => wrong.push(format!("{path}: {error:?}")),
                }
            }
            wrong
        }));
    }
    let mut wrong = Vec::new();
    for task in tasks {
        wrong.extend(task.await.expect("client task"));
    }
    assert!(
        wrong.is_empty(),
        "{} of 960 requests failed: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    server.shutdown().await;
}
