//! The CSV files the console writes and reads, through the `csv` crate: the exports for the
//! レセコン and the audit log, and the bulk 照会番号 upload.
//!
//! Writing: every cell is defused first ([`defuse`]: a spreadsheet must not run a cell as a
//! formula), then written with CRLF line ends, quoted only where needed. Two encodings:
//! UTF-8 with a BOM (Excel recognises it) and cp932 (Windows-31J, the Shift_JIS most レセコン
//! import), encoded with `encoding_rs`'s Shift_JIS, which is the WHATWG form of cp932 (NEC and
//! IBM extensions included, so 髙 and 﨑 survive). A character cp932 cannot hold — 𠮷 outside the
//! BMP, an ideographic variation sequence such as 辻 + VS17, or one that would come back as
//! another character (¥ would be read back as a backslash) — is never dropped or guessed: the
//! substitute (default 〓, the geta mark) is written in its place and the cell is listed
//! ([`Unrepresentable`]) for the report beside the file.
//!
//! Reading: UTF-8 (with or without a BOM) or, when the bytes are not UTF-8, cp932; a file that
//! is neither is refused whole.

use std::borrow::Cow;

use encoding_rs::SHIFT_JIS;
use serde::Serialize;

/// What a CSV cell must not start with (OWASP's "CSV injection"): the formula starters `=`,
/// `+`, `-`, `@` and their full-width forms `＝＋－＠` (Excel and LibreOffice read a full-width
/// `＝` typed in a Japanese IME as `=`), and tab, line breaks and spaces (ASCII and the
/// ideographic space U+3000), which spreadsheets may strip before they look for a formula.
pub const FORMULA_STARTERS: [char; 13] = [
    '=', '+', '-', '@', '\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}', '\t', '\r', '\n', ' ',
    '\u{3000}',
];

/// The cell as written: with an apostrophe in front when it starts with one of
/// [`FORMULA_STARTERS`], so that a spreadsheet shows it as text.
pub fn defuse(value: &str) -> Cow<'_, str> {
    if value.starts_with(FORMULA_STARTERS) {
        Cow::Owned(format!("'{value}"))
    } else {
        Cow::Borrowed(value)
    }
}

/// The encoding of a file the console writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Encoding {
    /// UTF-8 with a byte order mark.
    #[serde(rename = "utf-8")]
    Utf8,
    /// cp932 (Windows-31J, Shift_JIS with the NEC and IBM extensions).
    #[serde(rename = "cp932")]
    Cp932,
}

impl Encoding {
    /// From the form's value: `utf-8` or `cp932` (also `shift_jis`, `sjis`).
    pub fn from_code(code: &str) -> Option<Encoding> {
        match code.to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Some(Encoding::Utf8),
            "cp932" | "shift_jis" | "sjis" | "windows-31j" => Some(Encoding::Cp932),
            _ => None,
        }
    }

    pub const fn code(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Cp932 => "cp932",
        }
    }

    /// The `Content-Type` of a CSV file in this encoding.
    pub const fn content_type(self) -> &'static str {
        match self {
            Encoding::Utf8 => "text/csv; charset=utf-8",
            Encoding::Cp932 => "text/csv; charset=Shift_JIS",
        }
    }
}

/// The geta mark, the usual stand-in for a character a system cannot show.
pub const DEFAULT_SUBSTITUTE: &str = "〓";

/// What is written in place of a character cp932 cannot hold: 1 to 4 characters, each one cp932
/// holds, none a control character or a CSV delimiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substitute(String);

impl Substitute {
    /// `None`, or empty, gives [`DEFAULT_SUBSTITUTE`]. Refusal code `substitute_invalid`.
    pub fn parse(text: Option<&str>) -> Result<Substitute, &'static str> {
        let text = text.map(str::trim).filter(|t| !t.is_empty());
        let Some(text) = text else {
            return Ok(Substitute(DEFAULT_SUBSTITUTE.to_owned()));
        };
        let count = text.chars().count();
        let fits = (1..=4).contains(&count)
            && !text.starts_with(FORMULA_STARTERS)
            && text
                .chars()
                .all(|c| !c.is_control() && !matches!(c, ',' | '"' | '\''))
            && units(text).all(cp932_holds);
        if fits {
            Ok(Substitute(text.to_owned()))
        } else {
            Err("substitute_invalid")
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Substitute {
    fn default() -> Self {
        Substitute(DEFAULT_SUBSTITUTE.to_owned())
    }
}

/// A cell in which characters were replaced for cp932.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unrepresentable {
    /// The data row, 0 for the first row after the header.
    pub row: usize,
    /// The column's header.
    pub column: String,
    /// The character as it is stored (a variation sequence is one character here).
    pub character: String,
    /// Its code points, `U+20BB7` or `U+8FBB U+E0100`.
    pub code_points: String,
}

/// A written file and the cells whose characters were replaced.
#[derive(Debug)]
pub struct Written {
    pub bytes: Vec<u8>,
    pub unrepresentable: Vec<Unrepresentable>,
}

/// Why a file could not be written (only ever a fault of ours: the rows are in memory).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),
    #[error("csv: {0}")]
    Flush(String),
    #[error("a character was left that cp932 cannot hold")]
    Unencodable,
}

fn is_variation_selector(c: char) -> bool {
    matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}')
}

/// The text in units of one character and the variation selectors that follow it.
pub fn units(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let mut chars = rest.char_indices();
        chars.next()?;
        let end = chars
            .find(|(_, c)| !is_variation_selector(*c))
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let (unit, tail) = rest.split_at(end);
        rest = tail;
        Some(unit)
    })
}

/// Whether cp932 holds `unit` exactly: it encodes, and decodes back to the same text.
pub fn cp932_holds(unit: &str) -> bool {
    if unit.is_ascii() {
        // ASCII is its own cp932, backslash and tilde included (cp932 is not JIS X 0201 here).
        return true;
    }
    let (bytes, _, unmappable) = SHIFT_JIS.encode(unit);
    if unmappable {
        return false;
    }
    let (back, malformed) = SHIFT_JIS.decode_without_bom_handling(&bytes);
    !malformed && back == unit
}

fn code_points(unit: &str) -> String {
    unit.chars()
        .map(|c| format!("U+{:04X}", c as u32))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `value` with every unit cp932 cannot hold replaced by `substitute`; each replaced unit is
/// pushed to `found` under `row` and `column`.
fn for_cp932(
    value: &str,
    row: usize,
    column: &str,
    substitute: &Substitute,
    found: &mut Vec<Unrepresentable>,
) -> String {
    let mut out = String::with_capacity(value.len());
    for unit in units(value) {
        if cp932_holds(unit) {
            out.push_str(unit);
        } else {
            found.push(Unrepresentable {
                row,
                column: column.to_owned(),
                character: unit.to_owned(),
                code_points: code_points(unit),
            });
            out.push_str(substitute.as_str());
        }
    }
    out
}

/// Writes `headers` and `rows` (each as long as `headers`) in `encoding`: cells defused, CRLF,
/// for UTF-8 a BOM first, for cp932 the unrepresentable characters replaced by `substitute`
/// and listed.
pub fn write(
    headers: &[&str],
    rows: &[Vec<String>],
    encoding: Encoding,
    substitute: &Substitute,
) -> Result<Written, WriteError> {
    let mut found = Vec::new();
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    writer.write_record(headers)?;
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, value)| {
                let value = defuse(value);
                match encoding {
                    Encoding::Utf8 => value.into_owned(),
                    Encoding::Cp932 => {
                        let column = headers.get(c).copied().unwrap_or_default();
                        for_cp932(&value, i, column, substitute, &mut found)
                    }
                }
            })
            .collect();
        writer.write_record(&cells)?;
    }
    let text = writer
        .into_inner()
        .map_err(|e| WriteError::Flush(e.to_string()))?;
    let bytes = match encoding {
        Encoding::Utf8 => {
            let mut bytes = "\u{feff}".as_bytes().to_vec();
            bytes.extend_from_slice(&text);
            bytes
        }
        Encoding::Cp932 => {
            let text = String::from_utf8(text).map_err(|_| WriteError::Unencodable)?;
            let (bytes, _, unmappable) = SHIFT_JIS.encode(&text);
            if unmappable {
                return Err(WriteError::Unencodable);
            }
            bytes.into_owned()
        }
    };
    Ok(Written {
        bytes,
        unrepresentable: found,
    })
}

/// Why an uploaded file cannot be read at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// Neither UTF-8 nor cp932.
    Encoding,
    /// Not CSV (an unterminated quote, …).
    Malformed,
}

impl ReadError {
    pub const fn code(self) -> &'static str {
        match self {
            ReadError::Encoding => "file_encoding_unknown",
            ReadError::Malformed => "file_malformed",
        }
    }
}

/// One record of an uploaded file with its line number (1-based, of the record's first line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub line: u64,
    pub fields: Vec<String>,
}

/// The text of an uploaded file: UTF-8 (a BOM dropped), else cp932.
pub fn decode(bytes: &[u8]) -> Result<String, ReadError> {
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(text.to_owned());
    }
    let (text, malformed) = SHIFT_JIS.decode_without_bom_handling(bytes);
    if malformed {
        return Err(ReadError::Encoding);
    }
    Ok(text.into_owned())
}

/// Every record of an uploaded file, rows of any length (the caller checks them one by one).
/// Blank lines are skipped.
pub fn read(bytes: &[u8]) -> Result<Vec<Record>, ReadError> {
    let text = decode(bytes)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    // Line breaks counted so far, up to byte `counted_to`: each record adds only its own part,
    // so a file of many short rows costs one pass, not one pass per row.
    let (mut counted_to, mut breaks) = (0usize, 0u64);
    for record in reader.records() {
        let record = record.map_err(|_| ReadError::Malformed)?;
        // The line the record starts on, counted in the text (1-based). The reader's position
        // may sit on the line break before the record (after the CR of a CRLF): skip breaks.
        let start = record
            .position()
            .and_then(|p| usize::try_from(p.byte()).ok())
            .unwrap_or_default();
        let start = text.get(start..).map_or(start, |rest| {
            start + rest.len() - rest.trim_start_matches(['\r', '\n']).len()
        });
        if start > counted_to {
            breaks += text
                .get(counted_to..start)
                .map_or(0, |part| part.matches('\n').count()) as u64;
            counted_to = start;
        }
        let line = 1 + breaks;
        out.push(Record {
            line,
            fields: record.iter().map(str::to_owned).collect(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf8(headers: &[&str], rows: &[Vec<String>]) -> String {
        let written = write(headers, rows, Encoding::Utf8, &Substitute::default()).expect("csv");
        String::from_utf8(written.bytes).expect("utf-8")
    }

    #[test]
    fn cells_are_quoted_and_defused() {
        let row = |v: &str| vec![v.to_owned()];
        let cell = |v: &str| {
            let text = utf8(&["h"], &[row(v)]);
            text.trim_start_matches('\u{feff}')
                .strip_prefix("h\r\n")
                .and_then(|t| t.strip_suffix("\r\n"))
                .expect("one row")
                .to_owned()
        };
        assert_eq!(cell("山田 太郎"), "山田 太郎");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=1+1"), "'=1+1");
        assert_eq!(cell("-5,3"), "\"'-5,3\"");
        assert_eq!(cell("＝HYPERLINK(\"x\")"), "\"'＝HYPERLINK(\"\"x\"\")\"");
        for starter in ["＋1", "－1", "＠SUM(A1)", " =1", "\u{3000}=1", "\t=1"] {
            assert_eq!(cell(starter), format!("'{starter}"), "{starter:?}");
        }
        assert_eq!(cell("\n=1"), "\"'\n=1\"");
        assert_eq!(cell("A＝B"), "A＝B");
    }

    #[test]
    fn utf8_has_a_bom_and_crlf() {
        let text = utf8(&["a", "b"], &[vec!["1".into(), "2".into()]]);
        assert_eq!(text, "\u{feff}a,b\r\n1,2\r\n");
    }

    #[test]
    fn cp932_keeps_what_it_can_and_lists_the_rest() {
        let rows = vec![
            vec!["髙﨑 はな".to_owned(), "1".to_owned()],
            vec!["𠮷田 𩸽太郎".to_owned(), "2".to_owned()],
            vec!["辻\u{E0100} 葛\u{E0100}子".to_owned(), "=3".to_owned()],
        ];
        let written = write(
            &["氏名", "番号"],
            &rows,
            Encoding::Cp932,
            &Substitute::default(),
        )
        .expect("csv");
        let (text, _, malformed) = SHIFT_JIS.decode(&written.bytes);
        assert!(!malformed);
        assert_eq!(
            text,
            "氏名,番号\r\n髙﨑 はな,1\r\n〓田 〓太郎,2\r\n〓 〓子,'=3\r\n"
        );
        let listed: Vec<(usize, &str, &str, &str)> = written
            .unrepresentable
            .iter()
            .map(|u| {
                (
                    u.row,
                    u.column.as_str(),
                    u.character.as_str(),
                    u.code_points.as_str(),
                )
            })
            .collect();
        assert_eq!(
            listed,
            vec![
                (1, "氏名", "𠮷", "U+20BB7"),
                (1, "氏名", "𩸽", "U+29E3D"),
                (2, "氏名", "辻\u{E0100}", "U+8FBB U+E0100"),
                (2, "氏名", "葛\u{E0100}", "U+845B U+E0100"),
            ]
        );
    }

    #[test]
    fn a_character_that_would_come_back_changed_is_not_held() {
        assert!(cp932_holds("\\"));
        assert!(cp932_holds("髙"));
        assert!(cp932_holds("〓"));
        // ¥ (U+00A5) encodes to 0x5C, which reads back as a backslash.
        assert!(!cp932_holds("¥"));
        assert!(!cp932_holds("𠮷"));
        assert!(!cp932_holds("辻\u{E0100}"));
    }

    #[test]
    fn substitutes_are_checked() {
        assert_eq!(Substitute::parse(None).expect("default").as_str(), "〓");
        assert_eq!(
            Substitute::parse(Some(" ")).expect("default").as_str(),
            "〓"
        );
        assert_eq!(Substitute::parse(Some("■")).expect("ok").as_str(), "■");
        assert_eq!(Substitute::parse(Some("?")).expect("ok").as_str(), "?");
        for bad in ["𠮷", "=", "a,b", "12345", "\u{7}"] {
            assert_eq!(
                Substitute::parse(Some(bad)),
                Err("substitute_invalid"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn uploads_are_read_in_either_encoding() {
        let utf8 = "\u{feff}受付番号,照会番号\r\n12345678,\"P,1\"\r\n\r\nx\r\n";
        let records = read(utf8.as_bytes()).expect("read");
        assert_eq!(records.len(), 3);
        assert_eq!(records[1].fields, vec!["12345678", "P,1"]);
        assert_eq!(records[1].line, 2);
        assert_eq!(records[2].fields, vec!["x"]);
        assert_eq!(records[2].line, 4);
        let (sjis, _, _) = SHIFT_JIS.encode("受付番号,照会番号\r\n12345678,カルテ1\r\n");
        let records = read(&sjis).expect("read");
        assert_eq!(records[1].fields, vec!["12345678", "カルテ1"]);
        assert_eq!(read(&[0xff, 0xff, 0xff]), Err(ReadError::Encoding));
    }
}
