//! The browser's calls to our API, shared by the card step and the app hand-off's return page
//! (`pages::eid`): post JSON and read a refusal's code, the words for that code, the way to the
//! done screen; and the card step's delivery of a proof.

#[cfg(feature = "hydrate")]
use {
    super::{Controller, Purpose, Stage},
    leptos::prelude::*,
};

/// The header every call of our JSON API carries (the patient API's and the console's; the
/// server refuses calls without it: `server/src/http/patient/mod.rs`).
#[cfg(feature = "hydrate")]
pub(crate) const API_HEADER: (&str, &str) = ("x-uketsuke-csrf", "1");

/// `POST` to our API from the browser: the answer's JSON, or the refusal's code (its code, or
/// "offline" when nothing answered). Every call carries [`API_HEADER`].
#[cfg(feature = "hydrate")]
pub(crate) async fn post_json(
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value, String> {
    let request = gloo_net::http::Request::post(path).header(API_HEADER.0, API_HEADER.1);
    let sent = match body {
        Some(json) => {
            request
                .json(&json)
                .map_err(|_| "body".to_owned())?
                .send()
                .await
        }
        None => request.send().await,
    };
    let response = sent.map_err(|_| "offline".to_owned())?;
    let value: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
    if response.ok() {
        Ok(value)
    } else {
        Err(value
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or("temporarily_unavailable")
            .to_owned())
    }
}

/// The words for a refusal code of our API (or `offline`).
#[cfg(feature = "hydrate")]
pub(crate) fn api_message(lang: crate::i18n::Lang, code: &str) -> String {
    if code == "offline" {
        crate::i18n::flow::texts(lang).offline.to_owned()
    } else {
        crate::i18n::flow::code_message(lang, code).to_owned()
    }
}

/// To the done screen of `link` (the reception is registered).
#[cfg(feature = "hydrate")]
pub(crate) fn go_done(link: &str) {
    let _ = window().location().set_href(&format!("/r/{link}/done"));
}

/// `POST /api/session/manage/withdraw-all` from the browser; the new list, or an error code.
#[cfg(feature = "hydrate")]
pub async fn withdraw_all() -> Result<crate::api::ManagedList, String> {
    let response = gloo_net::http::Request::post("/api/session/manage/withdraw-all")
        .header(API_HEADER.0, API_HEADER.1)
        .send()
        .await
        .map_err(|_| "offline".to_owned())?;
    if !response.ok() {
        return Err("temporarily_unavailable".to_owned());
    }
    response
        .json()
        .await
        .map_err(|_| "temporarily_unavailable".to_owned())
}

#[cfg(feature = "hydrate")]
impl Controller {
    /// Sends the card's proof: registration → the done screen; management → the list.
    /// On a refusal the step goes back to `on_refusal` with the reason shown.
    pub(super) async fn deliver(
        &self,
        submit_path: &str,
        body: serde_json::Value,
        on_refusal: Stage,
    ) {
        let answer = post_json(submit_path, Some(body)).await;
        if let (Purpose::Manage(list), Ok(value)) = (self.purpose, &answer) {
            self.stage.set(Stage::Choose);
            match serde_json::from_value(value.clone()) {
                Ok(managed) => list.set(Some(managed)),
                Err(_) => self.api_failed("temporarily_unavailable"),
            }
            return;
        }
        match answer {
            Ok(_) => self.finished(),
            Err(code) if code == "already_submitted" => self.finished(),
            // 健康保険証利用登録 under way or done (another tab): the done screen shows it.
            Err(code)
                if self.purpose == Purpose::InsuranceUse
                    && matches!(
                        code.as_str(),
                        "insurance_use_pending" | "insurance_use_already_registered"
                    ) =>
            {
                self.finished()
            }
            Err(code) => {
                self.stage.set(on_refusal);
                self.api_failed(&code);
            }
        }
    }

    pub(super) fn finished(&self) {
        go_done(&self.link);
    }
}
