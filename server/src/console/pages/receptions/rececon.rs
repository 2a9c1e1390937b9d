//! レセコン連携: the receptions of a day or a range as one file for the レセコン (UTF-8 with BOM or
//! cp932), the characters cp932 cannot hold listed before the download, and the bulk 照会番号
//! upload with a result per row (shown by `console.js`).

use axum::{
    Json,
    extract::{Query, State},
    response::Response,
};
use leptos::prelude::*;
use uketsuke_app::i18n::Lang;

use crate::{
    AppState,
    console::csv_file::Encoding,
    console::pages::{PageLang, Section, Signed, encode_component, tr},
    console::receptions::rececon::{self as api, ExportCheck, RangeQuery},
};

/// `GET /console/export?from&to&encoding&substitute`.
pub async fn page(State(state): State<AppState>, lang: PageLang, signed: Signed) -> Response {
    // The form's values, decoded (the stand-in is usually not ASCII).
    let param = |key: &str| {
        url::form_urlencoded::parse(signed.query.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    };
    let query = RangeQuery {
        from: param("from"),
        to: param("to"),
        encoding: param("encoding"),
        substitute: param("substitute"),
    };
    let checked = api::check(
        State(state.clone()),
        signed.viewer.staff.clone(),
        Ok(Query(query.clone())),
    )
    .await;
    let check = match checked {
        Ok(Json(check)) => check,
        Err(error) => return signed.refused(lang, error),
    };
    let l = lang.lang;
    let body = view! {
        <p><a href="/console">{tr(l, "← 受付一覧", "← Receptions")}</a></p>
        <h1>{tr(l, "レセコン連携", "Export for the レセコン")}</h1>
        {range_form(l, &check)}
        {result_section(l, &check)}
        {upload_section(l)}
    }
    .into_any();
    signed.page(
        lang,
        tr(l, "レセコン連携", "Export for the レセコン").to_owned(),
        Section::Receptions,
        body,
    )
}

fn range_form(l: Lang, check: &ExportCheck) -> AnyView {
    let cp932 = check.encoding == Encoding::Cp932;
    view! {
        <section class="panel" aria-labelledby="range-h">
            <h2 id="range-h">{tr(l, "書き出す受付", "Receptions to export")}</h2>
            <form method="get" action="/console/export" class="inline-form" data-testid="export-form">
                <label>{tr(l, "開始日", "From")}
                    <input type="date" name="from" value=check.from.clone()/>
                </label>
                <label>{tr(l, "終了日", "To")}
                    <input type="date" name="to" value=check.to.clone()/>
                </label>
                <fieldset class="inline-fieldset">
                    <legend>{tr(l, "文字コード", "Encoding")}</legend>
                    <label><input type="radio" name="encoding" value="utf-8" checked=!cp932/>
                        {tr(l, "UTF-8（BOM付き）", "UTF-8 (with BOM)")}</label>
                    <label><input type="radio" name="encoding" value="cp932" checked=cp932
                        data-testid="encoding-cp932"/>
                        {tr(l, "Shift_JIS（cp932）", "Shift_JIS (cp932)")}</label>
                </fieldset>
                <label>{tr(l, "表せない文字の代わり", "Stand-in for characters cp932 lacks")}
                    <input type="text" name="substitute" value=check.substitute.clone()
                        maxlength="4" size="4" data-testid="substitute"/>
                </label>
                <button type="submit" class="secondary" data-testid="export-check">
                    {tr(l, "確認する", "Check")}
                </button>
            </form>
            <p class="muted">{tr(l,
                "その日に受け付けた受付と、その日が受診日の受付を書き出します（最長31日分）。列：受付番号・照会番号・保険者番号・記号・番号・枝番・負担割合・有効期間・公費負担者番号・受給者番号（医療扶助）ほか。",
                "Receptions submitted on, or with a visit date in, the chosen days (31 days at most). Columns: reception number, patient number (照会番号), insurer number, symbol, number, branch, burden share, validity, public payer and recipient numbers (医療扶助) and more.")}</p>
        </section>
    }
    .into_any()
}

fn query_of(check: &ExportCheck) -> String {
    format!(
        "from={}&to={}&encoding={}&substitute={}",
        check.from,
        check.to,
        check.encoding.code(),
        encode_component(&check.substitute)
    )
}

fn result_section(l: Lang, check: &ExportCheck) -> AnyView {
    let query = query_of(check);
    let file = format!("/api/console/exports/receptions.csv?{query}");
    let report = format!("/api/console/exports/receptions-report.csv?{query}");
    let count = check.receptions;
    let pending = check.pending;
    let found = check.unrepresentable.len();
    let substitute = check.substitute.clone();
    let encoding = match check.encoding {
        Encoding::Utf8 => tr(l, "UTF-8（BOM付き）", "UTF-8 (with BOM)"),
        Encoding::Cp932 => tr(l, "Shift_JIS（cp932）", "Shift_JIS (cp932)"),
    };
    let rows = check
        .unrepresentable
        .iter()
        .map(|r| {
            let href = format!("/console/receptions/{}", r.reception_id);
            let number = r
                .reception_number
                .clone()
                .unwrap_or_else(|| r.reception_id.clone());
            view! {
                <tr data-testid="unrepresentable">
                    <td><a href=href>{number}</a></td>
                    <td>{r.column.clone()}</td>
                    <td class="glyph">{r.character.clone()}</td>
                    <td><code>{r.code_points.clone()}</code></td>
                    <td>{substitute.clone()}</td>
                </tr>
            }
        })
        .collect_view();
    let report_view = if found == 0 {
        view! {
            <p data-testid="unrepresentable-none">{match check.encoding {
                Encoding::Utf8 => tr(l, "UTF-8ではすべての文字をそのまま書き出します。", "In UTF-8 every character is written as it is."),
                Encoding::Cp932 => tr(l, "cp932で表せない文字はありません。", "Every character fits in cp932."),
            }}</p>
        }
        .into_any()
    } else {
        view! {
            <p role="alert" data-testid="unrepresentable-count">
                {format!("{found} ")}
                {tr(l, "文字はcp932で表せないため、代わりの文字で書き出します。レセコンで正しい文字に直してください。",
                    "characters do not exist in cp932 and are written as the stand-in. Correct them in the レセコン.")}
            </p>
            {crate::console::pages::data_table(
                tr(l, "cp932で表せない文字", "Characters cp932 cannot hold"),
                vec![
                    tr(l, "受付番号", "Reception"),
                    tr(l, "列", "Column"),
                    tr(l, "文字", "Character"),
                    tr(l, "コードポイント", "Code points"),
                    tr(l, "書き出す文字", "Written as"),
                ],
                "unrepresentable-table",
                rows,
            )}
        }
        .into_any()
    };
    view! {
        <section class="panel" aria-labelledby="file-h">
            <h2 id="file-h">{tr(l, "書き出し", "The file")}</h2>
            <p data-testid="export-count">
                {format!("{} – {} · {encoding} · ", check.from, check.to)}
                {count}{tr(l, "件", " receptions")}
                {(pending > 0).then(|| view! {
                    <span class="muted">{format!(" ({pending} ")}{tr(l, "件は資格確認中のため含みません)", "still confirming, not included)")}</span>
                })}
            </p>
            {report_view}
            <p class="button-row">
                <a class="button" href=file download="" data-testid="export-download">
                    {tr(l, "CSVをダウンロード", "Download the CSV")}
                </a>
                {(found > 0).then(|| view! {
                    <a class="button secondary" href=report.clone() download="" data-testid="report-download">
                        {tr(l, "置き換えの一覧（CSV）", "List of stand-ins (CSV)")}
                    </a>
                })}
            </p>
        </section>
    }
    .into_any()
}

fn upload_section(l: Lang) -> AnyView {
    view! {
        <section class="panel" aria-labelledby="upload-h">
            <h2 id="upload-h">{tr(l, "照会番号の一括登録", "Set many patient numbers (照会番号)")}</h2>
            <p class="muted">{tr(l,
                "1行に「受付番号または受付ID, 照会番号」のCSV（UTF-8またはShift_JIS）。見出し行に「照会番号」と「受付番号」か「受付ID」があれば列の順は自由で、上で書き出したファイルに照会番号を書き入れたものもそのまま使えます。行ごとに登録し、登録できない行は理由を表示します。",
                "A CSV (UTF-8 or Shift_JIS) with “reception number or reception ID, patient number” on each line. With a header row naming 照会番号 and 受付番号 or 受付ID the columns may be in any order, so the file exported above with its 照会番号 filled in works as it is. Each row is applied on its own; a row that cannot be applied shows why.")}</p>
            <form data-upload="/api/console/patient-refs" class="inline-form" data-testid="upload-form">
                <label>{tr(l, "CSVファイル", "CSV file")}
                    <input type="file" name="file" accept=".csv,text/csv" required data-testid="upload-file"/>
                </label>
                <button type="submit">{tr(l, "登録する", "Apply")}</button>
                <p class="form-message" role="status"></p>
            </form>
            <div class="upload-result" data-testid="upload-result"></div>
        </section>
    }
    .into_any()
}
