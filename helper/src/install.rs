//! Registering the `uketsuke-eid` URL scheme for the current user, so the browser hands
//! `uketsuke-eid://sign#…` links to this program.
//!
//! - Linux (freedesktop): a desktop entry `uketsuke-card-helper.desktop` in
//!   `$XDG_DATA_HOME/applications` (default `~/.local/share/applications`) with
//!   `MimeType=x-scheme-handler/uketsuke-eid;`, made the default handler with `xdg-mime default`
//!   (Desktop Entry Specification 1.5, "Exec key"; xdg-utils' `xdg-mime`).
//! - Windows: per-user keys under `HKEY_CURRENT_USER\Software\Classes\uketsuke-eid` (a URL
//!   protocol: `URL Protocol` value, `shell\open\command`), no administrator needed
//!   (Microsoft's "Registering an Application to a URL Protocol").
//! - macOS: the app bundle's `Info.plist` declares the scheme (`CFBundleURLTypes`,
//!   `helper/install/macos/Info.plist`); Launch Services registers it when the bundle is
//!   copied to Applications and first opened, so there is nothing to run.

use std::path::{Path, PathBuf};

use crate::protocol::SCHEME;

/// The desktop entry's file name (also its id for `xdg-mime`).
pub const DESKTOP_FILE: &str = "uketsuke-card-helper.desktop";
/// The MIME type freedesktop desktops use for a URL scheme.
pub const SCHEME_MIME: &str = "x-scheme-handler/uketsuke-eid";

/// What failed while registering.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("cannot find this program's path: {0}")]
    Exe(std::io::Error),
    #[error("no home folder (HOME or XDG_DATA_HOME) to install into")]
    NoHome,
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} failed: {1}")]
    Command(&'static str, String),
    #[error("not supported on this platform: {0}")]
    Unsupported(&'static str),
}

/// One argument of a desktop entry's `Exec` key, quoted as the Desktop Entry Specification
/// asks: inside double quotes with `"`, `` ` ``, `$` and `\` escaped by a backslash, then every
/// backslash doubled again for the string value, and `%` written `%%`.
pub fn exec_argument(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-' | b'+'));
    if plain {
        return arg.to_owned();
    }
    let mut quoted = String::from("\"");
    for c in arg.chars() {
        match c {
            '"' | '`' | '$' | '\\' => {
                quoted.push('\\');
                quoted.push(c);
            }
            '%' => quoted.push_str("%%"),
            _ => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted.replace('\\', "\\\\")
}

/// The desktop entry that hands `uketsuke-eid:` links to `exe`. Hidden from menus: it is
/// opened by the browser only.
pub fn desktop_entry(exe: &Path) -> String {
    format!(
        "[Desktop Entry]\n\
         Type=Application\n\
         Name=Uketsuke Card Helper\n\
         Name[ja]=Uketsuke カード読み取り\n\
         Comment=Confirms your identity with your My Number card for Uketsuke\n\
         Comment[ja]=マイナンバーカードで Uketsuke の本人確認をします\n\
         Exec={} %u\n\
         Terminal=false\n\
         NoDisplay=true\n\
         MimeType={SCHEME_MIME};\n\
         Categories=Utility;\n",
        exec_argument(&exe.to_string_lossy())
    )
}

/// The folder desktop entries of the current user go to: `$XDG_DATA_HOME/applications`, or
/// `$HOME/.local/share/applications`.
pub fn applications_dir() -> Result<PathBuf, InstallError> {
    let data = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").ok_or(InstallError::NoHome)?)
            .join(".local/share"),
    };
    Ok(data.join("applications"))
}

/// One registry value under `HKEY_CURRENT_USER`: key path, value name (`""` for the key's
/// default value), string data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryValue {
    pub key: String,
    pub name: &'static str,
    pub data: String,
}

/// The registry values that make `exe` the current user's handler of `uketsuke-eid:` links.
pub fn windows_registry_values(exe: &str) -> Vec<RegistryValue> {
    let root = format!(r"Software\Classes\{SCHEME}");
    vec![
        RegistryValue {
            key: root.clone(),
            name: "",
            data: "URL:Uketsuke card helper".to_owned(),
        },
        RegistryValue {
            key: root.clone(),
            name: "URL Protocol",
            data: String::new(),
        },
        RegistryValue {
            key: format!(r"{root}\DefaultIcon"),
            name: "",
            data: format!("\"{exe}\",0"),
        },
        RegistryValue {
            key: format!(r"{root}\shell\open\command"),
            name: "",
            data: format!("\"{exe}\" \"%1\""),
        },
    ]
}

fn current_exe() -> Result<PathBuf, InstallError> {
    std::env::current_exe().map_err(InstallError::Exe)
}

/// Registers the scheme for the current user; returns what was done, for the terminal.
pub fn install() -> Result<String, InstallError> {
    let exe = current_exe()?;
    install_for(&exe)
}

/// Removes the registration made by [`install`].
pub fn uninstall() -> Result<String, InstallError> {
    uninstall_platform()
}

#[cfg(all(unix, not(target_os = "macos")))]
fn install_for(exe: &Path) -> Result<String, InstallError> {
    let dir = applications_dir()?;
    std::fs::create_dir_all(&dir).map_err(|source| InstallError::Write {
        path: dir.clone(),
        source,
    })?;
    let path = dir.join(DESKTOP_FILE);
    std::fs::write(&path, desktop_entry(exe)).map_err(|source| InstallError::Write {
        path: path.clone(),
        source,
    })?;
    let status = std::process::Command::new("xdg-mime")
        .args(["default", DESKTOP_FILE, SCHEME_MIME])
        .status()
        .map_err(|e| InstallError::Command("xdg-mime", e.to_string()))?;
    if !status.success() {
        return Err(InstallError::Command("xdg-mime", status.to_string()));
    }
    // Desktops that read the cache instead of the entries; not every system has the tool.
    let _ = std::process::Command::new("update-desktop-database")
        .arg(&dir)
        .status();
    Ok(format!(
        "registered {SCHEME}: links for {} in {}",
        exe.display(),
        path.display()
    ))
}

#[cfg(all(unix, not(target_os = "macos")))]
fn uninstall_platform() -> Result<String, InstallError> {
    let path = applications_dir()?.join(DESKTOP_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(format!("removed {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(format!("nothing to remove at {}", path.display()))
        }
        Err(source) => Err(InstallError::Write { path, source }),
    }
}

#[cfg(windows)]
fn install_for(exe: &Path) -> Result<String, InstallError> {
    use winreg::RegKey;
    use winreg::enums::HKEY_CURRENT_USER;
    let hkcu = RegKey::predef(HKEY_CURRENT_USER);
    let exe = exe.to_string_lossy();
    for value in windows_registry_values(&exe) {
        let (key, _) = hkcu
            .create_subkey(&value.key)
            .map_err(|e| InstallError::Command("registry", e.to_string()))?;
        key.set_value(value.name, &value.data)
            .map_err(|e| InstallError::Command("registry", e.to_string()))?;
    }
    Ok(format!(
        r"registered {SCHEME}: links for {exe} in HKEY_CURRENT_USER\Software\Classes\{SCHEME}"
    ))
}

#[cfg(windows)]
fn uninstall_platform() -> Result<String, InstallError> {
    use winreg::RegKey;
    use winreg::enums::HKEY_CURRENT_USER;
    let hkcu = RegKey::predef(HKEY_CURRENT_USER);
    match hkcu.delete_subkey_all(format!(r"Software\Classes\{SCHEME}")) {
        Ok(()) => Ok(format!(
            r"removed HKEY_CURRENT_USER\Software\Classes\{SCHEME}"
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok("nothing to remove".to_owned()),
        Err(e) => Err(InstallError::Command("registry", e.to_string())),
    }
}

#[cfg(not(any(windows, all(unix, not(target_os = "macos")))))]
fn install_for(_exe: &Path) -> Result<String, InstallError> {
    Err(InstallError::Unsupported(
        "on macOS the app bundle's Info.plist registers the scheme (helper/install/macos/Info.plist)",
    ))
}

#[cfg(not(any(windows, all(unix, not(target_os = "macos")))))]
fn uninstall_platform() -> Result<String, InstallError> {
    Err(InstallError::Unsupported(
        "on macOS, move the app bundle to the Trash",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_arguments_are_quoted_as_the_specification_asks() {
        assert_eq!(exec_argument("/usr/bin/helper"), "/usr/bin/helper");
        assert_eq!(exec_argument("/home/a b/helper"), "\"/home/a b/helper\"");
        assert_eq!(
            exec_argument("/opt/$x/\"q\"/100%"),
            "\"/opt/\\\\$x/\\\\\"q\\\\\"/100%%\""
        );
    }

    #[test]
    fn the_desktop_entry_handles_the_scheme_with_the_link_as_its_argument() {
        let entry = desktop_entry(Path::new("/opt/uketsuke/uketsuke-card-helper"));
        assert!(entry.contains("\nExec=/opt/uketsuke/uketsuke-card-helper %u\n"));
        assert!(entry.contains("\nMimeType=x-scheme-handler/uketsuke-eid;\n"));
        assert!(entry.starts_with("[Desktop Entry]\nType=Application\n"));
    }

    #[test]
    fn the_windows_keys_are_per_user_and_pass_the_link_quoted() {
        let values = windows_registry_values(r"C:\Users\a b\uketsuke-card-helper.exe");
        assert!(
            values
                .iter()
                .all(|v| v.key.starts_with(r"Software\Classes\uketsuke-eid"))
        );
        assert!(values.contains(&RegistryValue {
            key: r"Software\Classes\uketsuke-eid".to_owned(),
            name: "URL Protocol",
            data: String::new(),
        }));
        assert!(values.contains(&RegistryValue {
            key: r"Software\Classes\uketsuke-eid\shell\open\command".to_owned(),
            name: "",
            data: r#""C:\Users\a b\uketsuke-card-helper.exe" "%1""#.to_owned(),
        }));
    }
}
