//! `uketsuke-card-helper`: see the crate's documentation (`lib.rs`) and the README's section
//! "The desktop card helper".
//!
//! ```text
//! uketsuke-card-helper 'uketsuke-eid://sign#…'   answer a link (the browser runs this)
//! uketsuke-card-helper --install                  register the link scheme for this user
//! uketsuke-card-helper --uninstall                remove that registration
//! options: --lang ja|en (the window's language; default: the system's)
//! ```

use std::process::ExitCode;

use uketsuke_card_helper::i18n::Lang;

const USAGE: &str = "usage: uketsuke-card-helper [--lang ja|en] 'uketsuke-eid://sign#…'\n       uketsuke-card-helper --install | --uninstall | --version";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut lang = None;
    let mut link = None;
    #[cfg(feature = "test-mode")]
    let mut pin_from_stdin = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--install" => return report(uketsuke_card_helper::install::install()),
            "--uninstall" => return report(uketsuke_card_helper::install::uninstall()),
            "--version" => {
                println!("uketsuke-card-helper {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            "--lang" => match args.next().as_deref().and_then(Lang::parse) {
                Some(l) => lang = Some(l),
                None => return usage(),
            },
            #[cfg(feature = "test-mode")]
            "--pin-from-stdin" => pin_from_stdin = true,
            _ if arg.starts_with("uketsuke-eid:") && link.is_none() => link = Some(arg),
            _ => return usage(),
        }
    }
    let Some(link) = link else {
        return usage();
    };
    #[cfg(feature = "test-mode")]
    if pin_from_stdin {
        let code = uketsuke_card_helper::stdin_mode::run(&link, std::io::stdin().lock());
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let lang = lang.unwrap_or_else(|| Lang::from_locale(sys_locale::get_locale().as_deref()));
    window(&link, lang)
}

#[cfg(feature = "gui")]
fn window(link: &str, lang: Lang) -> ExitCode {
    match uketsuke_card_helper::gui::run(link, lang) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("uketsuke-card-helper: the window could not be opened: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "gui"))]
fn window(_link: &str, _lang: Lang) -> ExitCode {
    eprintln!("uketsuke-card-helper: built without its window (feature `gui`)");
    ExitCode::FAILURE
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

fn report(result: Result<String, uketsuke_card_helper::install::InstallError>) -> ExitCode {
    match result {
        Ok(done) => {
            println!("{done}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("uketsuke-card-helper: {e}");
            ExitCode::FAILURE
        }
    }
}
