//! The window (feature `gui`): eframe/egui on OpenGL (glow), X11 on Linux (XWayland on Wayland
//! desktops), with AccessKit so screen readers (Narrator, NVDA, VoiceOver, Orca) read every
//! label, field and button, and every control reachable with Tab, Enter, Space and Escape.
//!
//! Stages: the request (origin, institution and choices read from the signed text) with "read
//! the card" and "cancel"; reading; the PIN in its own window, tries left shown first; a
//! failure with "try again" (for what the patient can fix) and "back to the browser" (which
//! answers `#error=<code>`); a refused link, which is never answered. Closing the window of a
//! checked request answers `#error=cancelled`, so the browser never waits for nothing.
//!
//! Japanese needs a CJK font, which egui does not ship: one is loaded at start from the
//! system ([`CJK_FONTS`], or the file named by `UKETSUKE_HELPER_FONT`), none is bundled.

use std::ffi::CString;
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eframe::egui::{
    self, FontData, FontDefinitions, FontFamily, Key, RichText, ViewportBuilder, ViewportId,
};
use uketsuke_card::{Authentication, Pin, PinStatus};

use crate::i18n::{self, Lang};
use crate::protocol::{Checked, ErrorCode, check_link};
use crate::reader::{CardFailure, Readers};

/// System fonts with Japanese glyphs, first found wins: Debian/Ubuntu (fonts-noto-cjk,
/// fonts-ipafont-gothic), Fedora, Arch, Windows (Yu Gothic, Meiryo, MS Gothic), macOS
/// (Hiragino Sans).
pub const CJK_FONTS: &[&str] = &[
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf",
    "/usr/share/fonts/truetype/fonts-japanese-gothic.ttf",
    "C:\\Windows\\Fonts\\YuGothM.ttc",
    "C:\\Windows\\Fonts\\meiryo.ttc",
    "C:\\Windows\\Fonts\\msgothic.ttc",
    "/System/Library/Fonts/ヒラギノ角ゴシック W3.ttc",
    "/System/Library/Fonts/Hiragino Sans GB.ttc",
];

/// How long the window waits for a card to be placed before it says there is none.
const CARD_WAIT: Duration = Duration::from_secs(20);

/// Opens the window for `link` and runs it until the patient is done.
pub fn run(link: &str, lang: Lang) -> Result<(), String> {
    let app = HelperApp::new(check_link(link), lang);
    let options = eframe::NativeOptions {
        viewport: ViewportBuilder::default()
            .with_title(i18n::texts(lang).title)
            .with_app_id("uketsuke-card-helper")
            .with_inner_size([560.0, 600.0])
            .with_min_inner_size([400.0, 420.0]),
        ..Default::default()
    };
    eframe::run_native(
        "uketsuke-card-helper",
        options,
        Box::new(move |cc| {
            install_cjk_font(&cc.egui_ctx);
            cc.egui_ctx.set_zoom_factor(1.15);
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| e.to_string())
}

/// Adds the first system CJK font found as a fallback of both families (Latin text keeps
/// egui's own font). Without one, Japanese shows as boxes: the window then starts in English.
fn install_cjk_font(ctx: &egui::Context) -> bool {
    let from_env = std::env::var_os("UKETSUKE_HELPER_FONT").map(std::path::PathBuf::from);
    let candidates = from_env
        .into_iter()
        .chain(CJK_FONTS.iter().map(std::path::PathBuf::from));
    for path in candidates {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let mut fonts = FontDefinitions::default();
        fonts.font_data.insert(
            "cjk".to_owned(),
            Arc::new(FontData {
                font: std::borrow::Cow::Owned(bytes),
                index: 0,
                tweak: Default::default(),
            }),
        );
        for family in [FontFamily::Proportional, FontFamily::Monospace] {
            fonts
                .families
                .entry(family)
                .or_default()
                .push("cjk".to_owned());
        }
        ctx.set_fonts(fonts);
        return true;
    }
    false
}

/// What the window shows.
enum Stage {
    /// The link was refused: shown, never answered.
    Refused(&'static str),
    /// The request, before the card is read.
    Review,
    /// Reading the card (tries left, or signing).
    Busy,
    /// The PIN window is open.
    Pin {
        tries: Option<u8>,
        wrong: Option<u8>,
        invalid: bool,
    },
    /// The card failed; the patient may try again or go back to the browser.
    Failed(CardFailure),
    /// The browser has the answer.
    Done,
}

/// What the card thread reports.
enum Reply {
    Status(Result<(CString, PinStatus), CardFailure>),
    Signed(Result<Authentication, CardFailure>),
}

struct HelperApp {
    lang: Lang,
    checked: Option<Checked>,
    stage: Stage,
    reader: Option<CString>,
    replies: Option<Receiver<Reply>>,
    /// The PIN as typed; wiped when sent or when the window closes.
    pin: String,
    /// What the PIN window shows and what it was told.
    pin_shared: Arc<Mutex<PinWindow>>,
    focus_pending: bool,
    answered: bool,
    #[cfg(feature = "test-mode")]
    shots: Option<screenshots::Shots>,
}

impl HelperApp {
    fn new(checked: Result<Checked, crate::protocol::Refusal>, lang: Lang) -> Self {
        let (checked, stage) = match checked {
            Ok(checked) => (Some(checked), Stage::Review),
            Err(refusal) => (None, Stage::Refused(refusal.code())),
        };
        HelperApp {
            lang,
            checked,
            stage,
            reader: None,
            replies: None,
            pin: String::new(),
            pin_shared: Arc::new(Mutex::new(PinWindow::new(lang))),
            focus_pending: true,
            answered: false,
            #[cfg(feature = "test-mode")]
            shots: screenshots::Shots::from_env(),
        }
    }

    fn t(&self) -> &'static i18n::Texts {
        i18n::texts(self.lang)
    }

    /// Opens the return address with `url` (once) and shows the last stage.
    fn answer(&mut self, url: String, ctx: &egui::Context) {
        if self.answered {
            return;
        }
        self.answered = true;
        wipe(&mut self.pin);
        if let Err(e) = crate::browser::open(&url) {
            eprintln!("uketsuke-card-helper: the browser could not be opened: {e}");
        }
        self.stage = Stage::Done;
        ctx.send_viewport_cmd(egui::ViewportCommand::Close);
    }

    fn answer_error(&mut self, code: ErrorCode, ctx: &egui::Context) {
        if let Some(url) = self.checked.as_ref().map(|c| c.error_url(code)) {
            self.answer(url, ctx);
        }
    }

    /// Finds the card and asks for the tries left, on the card thread.
    fn read_card(&mut self, ctx: &egui::Context) {
        let (send, receive) = channel();
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            let status = Readers::open().and_then(|readers| {
                let reader = readers.reader_with_card(CARD_WAIT)?;
                let status = readers.pin_status(&reader)?;
                Ok((reader, status))
            });
            let _ = send.send(Reply::Status(status));
            ctx.request_repaint();
        });
        self.replies = Some(receive);
        self.stage = Stage::Busy;
    }

    /// Signs with the PIN typed, on the card thread.
    fn sign(&mut self, ctx: &egui::Context) {
        let pin = Pin::new(self.pin.trim());
        wipe(&mut self.pin);
        let (Some(checked), Some(reader)) = (self.checked.as_ref(), self.reader.clone()) else {
            return;
        };
        let Ok(pin) = pin else {
            if let Stage::Pin { invalid, .. } = &mut self.stage {
                *invalid = true;
            }
            return;
        };
        let message = checked.message();
        let (send, receive) = channel();
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            let signed = Readers::open().and_then(|readers| readers.sign(&reader, &pin, &message));
            drop(pin);
            let _ = send.send(Reply::Signed(signed));
            ctx.request_repaint();
        });
        self.replies = Some(receive);
        self.stage = Stage::Busy;
    }

    fn take_reply(&mut self, ctx: &egui::Context) {
        let Some(reply) = self.replies.as_ref().and_then(|r| r.try_recv().ok()) else {
            return;
        };
        self.replies = None;
        self.focus_pending = true;
        match reply {
            Reply::Status(Ok((_, PinStatus::Blocked))) => {
                self.stage = Stage::Failed(CardFailure::PinBlocked);
            }
            Reply::Status(Ok((reader, status))) => {
                self.reader = Some(reader);
                let tries = match status {
                    PinStatus::TriesLeft(n) => Some(n),
                    _ => None,
                };
                self.stage = Stage::Pin {
                    tries,
                    wrong: None,
                    invalid: false,
                };
            }
            Reply::Signed(Ok(auth)) => {
                if let Some(url) = self.checked.as_ref().map(|c| c.result_url(&auth)) {
                    self.answer(url, ctx);
                }
            }
            Reply::Signed(Err(CardFailure::WrongPin { tries_left })) => {
                self.stage = Stage::Pin {
                    tries: Some(tries_left),
                    wrong: Some(tries_left),
                    invalid: false,
                };
            }
            Reply::Status(Err(failure)) | Reply::Signed(Err(failure)) => {
                self.stage = Stage::Failed(failure);
            }
        }
    }

    fn main_ui(&mut self, ui: &mut egui::Ui, ctx: &egui::Context) {
        let t = self.t();
        ui.horizontal(|ui| {
            ui.heading(t.title);
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if ui.button(t.switch_language).clicked() {
                    self.lang = self.lang.other();
                    ctx.send_viewport_cmd(egui::ViewportCommand::Title(self.t().title.to_owned()));
                }
            });
        });
        ui.separator();
        if let Stage::Refused(code) = self.stage {
            ui.label(RichText::new(t.refused_title).strong().size(18.0));
            ui.label(i18n::refusal(self.lang, code));
            ui.add_space(12.0);
            let close = ui.button(t.refused_close);
            self.first_focus(&close);
            if close.clicked() {
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
            return;
        }
        let Some(checked) = self.checked.as_ref() else {
            return;
        };
        ui.label(t.lead);
        ui.add_space(8.0);
        let rows = i18n::rows(self.lang, &checked.text);
        // The origin first and large, on its own line: the patient compares it with the
        // browser's address bar. Then the rest of the signed text.
        if let Some((label, origin)) = rows.first() {
            let label = ui.label(RichText::new(*label).strong());
            ui.add(egui::Label::new(RichText::new(origin).size(22.0).monospace().strong()).wrap())
                .labelled_by(label.id);
            ui.add_space(6.0);
        }
        egui::Grid::new("signed")
            .num_columns(2)
            .spacing([16.0, 6.0])
            .striped(true)
            .show(ui, |ui| {
                for (label, value) in rows.iter().skip(1) {
                    let label = ui.label(RichText::new(*label).strong());
                    ui.add(egui::Label::new(value.as_str()).wrap())
                        .labelled_by(label.id);
                    ui.end_row();
                }
            });
        ui.add_space(6.0);
        ui.label(RichText::new(t.check_site).italics());
        ui.add_space(12.0);
        match &self.stage {
            Stage::Review => {
                ui.horizontal(|ui| {
                    let read = ui.button(RichText::new(t.read_card).size(18.0));
                    self.first_focus(&read);
                    if read.clicked() {
                        self.read_card(ctx);
                    }
                    if ui.button(t.cancel).clicked() {
                        self.answer_error(ErrorCode::Cancelled, ctx);
                    }
                });
            }
            Stage::Busy | Stage::Pin { .. } => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(t.reading);
                });
            }
            Stage::Failed(failure) => {
                let failure = failure.clone();
                let message = ui.label(
                    RichText::new(i18n::failure(self.lang, &failure))
                        .color(ui.visuals().error_fg_color),
                );
                message.widget_info(|| {
                    egui::WidgetInfo::labeled(
                        egui::WidgetType::Label,
                        true,
                        i18n::failure(self.lang, &failure),
                    )
                });
                ui.add_space(8.0);
                ui.horizontal(|ui| {
                    let retry_possible = !matches!(failure, CardFailure::PinBlocked);
                    if retry_possible {
                        let retry = ui.button(t.try_again);
                        self.first_focus(&retry);
                        if retry.clicked() {
                            self.read_card(ctx);
                        }
                    }
                    let back = ui.button(t.back_to_browser);
                    if !retry_possible {
                        self.first_focus(&back);
                    }
                    if back.clicked() {
                        self.answer_error(failure.error_code(), ctx);
                    }
                });
            }
            Stage::Done => {
                ui.label(t.done);
            }
            Stage::Refused(_) => {}
        }
        if ctx.input(|i| i.key_pressed(Key::Escape))
            && matches!(self.stage, Stage::Review | Stage::Failed(_))
        {
            self.answer_error(ErrorCode::Cancelled, ctx);
        }
    }

    /// The PIN window: tries left first, then the field; Enter confirms, Escape or closing it
    /// cancels. A deferred viewport (its own native window, drawn on its own), sharing
    /// [`PinWindow`] with this app.
    fn pin_window(&mut self, ctx: &egui::Context) {
        let Stage::Pin {
            tries,
            wrong,
            invalid,
        } = self.stage
        else {
            return;
        };
        let (submit, cancel) = {
            let Ok(mut shared) = self.pin_shared.lock() else {
                return;
            };
            shared.tries = tries;
            shared.wrong = wrong;
            shared.invalid = invalid;
            shared.lang = self.lang;
            if std::mem::take(&mut self.focus_pending) {
                shared.focus = true;
            }
            (
                std::mem::take(&mut shared.submit),
                std::mem::take(&mut shared.cancel),
            )
        };
        let shared = Arc::clone(&self.pin_shared);
        ctx.show_viewport_deferred(
            ViewportId::from_hash_of("pin"),
            ViewportBuilder::default()
                .with_title(self.t().pin_title)
                .with_app_id("uketsuke-card-helper")
                .with_inner_size([440.0, 280.0])
                .with_resizable(false),
            move |ctx, _class| {
                if let Ok(mut shared) = shared.lock() {
                    shared.ui(ctx);
                }
            },
        );
        if cancel {
            self.answer_error(ErrorCode::Cancelled, ctx);
        } else if submit {
            let typed = self
                .pin_shared
                .lock()
                .map(|mut shared| std::mem::take(&mut shared.pin))
                .unwrap_or_default();
            self.pin = typed;
            self.sign(ctx);
        }
    }

    /// Gives the stage's main control the keyboard focus when it is shown, and whenever no
    /// control has it (a dialog always has one, so Enter acts at once).
    fn first_focus(&mut self, response: &egui::Response) {
        let pending = std::mem::take(&mut self.focus_pending);
        if pending || response.ctx.memory(|m| m.focused().is_none()) {
            response.request_focus();
        }
    }
}

/// The PIN window's state, shared with its viewport.
struct PinWindow {
    lang: Lang,
    tries: Option<u8>,
    wrong: Option<u8>,
    invalid: bool,
    /// The digits as typed; taken by the app on submit, wiped on drop.
    pin: String,
    focus: bool,
    submit: bool,
    cancel: bool,
    #[cfg(feature = "test-mode")]
    shots: Option<screenshots::Shots>,
}

impl PinWindow {
    fn new(lang: Lang) -> Self {
        PinWindow {
            lang,
            tries: None,
            wrong: None,
            invalid: false,
            pin: String::new(),
            focus: true,
            submit: false,
            cancel: false,
            #[cfg(feature = "test-mode")]
            shots: screenshots::Shots::from_env(),
        }
    }

    fn ui(&mut self, ctx: &egui::Context) {
        let t = i18n::texts(self.lang);
        let lang = self.lang;
        egui::CentralPanel::default().show(ctx, |ui| {
            ui.heading(t.pin_title);
            if let Some(n) = self.tries {
                ui.label(RichText::new(i18n::tries_left(lang, n)).strong());
            }
            if let Some(n) = self.wrong {
                ui.colored_label(
                    ui.visuals().error_fg_color,
                    i18n::failure(lang, &CardFailure::WrongPin { tries_left: n }),
                );
            }
            if self.invalid {
                ui.colored_label(ui.visuals().error_fg_color, t.pin_four_digits);
            }
            let label = ui.label(t.pin_label);
            let field = ui
                .add(
                    egui::TextEdit::singleline(&mut self.pin)
                        .password(true)
                        .char_limit(4)
                        .desired_width(120.0)
                        .font(egui::TextStyle::Heading),
                )
                .labelled_by(label.id);
            if std::mem::take(&mut self.focus) || ctx.memory(|m| m.focused().is_none()) {
                field.request_focus();
            }
            if (field.has_focus() || field.lost_focus()) && ui.input(|i| i.key_pressed(Key::Enter))
            {
                self.submit = true;
            }
            ui.add_space(8.0);
            ui.horizontal(|ui| {
                if ui.button(t.sign).clicked() {
                    self.submit = true;
                }
                if ui.button(t.cancel).clicked() {
                    self.cancel = true;
                }
            });
            if ui.input(|i| i.key_pressed(Key::Escape)) {
                self.cancel = true;
            }
        });
        if ctx.input(|i| i.viewport().close_requested()) {
            self.cancel = true;
        }
        #[cfg(feature = "test-mode")]
        if let Some(shots) = self.shots.as_mut() {
            shots.take(ctx, "pin", lang);
        }
    }
}

impl Drop for PinWindow {
    fn drop(&mut self) {
        wipe(&mut self.pin);
    }
}

impl eframe::App for HelperApp {
    fn update(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.take_reply(ctx);
        egui::CentralPanel::default().show(ctx, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| self.main_ui(ui, ctx));
        });
        self.pin_window(ctx);
        if ctx.input(|i| i.viewport().close_requested()) && !self.answered {
            // Closing the window of a checked request is a cancel: the browser is told.
            self.answer_error(ErrorCode::Cancelled, ctx);
        }
        // The PIN window is drawn by this update (an immediate viewport): keep it drawing while
        // it is open, so its keys and its caret are shown without waiting for the main window.
        if self.replies.is_some() || matches!(self.stage, Stage::Pin { .. }) {
            ctx.request_repaint_after(Duration::from_millis(50));
        }
        #[cfg(feature = "test-mode")]
        if let Some(shots) = self.shots.as_mut() {
            let name = match self.stage {
                Stage::Refused(_) => "refused",
                Stage::Review => "review",
                Stage::Failed(_) => "failed",
                _ => "",
            };
            if !name.is_empty() {
                shots.take(ctx, name, self.lang);
            }
        }
    }
}

impl Drop for HelperApp {
    fn drop(&mut self) {
        wipe(&mut self.pin);
    }
}

/// Overwrites and empties a string that held PIN digits.
fn wipe(text: &mut String) {
    // SAFETY: zero bytes are valid UTF-8.
    unsafe { text.as_bytes_mut() }.fill(0);
    text.clear();
}

/// Test mode: screenshots of each stage the window reaches, written by egui itself (the frame
/// as rendered) to `$UKETSUKE_HELPER_SCREENSHOTS/<stage>-<lang>.png`.
#[cfg(feature = "test-mode")]
mod screenshots {
    use std::collections::HashSet;
    use std::path::PathBuf;

    use eframe::egui;

    use crate::i18n::Lang;

    /// Frames a stage is shown before its screenshot (fonts and layout settle).
    const SETTLE_FRAMES: u32 = 5;

    pub struct Shots {
        dir: PathBuf,
        asked: HashSet<String>,
        frames: u32,
        last: String,
    }

    impl Shots {
        pub fn from_env() -> Option<Self> {
            std::env::var_os("UKETSUKE_HELPER_SCREENSHOTS").map(|dir| Shots {
                dir: PathBuf::from(dir),
                asked: HashSet::new(),
                frames: 0,
                last: String::new(),
            })
        }

        /// Asks for a screenshot of the current viewport once `stage` has settled, and saves
        /// the ones that arrived.
        pub fn take(&mut self, ctx: &egui::Context, stage: &str, lang: Lang) {
            let name = format!(
                "{stage}-{}",
                match lang {
                    Lang::Ja => "ja",
                    Lang::En => "en",
                }
            );
            for event in ctx.input(|i| i.raw.events.clone()) {
                if let egui::Event::Screenshot {
                    image, user_data, ..
                } = event
                {
                    let file = user_data
                        .data
                        .as_ref()
                        .and_then(|d| d.downcast_ref::<String>())
                        .cloned()
                        .unwrap_or_else(|| "screen".to_owned());
                    let [w, h] = image.size;
                    let pixels: Vec<u8> = image.pixels.iter().flat_map(|c| c.to_array()).collect();
                    let path = self.dir.join(format!("{file}.png"));
                    if let Err(e) = image::save_buffer(
                        &path,
                        &pixels,
                        w as u32,
                        h as u32,
                        image::ColorType::Rgba8,
                    ) {
                        eprintln!("screenshot {}: {e}", path.display());
                    } else {
                        println!("screenshot={}", path.display());
                    }
                }
            }
            if self.last != name {
                self.last = name.clone();
                self.frames = 0;
            }
            self.frames += 1;
            if self.frames >= SETTLE_FRAMES && self.asked.insert(name.clone()) {
                ctx.send_viewport_cmd(egui::ViewportCommand::Screenshot(egui::UserData::new(name)));
            }
            ctx.request_repaint_after(std::time::Duration::from_millis(50));
        }
    }
}
