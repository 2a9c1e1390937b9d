//! The レセコン export and the bulk 照会番号 upload (issue 15 §3), through HTTP against the real
//! server and the simulator: every column of the day's file round-trips (UTF-8 and cp932 hold
//! the same cells, and agree with the reception's own export and its stored eligibility);
//! 外字 names — 髙﨑 kept in cp932, 𠮷 𩸽 and variation sequences written as the substitute and
//! listed in the report; formula-like cells defused; an upload with good and bad rows applies
//! the good ones and gives each bad one its reason; files that cannot be read are refused whole.

mod common;

use common::console::{Console, demo_staff};

use common::stack::Stack;
use encoding_rs::SHIFT_JIS;
use reqwest::Method;
use serde_json::json;
use uketsuke_backend::simulator::population::VARIANT_NAMES;
use uketsuke_domain::eligibility::EligibilityOutcome;
use uketsuke_server::relay::{self, StoredEligibility};

/// Insurance and 医療扶助 together (併用), the demo clinic contracted.
const INSURED_WITH_WELFARE: u32 = 16;
/// An ordinary insured person with 記号 and 枝番 (協会けんぽ 大阪).
const ORDINARY: u32 = 39;
/// The people of [`VARIANT_NAMES`], in order.
const VARIANTS: [u32; 3] = [35, 36, 37];

async fn stack() -> Stack {
    common::stack::stack(None, Some("http://localhost:0")).await
}

/// A confirmed separate-route reception by person `no`, with its eligibility; returns its id.
async fn reception(stack: &Stack, no: u32) -> String {
    stack.confirmed_reception("separate_route", no).await
}

/// The bytes and headers of a download.
async fn download(console: &Console, path: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let response = console
        .bare(Method::GET, path)
        .send()
        .await
        .expect("answer");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.bytes().await.expect("body").to_vec(),
    )
}

/// The records of a CSV text (header first).
fn records(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.expect("record").iter().map(str::to_owned).collect())
        .collect()
}

fn utf8(bytes: &[u8]) -> String {
    let text = String::from_utf8(bytes.to_vec()).expect("utf-8");
    text.strip_prefix('\u{feff}')
        .unwrap_or_else(|| panic!("a BOM first: {text}"))
        .to_owned()
}

fn cp932(bytes: &[u8]) -> String {
    assert!(!bytes.starts_with(&[0xef, 0xbb, 0xbf]), "no BOM in cp932");
    let (text, malformed) = SHIFT_JIS.decode_without_bom_handling(bytes);
    assert!(!malformed);
    text.into_owned()
}

fn column(records: &[Vec<String>], row: &[String], name: &str) -> String {
    let i = records[0]
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("column {name}"));
    row[i].clone()
}

/// The data row of reception `id` (last column 受付ID).
fn row_of<'a>(records: &'a [Vec<String>], id: &str) -> &'a Vec<String> {
    records
        .iter()
        .find(|r| r.last().is_some_and(|last| last == id))
        .unwrap_or_else(|| panic!("a row for {id}"))
}

fn day(stack: &Stack) -> String {
    stack.today().format("%Y-%m-%d").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_column_round_trips_in_both_encodings() {
    let stack = stack().await;
    let welfare = reception(&stack, INSURED_WITH_WELFARE).await;
    let ordinary = reception(&stack, ORDINARY).await;
    let (staff, _) = demo_staff(&stack, "staff").await;
    let put = staff
        .call(
            Method::PUT,
            &format!("/api/console/receptions/{welfare}/patient-ref"),
            Some(json!({ "patient_ref": "K-0016" })),
        )
        .await;
    assert_eq!(put.status, 204, "{put:?}");
    let today = day(&stack);
    let query = format!("from={today}&to={today}");

    let (status, headers, bytes) = download(
        &staff,
        &format!("/api/console/exports/receptions.csv?{query}&encoding=utf-8"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    assert!(
        headers["content-disposition"]
            .to_str()
            .expect("ascii")
            .contains(&format!("receptions-{today}-utf-8.csv"))
    );
    let text = utf8(&bytes);
    assert!(text.ends_with("\r\n") && text.contains("\r\n"));
    let from_utf8 = records(&text);
    assert_eq!(from_utf8.len(), 3, "header and two receptions: {text}");
    assert_eq!(from_utf8[0].len(), 35);
    assert_eq!(from_utf8[0].last().map(String::as_str), Some("受付ID"));

    let (status, headers, bytes) = download(
        &staff,
        &format!("/api/console/exports/receptions.csv?{query}&encoding=cp932"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/csv; charset=Shift_JIS");
    assert_eq!(headers["x-uketsuke-substituted"], "0");
    let from_cp932 = records(&cp932(&bytes));
    // Every cell the same in both encodings: nothing outside cp932 in these names.
    assert_eq!(from_utf8, from_cp932);

    // Every column agrees with the reception's own export (the same 34 columns).
    for id in [&welfare, &ordinary] {
        let (status, _, single) = download(
            &staff,
            &format!("/api/console/receptions/{id}/eligibility.csv"),
        )
        .await;
        assert_eq!(status, 200);
        let single = records(&utf8(&single));
        assert_eq!(single[0][..], from_utf8[0][..34]);
        assert_eq!(single[1][..], row_of(&from_utf8, id)[..34]);
    }

    // …and with the eligibility as stored.
    for id in [&welfare, &ordinary] {
        let Some(StoredEligibility::Answer {
            outcome: EligibilityOutcome::Found { record },
            ..
        }) = relay::eligibility(&stack.state.db, id).await.expect("read")
        else {
            panic!("eligibility found");
        };
        let row = row_of(&from_utf8, id);
        let insurance = record.insurance.as_ref().expect("insured");
        assert_eq!(column(&from_utf8, row, "氏名"), record.name);
        assert_eq!(column(&from_utf8, row, "氏名カナ"), record.name_kana);
        assert_eq!(
            column(&from_utf8, row, "保険者番号"),
            insurance.insurer_number.as_str()
        );
        assert_eq!(
            column(&from_utf8, row, "記号"),
            insurance.symbol.clone().unwrap_or_default()
        );
        assert_eq!(column(&from_utf8, row, "番号"), insurance.number);
        assert_eq!(
            column(&from_utf8, row, "枝番"),
            insurance.branch.clone().unwrap_or_default()
        );
        let burden = insurance.burden_percent.expect("burden");
        assert_eq!(
            column(&from_utf8, row, "負担割合"),
            format!("{}割", burden / 10)
        );
        let day = |d: Option<chrono::NaiveDate>| {
            d.map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default()
        };
        assert_eq!(
            column(&from_utf8, row, "有効開始年月日"),
            day(insurance.valid_from)
        );
        assert_eq!(
            column(&from_utf8, row, "有効終了年月日"),
            day(insurance.valid_until)
        );
    }
    let row = row_of(&from_utf8, &welfare);
    assert_eq!(column(&from_utf8, row, "照会番号"), "K-0016");
    assert_eq!(column(&from_utf8, row, "公費負担者番号").len(), 8);
    assert!(!column(&from_utf8, row, "受給者番号").is_empty());
    assert!(!column(&from_utf8, row, "医療券有効開始").is_empty());

    // The file, its 照会番号 column filled in by the レセコン, comes back as an upload.
    let mut edited = from_utf8.clone();
    for row in edited.iter_mut().skip(1) {
        let id = row.last().expect("id").clone();
        row[1] = if id == welfare {
            "K-0016".into()
        } else {
            "K-0039".into()
        };
    }
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in &edited {
        writer.write_record(row).expect("write");
    }
    let file = writer.into_inner().expect("bytes");
    let result = upload(&staff, file).await;
    assert_eq!(result.status, 200, "{result:?}");
    assert_eq!(
        (
            &result.body["applied"],
            &result.body["unchanged"],
            &result.body["refused"]
        ),
        (&json!(1), &json!(1), &json!(0)),
        "{}",
        result.body
    );
    let detail = staff
        .get(&format!("/api/console/receptions/{ordinary}"))
        .await;
    assert_eq!(detail.body["patient_ref"], "K-0039");
}

async fn upload(console: &Console, file: Vec<u8>) -> common::console::Answer {
    console
        .send(
            console
                .request(Method::POST, "/api/console/patient-refs")
                .header("content-type", "text/csv")
                .body(file),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gaiji_are_listed_and_substituted_in_cp932_only() {
    let stack = stack().await;
    let mut ids = Vec::new();
    for no in VARIANTS {
        ids.push(reception(&stack, no).await);
    }
    let (staff, _) = demo_staff(&stack, "staff").await;
    let today = day(&stack);
    let query = format!("from={today}&to={today}");

    // UTF-8 keeps every code point.
    let (_, headers, bytes) = download(
        &staff,
        &format!("/api/console/exports/receptions.csv?{query}"),
    )
    .await;
    assert_eq!(headers["x-uketsuke-substituted"], "0");
    let from_utf8 = records(&utf8(&bytes));
    for (id, name) in ids.iter().zip(VARIANT_NAMES) {
        assert_eq!(column(&from_utf8, row_of(&from_utf8, id), "氏名"), name);
    }

    // cp932: 髙﨑 kept; 𠮷 𩸽 and 辻/葛 + VS17 written as the substitute, each one listed.
    let check = staff
        .get(&format!(
            "/api/console/exports/receptions?{query}&encoding=cp932"
        ))
        .await;
    assert_eq!(check.status, 200, "{check:?}");
    assert_eq!(check.body["receptions"], 3);
    assert_eq!(check.body["substitute"], "〓");
    let listed: Vec<(String, String, String, String)> = check.body["unrepresentable"]
        .as_array()
        .expect("list")
        .iter()
        .map(|u| {
            let s = |k: &str| u[k].as_str().expect(k).to_owned();
            (
                s("reception_id"),
                s("column"),
                s("character"),
                s("code_points"),
            )
        })
        .collect();
    let expected = vec![
        (ids[1].clone(), "氏名".into(), "𠮷".into(), "U+20BB7".into()),
        (ids[1].clone(), "氏名".into(), "𩸽".into(), "U+29E3D".into()),
        (
            ids[2].clone(),
            "氏名".into(),
            "辻\u{E0100}".into(),
            "U+8FBB U+E0100".into(),
        ),
        (
            ids[2].clone(),
            "氏名".into(),
            "葛\u{E0100}".into(),
            "U+845B U+E0100".into(),
        ),
    ];
    assert_eq!(listed, expected);
    // The check showed characters of two patients' names: a read of their eligibility, in
    // their read history; the third patient's name was not shown.
    let shown: Vec<String> = sqlx::query_scalar(
        "SELECT r.reception_id FROM audit_reads r JOIN audit_log l \
           ON l.institution_id = r.institution_id AND l.seq = r.seq \
         WHERE l.action = 'receptions.export_check' AND r.category = 'eligibility' \
         ORDER BY r.reception_id",
    )
    .fetch_all(&stack.state.db)
    .await
    .expect("reads");
    let mut expected_shown = vec![ids[1].clone(), ids[2].clone()];
    expected_shown.sort();
    assert_eq!(shown, expected_shown);

    let (_, headers, bytes) = download(
        &staff,
        &format!("/api/console/exports/receptions.csv?{query}&encoding=cp932"),
    )
    .await;
    assert_eq!(headers["x-uketsuke-substituted"], "4");
    let from_cp932 = records(&cp932(&bytes));
    let name = |id: &str| column(&from_cp932, row_of(&from_cp932, id), "氏名");
    assert_eq!(name(&ids[0]), "髙﨑 はな");
    assert_eq!(name(&ids[1]), "〓田 〓太郎");
    assert_eq!(name(&ids[2]), "〓 〓子");

    // A substitute of the staff member's choice, and the report beside the file.
    let substitute = "%E2%96%A0"; // ■
    let (_, _, bytes) = download(
        &staff,
        &format!(
            "/api/console/exports/receptions.csv?{query}&encoding=cp932&substitute={substitute}"
        ),
    )
    .await;
    let from_cp932 = records(&cp932(&bytes));
    assert_eq!(
        column(&from_cp932, row_of(&from_cp932, &ids[1]), "氏名"),
        "■田 ■太郎"
    );
    let (status, _, bytes) = download(
        &staff,
        &format!(
            "/api/console/exports/receptions-report.csv?{query}&encoding=cp932&substitute={substitute}"
        ),
    )
    .await;
    assert_eq!(status, 200);
    let report = records(&utf8(&bytes));
    assert_eq!(
        report[0],
        vec![
            "受付番号",
            "受付ID",
            "列",
            "文字",
            "コードポイント",
            "書き出した文字"
        ]
    );
    assert_eq!(report.len(), 5);
    assert_eq!(report[1][1], ids[1]);
    assert_eq!(report[1][3], "𠮷");
    assert_eq!(report[1][4], "U+20BB7");
    assert_eq!(report[1][5], "■");
    assert_eq!(report[4][3], "葛\u{E0100}");

    // A substitute cp932 cannot hold itself is refused.
    let bad = staff
        .get(&format!(
            "/api/console/exports/receptions?{query}&encoding=cp932&substitute=%F0%A0%AE%B7"
        ))
        .await;
    assert_eq!((bad.status, bad.error()), (422, Some("substitute_invalid")));

    // The console's screen lists them too.
    let page = staff
        .get(&format!(
            "/console/export?{query}&encoding=cp932&substitute=%E3%80%93"
        ))
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.text.matches("data-testid=\"unrepresentable\"").count(),
        4
    );
    assert!(page.text.contains("U+20BB7"), "{}", page.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formula_like_cells_are_defused_and_come_back_whole() {
    let stack = stack().await;
    let id = reception(&stack, ORDINARY).await;
    let (staff, _) = demo_staff(&stack, "staff").await;
    for formula in ["=HYPERLINK(\"http://x\")", "＝1+1", "@SUM(A1)", "-2+3"] {
        let put = staff
            .call(
                Method::PUT,
                &format!("/api/console/receptions/{id}/patient-ref"),
                Some(json!({ "patient_ref": formula })),
            )
            .await;
        assert_eq!(put.status, 204, "{put:?}");
        let today = day(&stack);
        for encoding in ["utf-8", "cp932"] {
            let (_, _, bytes) = download(
                &staff,
                &format!(
                    "/api/console/exports/receptions.csv?from={today}&to={today}&encoding={encoding}"
                ),
            )
            .await;
            let text = if encoding == "utf-8" {
                utf8(&bytes)
            } else {
                cp932(&bytes)
            };
            let parsed = records(&text);
            assert_eq!(
                column(&parsed, row_of(&parsed, &id), "照会番号"),
                format!("'{formula}"),
                "{encoding}"
            );
            // Uploaded back as it was exported, the 照会番号 is the same: nothing changes.
            let result = upload(&staff, text.into_bytes()).await;
            assert_eq!(result.status, 200, "{result:?}");
            assert_eq!(result.body["unchanged"], 1, "{}", result.body);
            assert_eq!(result.body["applied"], 0, "{}", result.body);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_upload_applies_the_good_rows_and_says_why_for_the_rest() {
    let stack = stack().await;
    let first = reception(&stack, ORDINARY).await;
    let second = reception(&stack, INSURED_WITH_WELFARE).await;
    let (staff, _) = demo_staff(&stack, "staff").await;
    let number = |id: &str| {
        let id = id.to_owned();
        let staff = &staff;
        async move {
            staff
                .get(&format!("/api/console/receptions/{id}"))
                .await
                .body["reception_number"]
                .as_str()
                .expect("number")
                .to_owned()
        }
    };
    let first_no = number(&first).await;
    let long = "9".repeat(33);
    // Shift_JIS, no header: 受付番号 in one row, the id in another, and every kind of bad row.
    let text = format!(
        "{first_no},カルテ１\r\n\
         {second},P-2\r\n\
         99999999,P-3\r\n\
         {first_no}\r\n\
         ,P-5\r\n\
         {second},{long}\r\n\
         {first_no},P-7\r\n\
         {second},P-9,extra\r\n"
    );
    let (bytes_sjis, _, unmappable) = SHIFT_JIS.encode(&text);
    assert!(!unmappable);
    let result = upload(&staff, bytes_sjis.into_owned()).await;
    assert_eq!(result.status, 200, "{result:?}");
    let rows = result.body["rows"].as_array().expect("rows").clone();
    let outcome: Vec<(u64, &str, Option<&str>)> = rows
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().expect("line"),
                r["result"].as_str().expect("result"),
                r["reason"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        outcome,
        vec![
            (1, "applied", None),
            (2, "applied", None),
            (3, "refused", Some("reception_unknown")),
            (4, "refused", Some("columns_invalid")),
            (5, "refused", Some("key_missing")),
            (6, "refused", Some("duplicate_in_file")),
            (7, "refused", Some("duplicate_in_file")),
            (8, "refused", Some("columns_invalid")),
        ],
        "{}",
        result.body
    );
    assert_eq!(result.body["applied"], 2);
    assert_eq!(result.body["refused"], 6);
    let reference = |id: String| {
        let staff = &staff;
        async move {
            staff
                .get(&format!("/api/console/receptions/{id}"))
                .await
                .body["patient_ref"]
                .clone()
        }
    };
    assert_eq!(reference(first.clone()).await, json!("カルテ１"));
    assert_eq!(reference(second.clone()).await, json!("P-2"));

    // In UTF-8 with a header (any column order): a too-long and an invisible-control 照会番号
    // are refused, the stored ones stay.
    let file = format!("\u{feff}照会番号,受付ID\r\n{long},{second}\r\n\"P\u{202E}8\",{first}\r\n");
    let result = upload(&staff, file.into_bytes()).await;
    assert_eq!(result.status, 200, "{result:?}");
    let reasons: Vec<&str> = result.body["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["reason"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(reasons.len(), 2);
    assert_eq!(reasons, vec!["patient_ref_invalid", "text_bidi_control"]);
    assert_eq!(reference(first.clone()).await, json!("カルテ１"));
    assert_eq!(reference(second.clone()).await, json!("P-2"));

    // Files that cannot be read at all are refused whole, and change nothing.
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (
            vec![0x82, 0xa0, 0xff, 0xff, 0x2c, 0x31],
            422,
            "file_encoding_unknown",
        ),
        (b"\r\n\r\n".to_vec(), 422, "file_empty"),
        (
            "照会番号,名前\r\nP-1,x\r\n".as_bytes().to_vec(),
            422,
            "header_invalid",
        ),
    ];
    for (bytes, status, code) in cases {
        let result = upload(&staff, bytes).await;
        assert_eq!(
            (result.status, result.error()),
            (status, Some(code)),
            "{result:?}"
        );
    }
    let too_large = upload(&staff, vec![b'a'; 70 * 1024]).await;
    assert_eq!(too_large.status, 413);
    assert_eq!(reference(first).await, json!("カルテ１"));
}
