//! The real `jwk-rotator worker`: serves /healthz and /metrics, and exits 0 on SIGTERM.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::{Project, T0};

/// The port the worker bound (it listens on port 0, any free port, and logs where): read from
/// its log, which the returned thread keeps reading to the end.
pub(crate) fn bound_port(child: &mut Child) -> (u16, std::thread::JoinHandle<String>) {
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut log = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            if let Some(at) = line.split("listen=127.0.0.1:").nth(1) {
                let port: String = at.chars().take_while(char::is_ascii_digit).collect();
                let _ = tx.send(port.parse::<u16>().unwrap_or(0));
            }
            log.push_str(&line);
            log.push('\n');
        }
        log
    });
    let port = rx.recv_timeout(Duration::from_secs(20)).expect("the worker logs where it listens");
    (port, reader)
}

/// `GET path` over plain HTTP/1.1; (status, body), or None while nothing listens.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Some((status, body))
}

pub(crate) fn start_worker(p: &Project, now: &str) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin!("jwk-rotator"))
        .env("JWK_ROTATOR_CONFIG", p.path("jwk-rotator.toml"))
        .env("JWK_ROTATOR_NOW", now)
        .env(crate::support::WALL, now)
        .env_remove("JWK_ROTATOR_LOG")
        .env_remove("RUST_LOG")
        .arg("worker")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the worker")
}

pub(crate) fn wait(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn worker_serves_health_and_metrics_and_exits_0_on_sigterm() {
    let p = Project::new(
        "[schedule]\ncron = \"0 6 * * *\"\ntimezone = \"Europe/Oslo\"\nrun_at_start = true\n\n[server]\nlisten = \"127.0.0.1:0\"",
    );
    let mut child = start_worker(&p, T0);
    let (port, log) = bound_port(&mut child);
    let start = Instant::now();
    let mut scrapes = 0;
    let health = loop {
        // Until the first evaluation /metrics answers 503; a 200 always holds the key series.
        if let Some((status, metrics)) = get(port, "/metrics") {
            assert!(
                status == 503 || metrics.contains("jwk_rotator_key_expiration_timestamp_seconds{"),
                "{metrics}"
            );
            scrapes += 1;
        }
        match get(port, "/healthz") {
            Some((200, body)) if body.contains("\"last_success\":\"") => break body,
            _ if start.elapsed() > Duration::from_secs(20) => {
                let _ = child.kill();
                panic!("the worker did not become healthy");
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    assert!(scrapes > 0, "the endpoint answered while starting");
    // JWK_ROTATOR_NOW starts the worker's clock: the next 06:00 in Oslo after 06:00 UTC.
    assert!(health.contains("\"next_run\":\"2026-11-22T05:00:00Z\""), "{health}");
    let (status, metrics) = get(port, "/metrics").expect("metrics");
    assert_eq!(status, 200);
    // 1826755200 is 2027-11-21T00:00:00Z: the kid's date plus max_age (365d).
    let series = "jwk_rotator_key_expiration_timestamp_seconds{key_set=\"testklient-PROD\",kid=\"testklient-PROD.2026-11-21\",stage=\"current\"} 1826755200";
    assert!(metrics.contains(series), "{metrics}");
    assert!(metrics.contains("jwk_rotator_runs_total{outcome=\"success\"} 1"), "{metrics}");
    assert!(p.path("jwks/testklient-TEST.jwks.json").exists());

    let term = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(term.success());
    let status = wait(&mut child, Duration::from_secs(20)).expect("the worker exits within 20 s of SIGTERM");
    assert_eq!(status.code(), Some(0));
    let log = log.join().expect("the log");
    assert!(log.contains("SIGTERM: shutting down") && log.contains("worker stopped"), "{log}");
    assert!(!log.contains("\"d\":"), "no private key material in the log");
}

#[test]
fn worker_without_a_schedule_says_what_to_add() {
    let p = Project::new("");
    let (code, _, err) = p.run(T0, &["worker"]);
    assert_eq!(code, 1);
    assert!(err.contains("has no [schedule]") && err.contains("cron = \"0 6 * * *\""), "{err}");
}

#[test]
fn a_bad_schedule_is_refused_at_load_naming_the_setting() {
    let p = Project::new("[schedule]\ncron = \"0 6 * *\"");
    let (code, _, err) = p.run(T0, &["status"]);
    assert_eq!(code, 3, "status: UNKNOWN for a bad config");
    assert!(err.contains("cron") && err.contains("5-field"), "{err}");
}

#[test]
fn an_address_in_use_names_the_setting_and_says_why_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let p = Project::new(&format!(
        "[schedule]\ncron = \"0 6 * * *\"\ntimezone = \"Europe/Oslo\"\n\n[server]\nlisten = \"127.0.0.1:{port}\""
    ));
    let (code, _, err) = p.run(T0, &["worker"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("cannot listen on 127.0.0.1:{port}")), "{err}");
    assert!(err.contains("change [server] listen in"), "{err}");
    assert_eq!(err.matches("in use").count(), 1, "the cause once: {err}");
}
