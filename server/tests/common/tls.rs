//! Throw-away TLS material made with the `openssl` command (Debian's, installed with the test
//! tools): a CA, and server certificates it signs for `localhost` and 127.0.0.1. P-256 keys,
//! valid for a day.

#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// A CA: its certificate (PEM) and key, in `dir`.
pub struct Ca {
    pub cert: PathBuf,
    key: PathBuf,
    dir: PathBuf,
}

fn openssl(args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl command runs (scripts/setup.sh test installs it)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temporary path")
}

impl Ca {
    /// A new CA named `name`, its files in `dir` (`name`.crt and `name`.key).
    pub fn new(dir: &Path, name: &str) -> Ca {
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            &format!("/CN={name} test CA"),
            "-keyout",
            path_str(&key),
            "-out",
            path_str(&cert),
        ]);
        Ca {
            cert,
            key,
            dir: dir.to_owned(),
        }
    }

    /// A server certificate for `localhost` and 127.0.0.1 signed by this CA: (cert, key) PEM.
    pub fn server(&self, name: &str) -> (PathBuf, PathBuf) {
        let cert = self.dir.join(format!("{name}.crt"));
        let key = self.dir.join(format!("{name}.key"));
        let csr = self.dir.join(format!("{name}.csr"));
        let ext = self.dir.join(format!("{name}.ext"));
        std::fs::write(
            &ext,
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             extendedKeyUsage=serverAuth\n",
        )
        .expect("write extensions");
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            path_str(&key),
            "-out",
            path_str(&csr),
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            path_str(&csr),
            "-CA",
            path_str(&self.cert),
            "-CAkey",
            path_str(&self.key),
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            path_str(&ext),
            "-out",
            path_str(&cert),
        ]);
        (cert, key)
    }
}
