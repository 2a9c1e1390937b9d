//! Opening the return address in the patient's default browser.

/// Opens `url` (always `return_uri` of a checked request, http or https) in the default
/// browser: `webbrowser` asks the platform (Windows `ShellExecute`, macOS Launch Services,
/// Linux `$BROWSER`, then `xdg-open` and the desktop's own tools).
pub fn open(url: &str) -> Result<(), String> {
    webbrowser::open(url).map_err(|e| e.to_string())
}
