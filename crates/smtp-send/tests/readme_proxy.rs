//! The README's `--proxy` example, run as written against the real servers and proxies
//! (`cargo xtask servers up`), with `--subject` and `--transcript` added to find the message
//! and see the proxy's handshake.

mod support;

use std::process::Command;

use support::{delivered_with, marker, path_with_the_binary, readme_command, readme_exports};

#[test]
#[ignore = "needs real servers: cargo xtask servers up"]
fn the_readme_proxy_example_delivers_through_dante() {
    let (exports, command) = (readme_exports(), readme_command("--proxy socks5://"));
    assert!(command.contains("--proxy-password-env"), "{command}");
    let marker = marker("readme-proxy");
    let script = format!(
        "set -e\n{}\n{command} --subject {marker} --transcript\n",
        exports.join("\n")
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env("PATH", path_with_the_binary())
        .output()
        .expect("sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script}\n{stderr}");
    assert!(
        stderr.starts_with(
            ">>> SOCKS5 methods: no authentication, username/password\n\
             <<< SOCKS5 method: username/password\n\
             >>> SOCKS5 username/password: smtpauthproxy ****\n\
             <<< SOCKS5 username/password: accepted\n\
             >>> SOCKS5 CONNECT localhost:12587\n"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("Proxy-Secret-7") && !stderr.contains("Alice-Secret-1"));
    delivered_with(&marker);
}
