//! 受付リンク: the institution's reception links, a form to make one (per kind or per
//! appointment), and for each an A4 print sheet with its QR code and a snippet for the
//! institution's website.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use base64::Engine as _;
use leptos::prelude::*;
use uketsuke_domain::ReceptionKind;

use super::{PageLang, Screen, Section, Signed, data_table, receptions::kind_name, tr};
use crate::{
    AppState,
    console::{
        links::{self as api, LinkView, qr_svg_of},
        settings,
    },
    gate::Role,
    http::error::ApiError,
    storage::links as stored,
};
use uketsuke_app::i18n::Lang;

fn state_text(l: Lang, state: &str) -> &'static str {
    match state {
        "open" => tr(l, "有効", "Open"),
        "revoked" => tr(l, "無効化済み", "Revoked"),
        _ => tr(l, "期限切れ", "Expired"),
    }
}

/// `GET /console/links`.
pub async fn list(State(state): State<AppState>, lang: PageLang, signed: Signed) -> Response {
    let viewer = &signed.viewer;
    let links = match api::list(State(state.clone()), viewer.staff.clone()).await {
        Ok(Json(links)) => links,
        Err(error) => return signed.refused(lang, error),
    };
    let l = lang.lang;
    let admin = viewer.staff.role == Role::Administrator;
    let rows = links
        .into_iter()
        .map(|link| link_row(l, link, admin))
        .collect_view();
    let body = view! {
        <h1>{tr(l, "受付リンク", "Reception links")}</h1>
        <p class="muted">{tr(l,
            "患者さんはこのリンク（QRコード）から受付をします。印刷用シートを院内に掲示するか、Webサイトに載せてください。",
            "Patients start their reception from these links (QR codes). Put the print sheet up at the clinic or the snippet on your website.")}</p>
        {admin.then(|| create_form(l))}
        {data_table(
            tr(l, "受付リンクの一覧", "All reception links"),
            vec![
                tr(l, "種別", "Kind"),
                tr(l, "名前・予約", "Label / booking"),
                tr(l, "状態", "State"),
                tr(l, "利用数", "Used"),
                tr(l, "操作", "Actions"),
            ],
            "links",
            rows,
        )}
    }
    .into_any();
    signed.page(
        lang,
        tr(l, "受付リンク", "Reception links").to_owned(),
        Section::Links,
        body,
    )
}

fn link_row(l: Lang, link: LinkView, admin: bool) -> impl IntoView {
    let sheet = format!("/console/links/{}/sheet", link.id);
    let revoke = format!("/api/console/links/{}", link.id);
    let label = [
        link.label.clone(),
        link.visit_date
            .clone()
            .map(|d| format!("{} {d}", tr(l, "受診日", "visit"))),
        link.booking_ref
            .clone()
            .map(|b| format!("{} {b}", tr(l, "予約", "booking"))),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" · ");
    let open = link.state == "open";
    view! {
        <tr data-link=link.id.clone()>
            <td>{kind_name(l, link.kind)}</td>
            <td>{label}<br/><span class="url small">{link.url.clone()}</span></td>
            <td>{state_text(l, link.state)}</td>
            <td>{link.use_count}</td>
            <td class="button-row">
                <a class="button secondary" href=sheet>{tr(l, "印刷用シート・Web用コード", "Print sheet & web snippet")}</a>
                {(admin && open).then(|| view! {
                    <form data-api=revoke data-method="DELETE" data-reload="true"
                        data-confirm=tr(l, "このリンクを無効にします。印刷したQRコードも使えなくなります。よろしいですか？",
                            "Revoke this link? Printed QR codes stop working too.")>
                        <button type="submit" class="danger">{tr(l, "無効にする", "Revoke")}</button>
                        <p class="form-message" role="status"></p>
                    </form>
                })}
            </td>
        </tr>
    }
}

fn create_form(l: Lang) -> impl IntoView {
    let options = ReceptionKind::ALL
        .into_iter()
        .map(|kind| view! { <option value=kind.code()>{kind_name(l, kind)}</option> })
        .collect_view();
    view! {
        <section class="panel" aria-labelledby="new-link-h">
            <h2 id="new-link-h">{tr(l, "リンクを作る", "Make a link")}</h2>
            <form data-api="/api/console/links" data-method="POST" data-reload="true" class="stack-form">
                <label>{tr(l, "種別", "Kind")}<select name="kind" required>{options}</select></label>
                <label>{tr(l, "名前（院内用・任意）", "Label (for staff, optional)")}
                    <input type="text" name="label" maxlength="100"/></label>
                <label>{tr(l, "受診日（予約ごとのリンクのとき）", "Visit date (for one appointment)")}
                    <input type="date" name="visit_date"/></label>
                <label>{tr(l, "予約番号（任意）", "Booking reference (optional)")}
                    <input type="text" name="booking_ref" maxlength="100"/></label>
                <button type="submit">{tr(l, "作成", "Create")}</button>
                <p class="form-message" role="status"></p>
            </form>
        </section>
    }
}

/// The QR code of `url` for inlining in HTML: the SVG element without its XML declaration.
fn inline_svg(url: &str) -> Option<String> {
    let svg = qr_svg_of(url)?;
    let start = svg.find("<svg")?;
    Some(svg[start..].to_owned())
}

/// The HTML a clinic pastes into its website: the QR code as a data URI (no request to this
/// server when the page is viewed) and the link in text.
pub fn website_snippet(l: Lang, url: &str, kind: ReceptionKind) -> Option<String> {
    let svg = qr_svg_of(url)?;
    let data = base64::engine::general_purpose::STANDARD.encode(svg.as_bytes());
    let title = match l {
        Lang::Ja => Lang::Ja.texts().kind(kind).title,
        Lang::En => Lang::En.texts().kind(kind).title,
    };
    let title = super::escape(title);
    let url = super::escape(url);
    let alt = format!("{title} QR");
    Some(format!(
        "<p><a href=\"{url}\"><img src=\"data:image/svg+xml;base64,{data}\" width=\"160\" height=\"160\" alt=\"{alt}\"></a><br>\n<a href=\"{url}\">{title}</a></p>"
    ))
}

/// `GET /console/links/{id}/sheet`: an A4 page to print.
pub async fn sheet(
    State(state): State<AppState>,
    lang: PageLang,
    Path(id): Path<String>,
    signed: Signed,
) -> Response {
    let viewer = &signed.viewer;
    let record = match stored::get(&state.db, &viewer.staff.institution_id, &id).await {
        Ok(Some(record)) => record,
        Ok(None) => {
            return signed.refused(lang, ApiError::new(StatusCode::NOT_FOUND, "link_unknown"));
        }
        Err(error) => return signed.refused(lang, error.into()),
    };
    let link = api::view(&state, record);
    let accepting = match settings::accepts_remote(&state.db, &viewer.staff.institution_id).await {
        Ok(accepting) => accepting,
        Err(error) => return signed.refused(lang, error.into()),
    };
    render_sheet(lang, &signed, link, accepting)
}

fn render_sheet(lang: PageLang, signed: &Signed, link: LinkView, accepting: bool) -> Response {
    let viewer = &signed.viewer;
    let l = lang.lang;
    let svg = inline_svg(&link.url).unwrap_or_default();
    let ja = Lang::Ja.texts().kind(link.kind);
    let en = Lang::En.texts().kind(link.kind);
    let name_ja = viewer.me.institution.name_ja.clone();
    let name_en = viewer.me.institution.name_en.clone();
    let snippet = website_snippet(l, &link.url, link.kind).unwrap_or_default();
    let open = link.state == "open";
    let kind_blocked = link.kind.behind_feature_switch() && !accepting;
    let visit = link.visit_date.clone();
    let body = view! {
        <div class="no-print sheet-tools">
            <p><a href="/console/links">{tr(l, "← 受付リンク", "← Reception links")}</a></p>
            {(!open).then(|| view! { <p class="notice" role="alert">{tr(l, "このリンクは使えません（無効化済みまたは期限切れ）。", "This link cannot be used (revoked or expired).")}</p> })}
            {kind_blocked.then(|| view! { <p class="notice" role="alert">{tr(l,
                "設定で「オンライン診療等・外来診療等（通常とは異なる動線）機能」が off のため、このリンクでは受付できません。",
                "The setting for online care and separate-route receptions is off: this link does not accept receptions.")}</p> })}
            <p class="button-row"><button type="button" data-print="true">{tr(l, "印刷する", "Print")}</button></p>
        </div>
        <article class="sheet" aria-label=tr(l, "印刷用シート", "Print sheet")>
            <header class="sheet-head">
                <p class="sheet-institution" lang="ja">{name_ja}</p>
                <p class="sheet-institution-en" lang="en">{name_en}</p>
            </header>
            <h1 class="sheet-title"><span lang="ja">{ja.title}</span><br/><span lang="en" class="sheet-en">{en.title}</span></h1>
            {visit.map(|d| view! { <p class="sheet-visit"><span lang="ja">"受診日 "</span>{d.clone()}<span lang="en">" (visit date)"</span></p> })}
            <div class="sheet-qr" role="img" aria-label=tr(l, "受付のQRコード", "QR code of the reception") inner_html=svg></div>
            <div class="sheet-steps">
                <section lang="ja">
                    <h2>"受付の手順"</h2>
                    <ol>
                        <li>"スマートフォンのカメラで上のQRコードを読み取ります。"</li>
                        <li>"画面の案内に沿って、医療機関に提供する情報を選びます。"</li>
                        <li>"マイナンバーカードと、利用者証明用の暗証番号（数字4桁）を用意し、カードをスマートフォンにかざします。"</li>
                    </ol>
                    <p>"医療機関が情報を見られる期間：" {ja.window}</p>
                </section>
                <section lang="en">
                    <h2>"How to register"</h2>
                    <ol>
                        <li>"Scan the QR code above with your smartphone camera."</li>
                        <li>"Follow the screens and choose what information to share with the clinic."</li>
                        <li>"Have your My Number card and its 4-digit PIN ready, and hold the card to your phone."</li>
                    </ol>
                    <p>"The clinic may read your information: " {en.window}</p>
                </section>
            </div>
            <p class="sheet-url"><span class="muted">"URL "</span><span data-testid="sheet-url">{link.url.clone()}</span></p>
        </article>
        <section class="panel no-print" aria-labelledby="snippet-h">
            <h2 id="snippet-h">{tr(l, "Webサイト用のコード", "Snippet for your website")}</h2>
            <p class="muted">{tr(l, "次のHTMLをWebサイトに貼り付けると、QRコードとリンクが表示されます。",
                "Paste this HTML into your website to show the QR code and the link.")}</p>
            <label for="snippet" class="visually-hidden">{tr(l, "Webサイト用のHTML", "HTML for your website")}</label>
            <textarea id="snippet" readonly rows="6" data-testid="snippet">{snippet}</textarea>
            <p><button type="button" class="secondary" data-copy="snippet">{tr(l, "コピー", "Copy")}</button></p>
        </section>
    }
    .into_any();
    Screen {
        lang,
        title: tr(l, "印刷用シート", "Print sheet").to_owned(),
        viewer: Some(&signed.viewer),
        section: Section::Links,
        path: signed.path.clone(),
        print: true,
    }
    .render(StatusCode::OK, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snippet_carries_the_qr_as_data_and_the_link_escaped() {
        let url = "https://uketsuke.example.jp/r/0123456789abcdefghjkmnpqrs";
        let snippet = website_snippet(Lang::Ja, url, ReceptionKind::OnlineCare).expect("snippet");
        assert!(snippet.contains("src=\"data:image/svg+xml;base64,"));
        assert_eq!(snippet.matches(url).count(), 2);
        assert!(!snippet.contains("<script"));
        assert!(inline_svg(url).expect("svg").starts_with("<svg"));
    }
}
