//! 受付一覧: the day's receptions, updated live.

use axum::{
    Json,
    extract::{Query, State},
    response::Response,
};
use leptos::prelude::*;
use uketsuke_app::i18n::Lang;

use super::{consent_text, held_text, kind_name, reason_text, status_text};
use crate::{
    AppState,
    console::pages::{PageLang, Section, Signed, tr},
    console::receptions::{self as api, ListQuery, ListRow},
};

/// `GET /console?date=YYYY-MM-DD`.
pub async fn list(State(state): State<AppState>, lang: PageLang, signed: Signed) -> Response {
    let date = signed.param("date").filter(|d| !d.is_empty());
    let viewer = &signed.viewer;
    let listed = api::list(
        State(state.clone()),
        viewer.staff.clone(),
        Ok(Query(ListQuery { date })),
    )
    .await;
    let list = match listed {
        Ok(Json(list)) => list,
        Err(error) => return signed.refused(lang, error),
    };
    let l = lang.lang;
    let today = uketsuke_domain::window::jst_date(state.clock.now())
        .format("%Y-%m-%d")
        .to_string();
    let heading = if list.date == today {
        tr(l, "本日の受付", "Today's receptions").to_owned()
    } else {
        format!("{} {}", tr(l, "受付", "Receptions on"), list.date)
    };
    let count = list.receptions.len();
    let rows = list
        .receptions
        .into_iter()
        .map(|row| list_row(l, row))
        .collect_view();
    let table = if count == 0 {
        view! {
            <p class="empty" data-testid="no-receptions">
                {tr(l, "この日の受付はまだありません。患者さんが受付を終えると、ここに自動で表示されます。",
                    "No receptions on this day yet. They appear here by themselves as patients finish.")}
            </p>
        }
        .into_any()
    } else {
        view! {
            <div class="table-wrap">
                <table class="receptions">
                    <caption class="visually-hidden">{heading.clone()}</caption>
                    <thead>
                        <tr>
                            <th scope="col">{tr(l, "時刻", "Time")}</th>
                            <th scope="col">{tr(l, "受付番号", "No.")}</th>
                            <th scope="col">{tr(l, "種別", "Kind")}</th>
                            <th scope="col">{tr(l, "氏名", "Name")}</th>
                            <th scope="col">{tr(l, "同意", "Consent")}</th>
                            <th scope="col">{tr(l, "閲覧期限", "Readable until")}</th>
                            <th scope="col">{tr(l, "状態", "Status")}</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
        .into_any()
    };
    let body = view! {
        <div class="heading-row">
            <h1>{heading.clone()}</h1>
            <form method="get" action="/console" class="inline-form">
                <label>{tr(l, "日付", "Date")}
                    <input type="date" name="date" value=list.date.clone()/>
                </label>
                <button type="submit" class="secondary">{tr(l, "表示", "Show")}</button>
            </form>
            <a class="button secondary" href=format!("/console/export?from={0}&to={0}", list.date)
                data-testid="to-export">{tr(l, "レセコン連携", "Export for the レセコン")}</a>
        </div>
        <p class="muted live-note">
            {tr(l, "患者さんが受付を終えると自動で更新されます（", "Updates by itself as patients finish (")}
            <span data-testid="count">{count}</span>
            {tr(l, "件）。", " so far).")}
        </p>
        <section id="receptions" data-live="/api/console/events" aria-label=heading>
            {table}
        </section>
    }
    .into_any();
    signed.page(
        lang,
        tr(l, "受付一覧", "Receptions").to_owned(),
        Section::Receptions,
        body,
    )
}

fn list_row(l: Lang, row: ListRow) -> impl IntoView {
    let href = format!("/console/receptions/{}", row.id);
    let name = match (&row.name, row.eligibility) {
        (Some(name), _) => name.clone(),
        (None, "pending") => tr(l, "（確認中）", "(confirming)").to_owned(),
        (None, _) => tr(l, "（資格情報なし）", "(no eligibility record)").to_owned(),
    };
    let kana = row.name_kana.clone().unwrap_or_default();
    let number = row
        .reception_number
        .clone()
        .unwrap_or_else(|| "—".to_owned());
    let consent = if row.withdrawn {
        tr(l, "撤回済み", "Withdrawn").to_owned()
    } else {
        consent_text(l, &row.consent, row.kind)
    };
    let end = row.window_end.map(|end| {
        let iso = end.to_rfc3339();
        let shown = row.window_end_display.clone().unwrap_or_default();
        view! { <time datetime=iso.clone() data-window-end=iso>{shown}</time> }
    });
    let status = status_text(l, row.status);
    let status_class = format!("status status-{}", row.status);
    let refusal = row.refusal.clone().map(|code| reason_text(l, &code));
    let held = row.relay_held.clone().map(|code| held_text(l, &code));
    view! {
        <tr data-reception=row.id.clone()>
            <td>{row.time.clone()}</td>
            <td><a href=href.clone()>{number}</a></td>
            <td>{kind_name(l, row.kind)}</td>
            <td><a href=href>{name}</a><br/><span class="kana">{kana}</span></td>
            <td>{consent}</td>
            <td>{end}<span class="countdown" aria-live="off"></span></td>
            <td>
                <span class=status_class>{status}</span>
                {refusal.map(|r| view! { <br/><span class="muted small">{r}</span> })}
                {held.map(|h| view! { <br/><span class="notice small" data-testid="relay-held">{h}</span> })}
            </td>
        </tr>
    }
}
