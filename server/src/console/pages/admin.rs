//! The administrator's screens: 設定, 利用者 (accounts and their passkeys), 操作ログ.

use axum::{
    Json,
    extract::{Path, Query, State},
    response::Response,
};
use leptos::prelude::*;

use super::{PageLang, Section, Signed, data_table, encode_component, role_name, tr};
use crate::{
    AppState,
    console::{accounts, audit, settings},
    gate::Role,
};
use uketsuke_app::i18n::Lang;

/// `GET /console/settings`.
pub async fn settings(State(state): State<AppState>, lang: PageLang, signed: Signed) -> Response {
    let viewer = &signed.viewer;
    let current = match settings::get_settings(State(state.clone()), viewer.staff.clone()).await {
        Ok(Json(current)) => current,
        Err(error) => return signed.refused(lang, error),
    };
    let l = lang.lang;
    let allowed = current
        .visual_check_roles
        .clone()
        .unwrap_or_else(|| settings::DEFAULT_VISUAL_CHECK_ROLES.to_vec());
    // One box per role; the form sends the ticked ones as a list (`data-type="list"`).
    let visual_check_roles = [Role::MedicalViewer, Role::Administrator, Role::General]
        .into_iter()
        .map(|role| {
            let value = serde_json::to_value(role)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            view! {
                <label class="check">
                    <input type="checkbox" name="visual_check_roles" data-type="list" value=value
                        checked=allowed.contains(&role)/>
                    {role_name(l, role)}
                </label>
            }
        })
        .collect::<Vec<_>>();
    let body = view! {
        <h1>{tr(l, "設定", "Settings")}</h1>
        <form data-api="/api/console/settings" data-method="PUT" data-reload="true" class="stack-form panel">
            <label>{tr(l, "医療機関名（日本語）", "Institution name (Japanese)")}
                <input type="text" name="name_ja" value=current.name_ja required maxlength="100"/></label>
            <label>{tr(l, "医療機関名（英語）", "Institution name (English)")}
                <input type="text" name="name_en" value=current.name_en required maxlength="100"/></label>
            <label>{tr(l, "医療機関コード（10桁、検証番号を確認します）", "Institution code (10 digits, check digit verified)")}
                <input type="text" name="code" value=current.code required inputmode="numeric" maxlength="10"/></label>
            <label class="check">
                <input type="checkbox" name="accepts_remote" checked=current.accepts_remote/>
                {tr(l, "オンライン診療等・外来診療等（通常とは異なる動線）機能を利用する",
                    "Use the functions for online care and outpatient care on a separate route")}
            </label>
            <p class="muted small">{tr(l, "off にすると、該当する種別のリンクは「この医療機関では受け付けていません」と表示します。",
                "When off, links of those kinds tell patients this institution does not accept them.")}</p>
            <fieldset>
                <legend>{tr(l, "医療扶助情報", "Public assistance information")}</legend>
                <label class="check"><input type="radio" name="uses_welfare_info" value="true" checked=current.uses_welfare_info/>
                    {tr(l, "利用する", "Use")}</label>
                <label class="check"><input type="radio" name="uses_welfare_info" value="false" checked=!current.uses_welfare_info/>
                    {tr(l, "利用しない", "Do not use")}</label>
            </fieldset>
            <label>{tr(l, "資格情報の保存期間（日）", "Keep eligibility records (days)")}
                <input type="number" name="eligibility_retention_days" data-type="number" min="1" max="3650"
                    value=current.eligibility_retention_days.to_string() required/></label>
            <fieldset data-testid="visual-check-roles">
                <legend>{tr(l, "目視確認（暗証番号なしの受付）を行える権限", "Roles that may register with 目視確認 (no PIN)")}</legend>
                {visual_check_roles}
                <p class="muted small">{tr(l, "どれも選ばないと、目視確認は使えません。",
                    "With none ticked, nobody can use 目視確認.")}</p>
            </fieldset>
            <button type="submit">{tr(l, "保存", "Save")}</button>
            <p class="form-message" role="status"></p>
        </form>
    }
    .into_any();
    signed.page(
        lang,
        tr(l, "設定", "Settings").to_owned(),
        Section::Settings,
        body,
    )
}

/// `GET /console/accounts`.
pub async fn accounts(State(state): State<AppState>, lang: PageLang, signed: Signed) -> Response {
    let viewer = &signed.viewer;
    let list = match accounts::list(State(state.clone()), viewer.staff.clone()).await {
        Ok(Json(list)) => list,
        Err(error) => return signed.refused(lang, error),
    };
    let l = lang.lang;
    let mut rows = Vec::with_capacity(list.len());
    for account in list {
        let passkeys = match accounts::passkeys(
            State(state.clone()),
            viewer.staff.clone(),
            Path(account.id.clone()),
        )
        .await
        {
            Ok(Json(keys)) => keys,
            Err(error) => return signed.refused(lang, error),
        };
        let id = account.id.clone();
        let base = format!("/api/console/accounts/{}", encode_component(&id));
        let toggle = if account.disabled {
            (
                format!("{base}/enable"),
                tr(l, "有効にする", "Enable"),
                "secondary",
            )
        } else {
            (
                format!("{base}/disable"),
                tr(l, "無効にする", "Disable"),
                "danger",
            )
        };
        let keys = passkeys
            .into_iter()
            .map(|key| {
                let remove = format!("{base}/passkeys/{}", encode_component(&key.id));
                let made = key.created_at.format("%Y-%m-%d").to_string();
                let used = key
                    .last_used_at
                    .map(|t| t.format("%Y-%m-%d").to_string())
                    .unwrap_or_else(|| "—".to_owned());
                view! {
                    <li>
                        {tr(l, "登録 ", "added ")}{made}{tr(l, "・最終利用 ", ", last used ")}{used}
                        <form data-api=remove data-method="DELETE" data-reload="true" class="inline-form"
                            data-confirm=tr(l, "このパスキーを削除しますか？", "Remove this passkey?")>
                            <button type="submit" class="link-button">{tr(l, "削除", "Remove")}</button>
                        </form>
                    </li>
                }
            })
            .collect_view();
        let state_text = if account.disabled {
            tr(l, "無効", "Disabled")
        } else {
            tr(l, "有効", "Active")
        };
        rows.push(view! {
            <tr data-account=id.clone()>
                <td><code>{id.clone()}</code></td>
                <td>{account.name.clone()}<br/><span class="kana">{account.kana.clone()}</span></td>
                <td>{role_name(l, account.role)}</td>
                <td>{account.start_date.clone()}</td>
                <td>{state_text}</td>
                <td><ul class="plain">{keys}</ul></td>
                <td class="button-row">
                    <form data-api=format!("{base}/enrolment-code") data-method="POST" data-show="link">
                        <button type="submit" class="secondary">{tr(l, "パスキー登録コードを発行", "Issue an enrolment code")}</button>
                        <p class="form-message" role="status"></p>
                    </form>
                    <form data-api=toggle.0 data-method="POST" data-reload="true">
                        <button type="submit" class=toggle.2>{toggle.1}</button>
                        <p class="form-message" role="status"></p>
                    </form>
                </td>
            </tr>
        });
    }
    let roles = [Role::General, Role::MedicalViewer, Role::Administrator]
        .into_iter()
        .map(|role| {
            let value = serde_json::to_value(role)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            view! { <option value=value>{role_name(l, role)}</option> }
        })
        .collect_view();
    let today = uketsuke_domain::window::jst_date(state.clock.now())
        .format("%Y-%m-%d")
        .to_string();
    let body = view! {
        <h1>{tr(l, "利用者", "Accounts")}</h1>
        <section class="panel" aria-labelledby="new-account-h">
            <h2 id="new-account-h">{tr(l, "利用者を追加", "Add an account")}</h2>
            <form data-api="/api/console/accounts" data-method="POST" data-reload="true" class="stack-form">
                <label>{tr(l, "ID（英数字2〜8文字）", "ID (2–8 letters or digits)")}
                    <input type="text" name="id" required pattern="[A-Za-z0-9]{2,8}" maxlength="8" autocomplete="off"/></label>
                <label>{tr(l, "氏名", "Name")}<input type="text" name="name" required maxlength="50"/></label>
                <label>{tr(l, "カナ", "Kana")}<input type="text" name="kana" maxlength="50"/></label>
                <label>{tr(l, "権限", "Role")}<select name="role">{roles}</select></label>
                <label>{tr(l, "利用開始日", "Start date")}<input type="date" name="start_date" value=today required/></label>
                <button type="submit">{tr(l, "追加", "Add")}</button>
                <p class="form-message" role="status"></p>
            </form>
        </section>
        {data_table(
            tr(l, "利用者の一覧", "All accounts"),
            vec![
                "ID",
                tr(l, "氏名", "Name"),
                tr(l, "権限", "Role"),
                tr(l, "利用開始日", "Start"),
                tr(l, "状態", "State"),
                tr(l, "パスキー", "Passkeys"),
                tr(l, "操作", "Actions"),
            ],
            "accounts",
            rows,
        )}
    }
    .into_any();
    signed.page(
        lang,
        tr(l, "利用者", "Accounts").to_owned(),
        Section::Accounts,
        body,
    )
}

fn action_name(l: Lang, action: &str) -> String {
    let name = match action {
        "reception.view" => tr(l, "受付・資格情報の閲覧", "Viewed a reception"),
        "receptions.list" => tr(l, "受付一覧の閲覧", "Viewed the reception list"),
        "medical.view" => tr(l, "医療情報の閲覧", "Viewed medical information"),
        "eligibility.export" => tr(l, "資格情報の出力", "Exported eligibility"),
        "receptions.export" => tr(
            l,
            "レセコン用の出力",
            "Exported receptions for the レセコン",
        ),
        "receptions.export_check" => tr(
            l,
            "レセコン用出力の確認",
            "Checked an export for the レセコン",
        ),
        "receptions.export_report" => tr(
            l,
            "置き換え文字一覧の出力",
            "Exported the list of stand-ins",
        ),
        "patient_refs.upload" => tr(l, "照会番号の一括登録", "Uploaded 照会番号 in bulk"),
        "settings.update" => tr(l, "設定の変更", "Changed settings"),
        "link.create" => tr(l, "リンクの作成", "Created a link"),
        "link.revoke" => tr(l, "リンクの無効化", "Revoked a link"),
        "signin" => tr(l, "サインイン", "Signed in"),
        "audit.view" => tr(l, "操作ログの閲覧", "Viewed the audit log"),
        "audit.export" => tr(l, "操作ログの出力", "Exported the audit log"),
        "audit.keyed" => tr(l, "操作ログの鍵付き記録の開始", "Audit log keyed from here"),
        "account.create" => tr(l, "利用者の作成", "Created an account"),
        "account.enable" => tr(l, "利用者の有効化", "Enabled an account"),
        "account.disable" => tr(l, "利用者の無効化", "Disabled an account"),
        "enrolment_code.issue" => tr(l, "登録コードの発行", "Issued an enrolment code"),
        "passkey.register" => tr(l, "パスキーの登録", "Registered a passkey"),
        "passkey.remove" => tr(l, "パスキーの削除", "Removed a passkey"),
        "reception.visual_check" => tr(l, "目視確認による受付", "Registered with 目視確認"),
        "reception.withdraw" => tr(l, "受付の取消", "Withdrew a reception"),
        "home_visit.record" => tr(l, "訪問の記録", "Recorded a home visit"),
        "patient_ref.update" => tr(l, "照会番号の設定", "Set a 照会番号"),
        "consent.update" => tr(l, "患者による同意の変更", "Patient changed a consent"),
        "consent.cancel" => tr(l, "患者による受付の取消", "Patient cancelled a reception"),
        "consent.withdraw" => tr(l, "患者による同意の取消", "Patient withdrew consent"),
        "api_token.create" => tr(l, "APIトークンの発行", "Created an API token"),
        "api_token.revoke" => tr(l, "APIトークンの無効化", "Revoked an API token"),
        "api.link.create" => tr(l, "API: リンクの作成", "API: created a link"),
        "api.link.read" => tr(l, "API: リンクの参照", "API: read a link"),
        "api.link.revoke" => tr(l, "API: リンクの無効化", "API: revoked a link"),
        "api.home_visit.record" => tr(l, "API: 訪問の記録", "API: recorded a home visit"),
        "demo.clock" => tr(l, "デモ: 時計を進める", "Demo: moved the clock"),
        "demo.retire" => tr(
            l,
            "デモの無効化（本番開始）",
            "Demo retired (production start)",
        ),
        _ => "",
    };
    if name.is_empty() {
        action.to_owned()
    } else {
        format!("{name} ({action})")
    }
}

/// `GET /console/audit?from&to&account&action`.
pub async fn audit(State(state): State<AppState>, lang: PageLang, signed: Signed) -> Response {
    let query = signed.query.clone();
    let viewer = &signed.viewer;
    let l = lang.lang;
    // The filter fields only; `lang` and empty fields are not filters.
    let filter_query: String = query
        .split('&')
        .filter(|pair| {
            pair.split_once('=').is_some_and(|(k, v)| {
                !v.is_empty() && matches!(k, "from" | "to" | "account" | "action")
            })
        })
        .collect::<Vec<_>>()
        .join("&");
    let filter: audit::Filter = serde_urlencoded::from_str(&filter_query).unwrap_or_default();
    let shown = (
        filter.from.clone().unwrap_or_default(),
        filter.to.clone().unwrap_or_default(),
        filter.account.clone().unwrap_or_default(),
        filter.action.clone().unwrap_or_default(),
    );
    let page = match audit::list(
        State(state.clone()),
        viewer.staff.clone(),
        Ok(Query(filter)),
    )
    .await
    {
        Ok(Json(page)) => page,
        Err(error) => return signed.refused(lang, error),
    };
    let export = if filter_query.is_empty() {
        "/api/console/audit.csv".to_owned()
    } else {
        format!("/api/console/audit.csv?{filter_query}")
    };
    let rows = page
        .entries
        .into_iter()
        .map(|e| {
            view! {
                <tr>
                    <td>{e.seq}</td>
                    <td>{uketsuke_domain::window::to_jst(e.at).format("%Y-%m-%d %H:%M:%S").to_string()}</td>
                    <td><code>{e.account}</code></td>
                    <td>{action_name(l, &e.action)}</td>
                    <td class="small">{e.target.unwrap_or_default()}</td>
                    <td class="small">{e.ip.unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    let body = view! {
        <h1>{tr(l, "操作ログ", "Audit log")}</h1>
        <p class="muted">{tr(l,
            "資格情報・医療情報の閲覧、出力、設定と利用者の変更をすべて記録しています。記録は追記のみで、ハッシュチェーンで改ざんを検出できます。",
            "Every view of eligibility or medical information, every export and every change of settings or accounts is recorded. The log is append-only and hash-chained.")}</p>
        <form method="get" action="/console/audit" class="inline-form panel">
            <label>{tr(l, "開始日", "From")}<input type="date" name="from" value=shown.0/></label>
            <label>{tr(l, "終了日", "To")}<input type="date" name="to" value=shown.1/></label>
            <label>{tr(l, "利用者ID", "Account")}<input type="text" name="account" value=shown.2 maxlength="8"/></label>
            <label>{tr(l, "操作", "Action")}<input type="text" name="action" value=shown.3 maxlength="40"/></label>
            <button type="submit" class="secondary">{tr(l, "絞り込む", "Filter")}</button>
            <a class="button secondary" href=export download="">{tr(l, "CSVで出力", "Export CSV")}</a>
        </form>
        {page.truncated.then(|| view! { <p class="notice">{tr(l, "件数が多いため新しい1000件を表示しています。すべてはCSVで出力してください。",
            "Showing the newest 1000 entries; export CSV for all.")}</p> })}
        {data_table(
            tr(l, "操作ログ", "Audit log"),
            vec![
                "#",
                tr(l, "日時（日本時間）", "When (JST)"),
                tr(l, "利用者", "Who"),
                tr(l, "操作", "What"),
                tr(l, "対象", "Target"),
                tr(l, "接続元", "From"),
            ],
            "audit",
            rows,
        )}
    }
    .into_any();
    signed.page(
        lang,
        tr(l, "操作ログ", "Audit log").to_owned(),
        Section::Audit,
        body,
    )
}
