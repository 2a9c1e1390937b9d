//! `uketsuke-card-helper --install` for the current user on Linux: the desktop entry is written
//! where the freedesktop specifications look (`$XDG_DATA_HOME/applications`) and xdg-utils then
//! names it as the handler of `uketsuke-eid:` links; `--uninstall` removes it. Runs in a
//! temporary home.

#![cfg(all(unix, not(target_os = "macos")))]

use std::path::Path;
use std::process::Command;

fn helper(home: &Path, arg: &str) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_uketsuke-card-helper"))
        .arg(arg)
        .env("HOME", home)
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .expect("helper");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn install_registers_the_scheme_for_this_user_and_uninstall_removes_it() {
    let home = std::env::temp_dir().join(format!("uketsuke-helper-install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).expect("home");
    let (ok, said) = helper(&home, "--install");
    assert!(ok, "{said}");
    let entry_path = home.join(".local/share/applications/uketsuke-card-helper.desktop");
    let entry = std::fs::read_to_string(&entry_path).expect("desktop entry");
    let exe = env!("CARGO_BIN_EXE_uketsuke-card-helper");
    assert!(entry.contains(&format!("\nExec={exe} %u\n")), "{entry}");
    assert!(entry.contains("\nMimeType=x-scheme-handler/uketsuke-eid;\n"));
    let query = Command::new("xdg-mime")
        .args(["query", "default", "x-scheme-handler/uketsuke-eid"])
        .env("HOME", &home)
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .expect("xdg-mime");
    assert_eq!(
        String::from_utf8_lossy(&query.stdout).trim(),
        "uketsuke-card-helper.desktop"
    );
    let (ok, _) = helper(&home, "--uninstall");
    assert!(ok);
    assert!(!entry_path.exists());
    let _ = std::fs::remove_dir_all(&home);
}
