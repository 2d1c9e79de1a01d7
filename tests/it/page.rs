//! The worker's status page (`GET /`) from the real binary on a fixed clock: its HTML is a
//! reviewed snapshot, it holds nothing secret and no script or external asset, and headless
//! Chromium renders it with every kid in its DOM, wide and narrow (screenshots kept as CI
//! artifacts in target/screenshots/).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cli::T0;
use crate::snapshots::{mid_life_with, settings};
use crate::support::FIXTURE_KEYS;
use crate::worker::{bound_port, start_worker, wait};

/// Every kid `mid_life` stores.
const KIDS: [&str; 5] = [
    "testklient-TEST.2026-08-05",
    "testklient-TEST.2026-05-01",
    "testklient-TEST.2026-02-10",
    "testklient-PROD.2025-12-10",
    "testklient-PROD.2025-09-01",
];

/// Where CI picks the screenshots up as artifacts.
fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

/// `GET path`: (status, lower-cased header lines, body), or None while nothing listens.
fn fetch(port: u16, path: &str) -> Option<(u16, String, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, head.to_ascii_lowercase(), body.to_owned()))
}

/// The page once the worker's first evaluation is in (503 before).
fn page(port: u16) -> (String, String) {
    let start = Instant::now();
    loop {
        match fetch(port, "/") {
            Some((200, head, body)) => return (head, body),
            Some((503, _, body)) => assert!(body.contains("first evaluation"), "{body}"),
            _ => {}
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no page within 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The browser: `JWK_ROTATOR_CHROMIUM` (GitHub's runners have `google-chrome`), else Debian's
/// `chromium`.
fn browser() -> String {
    std::env::var("JWK_ROTATOR_CHROMIUM").unwrap_or_else(|_| "chromium".to_owned())
}

/// Headless Chromium with the flags that work on a closed network, as root, in a fresh profile.
fn chromium(profile: &Path, args: &[&str]) -> std::process::Output {
    Command::new(browser())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("run chromium")
}

fn have_chromium() -> bool {
    Command::new(browser()).arg("--version").output().is_ok_and(|o| o.status.success())
}

#[test]
fn the_status_page_shows_every_key_set_and_kid_and_nothing_secret() {
    let config =
        "[schedule]\ncron = \"0 6 * * *\"\ntimezone = \"Europe/Oslo\"\n\n[server]\nlisten = \"127.0.0.1:0\"";
    let p = mid_life_with(config);
    let mut child = start_worker(&p, T0);
    let (port, log) = bound_port(&mut child);
    let (head, html) = page(port);
    let browser = browse(port);
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = wait(&mut child, Duration::from_secs(20));
    let _ = log.join();

    assert!(head.contains("content-type: text/html; charset=utf-8"), "{head}");
    assert!(head.contains("content-security-policy: default-src 'none'; style-src 'sha256-"), "{head}");
    for kid in KIDS {
        assert!(html.contains(kid), "{kid} not on the page");
    }
    assert!(
        html.contains("<section id=\"testklient-TEST\">")
            && html.contains("<section id=\"testklient-PROD\">")
    );
    assert!(html.contains("<svg") && html.contains("class=\"today\""), "a timeline with today marked");
    assert!(html.contains("(predicted)"), "keys the planner will make are drawn");
    for forbidden in ["<script", "src=", "href=", "https://", "@import", "url("] {
        assert!(!html.contains(forbidden), "{forbidden} on the page");
    }
    // The only URL is the SVG namespace, which names no resource that is fetched.
    assert_eq!(html.matches("http://").count(), html.matches("http://www.w3.org/2000/svg").count());
    for line in FIXTURE_KEYS.lines() {
        let key = jwk_rotator::jwk::PrivateJwk::from_base64(line).expect("fixture");
        assert!(!html.contains(&key.to_json()[..40]) && !html.contains(&line[..40]), "key material");
    }
    for member in ["\"d\"", "\"p\"", "\"q\"", "\"dp\"", "\"dq\"", "\"qi\""] {
        assert!(!html.contains(member), "private member {member}");
    }
    let mut s = settings(Some(&p));
    s.add_filter(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?\+00:00", "[TIME]");
    s.bind(|| insta::assert_snapshot!("worker_page", html));
    browser.check();
}

/// What Chromium made of the page, checked after the worker is stopped.
enum Browser {
    Rendered { dom: String, shots: Vec<PathBuf> },
    Missing,
}

impl Browser {
    fn check(self) {
        match self {
            Browser::Rendered { dom, shots } => {
                for kid in KIDS {
                    assert!(dom.contains(kid), "{kid} not in Chromium's DOM:\n{dom}");
                }
                assert!(dom.contains("<svg"), "no timeline in the DOM");
                for shot in shots {
                    let png = std::fs::read(&shot).unwrap_or_default();
                    assert!(
                        png.starts_with(b"\x89PNG") && png.len() > 10_000,
                        "{}: no screenshot",
                        shot.display()
                    );
                }
            }
            // CI sets JWK_ROTATOR_BROWSER_TESTS=require and installs Chromium (.ci/run).
            Browser::Missing => assert!(
                std::env::var_os("JWK_ROTATOR_BROWSER_TESTS").is_none_or(|v| v != "require"),
                "chromium is not installed, and JWK_ROTATOR_BROWSER_TESTS=require"
            ),
        }
    }
}

/// The page in headless Chromium: its DOM, and a screenshot wide and narrow.
fn browse(port: u16) -> Browser {
    if !have_chromium() {
        eprintln!("chromium is not installed: the page was not rendered in a browser");
        return Browser::Missing;
    }
    let profile = tempfile::tempdir().expect("profile dir");
    let url = format!("http://127.0.0.1:{port}/");
    let out = chromium(profile.path(), &["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    std::fs::create_dir_all(screenshot_dir()).expect("screenshot dir");
    let mut shots = Vec::new();
    for (name, size) in [("worker-page-wide.png", "1280,1500"), ("worker-page-narrow.png", "420,1900")] {
        let shot = screenshot_dir().join(name);
        let _ = std::fs::remove_file(&shot);
        let profile = tempfile::tempdir().expect("profile dir");
        let arg = format!("--screenshot={}", shot.display());
        chromium(profile.path(), &[&arg, &format!("--window-size={size}"), &url]);
        shots.push(shot);
    }
    Browser::Rendered { dom, shots }
}
